/**
 * The whole flow with real engine worker processes on stories260K: register, plan, live progress over
 * graphql-ws, the stability report; a dry run; cancellation; a worker killed mid-training and the plan
 * finished by another worker from the checkpoint; the worker API's token.
 */
import { describe, expect, it } from 'vitest';
import { data, failure, graphql, useGateways } from './fixtures/gateway.js';
import { runWithShared, STORIES_TOKENIZER_URI, STORIES_URI, TINYSTORIES_URI } from './fixtures/shared.js';
import { connect, subscribe } from './fixtures/subscriptions.js';
import { CREATE, PLAN, PROGRESS, startWorker, stopProcess, waitForStatus } from './fixtures/workers.js';

const gateways = useGateways();
const REGISTER = `mutation { registerModel(input: { name: "stories", source: "${STORIES_URI}", tokenizer: "${STORIES_TOKENIZER_URI}" }) { id } }`;
const calibration = { source: TINYSTORIES_URI, samples: 8, seqLen: 64 };

/**
 * A SWIGLU plan of many steps, with its progress subscribed: training must still be running when the
 * worker's progress (sent in batches every 500 ms) shows the step a test waits for; 80 steps could be
 * over by then on a quiet machine.
 */
async function startLongPlan(gateway: { url: string; wsUrl: string }) {
  const { registerModel } = await data(gateway.url, REGISTER);
  const { createPruningPlan: plan } = await data(gateway.url, CREATE, {
    input: { modelId: registerModel.id, layersToPrune: 2, replacement: 'SWIGLU', calibration, training: { epochs: 300, batchSize: 4 } },
  });
  const client = connect(gateway.wsUrl);
  const progress = subscribe(client, PROGRESS, { planId: plan.id }, (d) => d.planProgress);
  return { plan, client, progress };
}

describe.runIf(runWithShared)('plans run by engine workers', () => {
  it('prunes stories260K with a LAYER replacement, streaming progress with no gap, and reports stability', async () => {
    const gateway = await gateways.start({ workers: 1 });
    const { registerModel } = await data(gateway.url, REGISTER);
    const { createPruningPlan: plan } = await data(gateway.url, CREATE, {
      input: { modelId: registerModel.id, layersToPrune: 2, replacement: 'LAYER', calibration, training: { epochs: 2, batchSize: 4 } },
    });
    const client = connect(gateway.wsUrl);
    const progress = subscribe(client, PROGRESS, { planId: plan.id }, (d) => d.planProgress);
    const events = await progress.completed;
    client.dispose();
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    expect(new Set(events.map((e) => e.stage))).toEqual(new Set(['LOADING', 'PROFILING', 'COLLECTING', 'TRAINING', 'ASSEMBLING', 'EVALUATING', 'UPLOADING']));
    expect(events.some((e) => e.step !== null && e.totalSteps !== null && e.loss !== null)).toBe(true);
    // The layer-streamed pair collection says where it is: the embeddings, then layers 0..3 (it stops at
    // h[4], the block's output), of 5, with the weight bytes read so far (never going back).
    const streamed = events.filter((e) => e.stage === 'COLLECTING' && e.layer !== null);
    expect(streamed.map((e) => [e.layer, e.layers])).toEqual([[-1, 5], [0, 5], [1, 5], [2, 5], [3, 5]]);
    expect(streamed.map((e) => e.bytesRead)).toEqual([...streamed.map((e) => e.bytesRead)].sort((a, b) => a - b));

    const done = await waitForStatus(gateway.url, plan.id, ['SUCCEEDED', 'FAILED']);
    expect(done.error).toBeNull();
    expect(done).toMatchObject({ status: 'SUCCEEDED', stage: 'DONE', progress: 1, startLayer: 2, removedLayers: [2, 3] });
    expect(done.outputUri).toMatch(/^file:\/\/.*outputs\//);
    expect(done.prunedParameters).toBeLessThan(done.originalParameters);
    expect(done.stability.parameterReduction).toBeGreaterThan(0);
    expect(done.stability.hiddenStateCosine).toBeGreaterThan(0);
    expect(done.stability.perplexity[0].pruned).toBeGreaterThan(done.stability.perplexity[0].original);
  });

  it('heals a plan given input.healing: the settings reach the engine, healing streams its loss, the report has perplexity before and after', async () => {
    const gateway = await gateways.start({ workers: 1 });
    const { registerModel } = await data(gateway.url, REGISTER);
    const { createPruningPlan: plan } = await data(gateway.url, CREATE, {
      input: {
        modelId: registerModel.id,
        layersToPrune: 2,
        startLayer: 2,
        replacement: 'LAYER',
        calibration: { ...calibration, samples: 16 },
        training: { minSteps: 20, batchSize: 4, learningRate: 2e-3, minLearningRate: 2e-4 },
        healing: { steps: 12, learningRate: 1e-3, patience: 4 },
      },
    });
    const client = connect(gateway.wsUrl);
    const progress = subscribe(client, PROGRESS, { planId: plan.id }, (d) => d.planProgress);
    const events = await progress.completed;
    client.dispose();
    const healing = events.filter((e) => e.stage === 'HEALING' && e.step !== null);
    // The healing steps, as the training ones stream: step, total and KL loss.
    expect(healing.length).toBeGreaterThan(0);
    expect(healing.every((e) => e.totalSteps === 12 && e.loss! > 0)).toBe(true);
    expect(events.findIndex((e) => e.stage === 'HEALING')).toBeGreaterThan(events.findIndex((e) => e.stage === 'TRAINING'));
    const done = await waitForStatus(gateway.url, plan.id, ['SUCCEEDED', 'FAILED']);
    expect(done.error).toBeNull();
    const { plan: report } = await data(gateway.url, 'query ($id: ID!) { plan(id: $id) { stability { perplexity { original pruned prunedBeforeHealing } } } }', { id: plan.id });
    const [text] = report.stability.perplexity;
    expect(text.prunedBeforeHealing).toBeGreaterThan(text.original);
    expect(text.pruned).toBeGreaterThan(text.original);
    expect(text.pruned).not.toBe(text.prunedBeforeHealing);
  });

  it('stops a dry run after profiling every block size', async () => {
    const gateway = await gateways.start({ workers: 1 });
    const { registerModel } = await data(gateway.url, REGISTER);
    const { createPruningPlan: plan } = await data(gateway.url, CREATE, { input: { modelId: registerModel.id, layersToPrune: 2, dryRun: true, calibration } });
    const done = await waitForStatus(gateway.url, plan.id, ['SUCCEEDED', 'FAILED']);
    expect(done.status).toBe('SUCCEEDED');
    expect(done.outputUri).toBeNull();
    const cosine = done.profiles.filter((p: { metric: string }) => p.metric === 'COSINE');
    expect(cosine.map((p: { blockSize: number }) => p.blockSize).sort()).toEqual([1, 2, 3, 4, 5]);
    expect(cosine.find((p: { blockSize: number }) => p.blockSize === 2).best.startLayer).toBe(2);
  });

  it('cancels a running plan within seconds, and the worker takes the next one', async () => {
    const gateway = await gateways.start({ workers: 1 });
    const { registerModel } = await data(gateway.url, REGISTER);
    const { createPruningPlan: long } = await data(gateway.url, CREATE, {
      input: { modelId: registerModel.id, layersToPrune: 2, replacement: 'LAYER', calibration, training: { epochs: 500, batchSize: 4 } },
    });
    const client = connect(gateway.wsUrl);
    const progress = subscribe(client, PROGRESS, { planId: long.id }, (d) => d.planProgress);
    await progress.until((e) => e.stage === 'TRAINING');
    const cancelledAt = Date.now();
    await data(gateway.url, `mutation { cancelPlan(id: "${long.id}") { status } }`);
    await progress.completed;
    client.dispose();
    const { createPruningPlan: next } = await data(gateway.url, CREATE, { input: { modelId: registerModel.id, layersToPrune: 1, replacement: 'NONE', calibration } });
    const done = await waitForStatus(gateway.url, next.id, ['SUCCEEDED', 'FAILED']);
    expect(done.status).toBe('SUCCEEDED');
    expect(Date.now() - cancelledAt).toBeLessThan(60_000);
    const { plan } = await data(gateway.url, PLAN, { id: long.id });
    expect(plan.status).toBe('CANCELLED');
  });

  it('finishes a plan whose worker was killed, on another worker, from the checkpoint', async () => {
    const dataDir = gateways.tempDir();
    const gateway = await gateways.start({ dataDir, workers: 0, leaseMs: 1500 });
    const { plan, client, progress } = await startLongPlan(gateway);
    const first = startWorker(gateway.url, gateway.workerToken, dataDir, 'first');
    const killedAfterStep: number = (await progress.until((e) => e.step !== null && e.step >= 12)).step;
    first.kill('SIGKILL'); // no chance to checkpoint or release: only the lease running out frees the plan
    await new Promise((r) => first.once('exit', r));
    const second = startWorker(gateway.url, gateway.workerToken, dataDir, 'second');
    try {
      const events = await progress.completed;
      const done = await waitForStatus(gateway.url, plan.id, ['SUCCEEDED', 'FAILED']);
      expect(done.status).toBe('SUCCEEDED');
      // The second worker's training began past step 1: it resumed from an epoch-end checkpoint.
      const afterKill = events.slice(events.findIndex((e) => e.step === killedAfterStep) + 1).filter((e) => e.step !== null);
      const resumedAt = afterKill.find((e) => e.step! <= killedAfterStep)?.step ?? afterKill[0].step;
      expect(resumedAt).toBeGreaterThan(1);
      expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    } finally {
      await stopProcess(second);
      client.dispose();
    }
  });

  it('on SIGTERM a worker checkpoints, releases its plan and exits; another finishes it from that step', async () => {
    const dataDir = gateways.tempDir();
    // A long lease: only the release (not its expiry) can hand the plan over within this test.
    const gateway = await gateways.start({ dataDir, workers: 0, leaseMs: 600_000 });
    const { plan, client, progress } = await startLongPlan(gateway);
    const first = startWorker(gateway.url, gateway.workerToken, dataDir, 'first');
    await progress.until((e) => e.step !== null && e.step >= 9);
    const exited = new Promise<number | null>((r) => first.once('exit', (code) => r(code)));
    first.kill('SIGTERM');
    expect(await exited).toBe(0);
    const stoppedAt = Math.max(...progress.received.filter((e) => e.step !== null).map((e) => e.step));
    const { plan: released } = await data(gateway.url, PLAN, { id: plan.id });
    expect(released.status).toBe('QUEUED'); // given back at once, not after the lease runs out

    const second = startWorker(gateway.url, gateway.workerToken, dataDir, 'second');
    try {
      const events = await progress.completed;
      const done = await waitForStatus(gateway.url, plan.id, ['SUCCEEDED', 'FAILED']);
      expect(done.status).toBe('SUCCEEDED');
      // Saved on the way out: the second worker went on from the step after the first one's last, so the
      // plan's steps run 1, 2, … with none repeated and none skipped.
      const steps = events.filter((e) => e.step !== null).map((e) => e.step);
      expect(steps).toEqual(steps.map((_, i) => i + 1));
      expect(steps).toContain(stoppedAt + 1);
    } finally {
      await stopProcess(second);
      client.dispose();
    }
  });

  it('keeps the worker API to the worker token', async () => {
    const gateway = await gateways.start({ workers: 0, workerToken: 'secret-worker-token' });
    const claim = 'mutation { claimPlan(workerId: "w") { planId } }';
    expect(await failure(gateway.url, claim, {}, { token: null })).toMatchObject({ code: 'UNAUTHENTICATED' });
    // a tenant's token, even an admin's, is not the worker token
    expect(await failure(gateway.url, claim)).toMatchObject({ code: 'FORBIDDEN' });
    const response = await fetch(gateway.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer wrong' }, body: JSON.stringify({ query: claim }) });
    expect(((await response.json()) as { errors: { extensions: { code: string } }[] }).errors[0].extensions.code).toBe('FORBIDDEN');
    const ok = await fetch(gateway.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer secret-worker-token' }, body: JSON.stringify({ query: claim }) });
    expect(await ok.json()).toEqual({ data: { claimPlan: null } });
    void graphql;
  });
});
