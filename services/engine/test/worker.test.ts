/**
 * The worker loop against a queue in this process that keeps the protocol's promises (claim, lease
 * heartbeat, ordered events, complete/fail/release). The GraphQL transport is tested against the real
 * gateway in the gateway's tests.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { PlanAssignment, PlanEvent, TrainingSpec } from '../src/contract/index.js';
import { PLAN_CONTRACT_VERSION } from '../src/spec.js';
import { PlanContractMismatch, runWorker } from '../src/worker/worker.js';
import { testAssignment, type TestPlan } from './fixtures/plan-spec.js';
import { writeTinyModel } from './fixtures/tiny-models.js';
import { QueueTransport } from './fixtures/queue-transport.js';

const work = mkdtempSync(join(tmpdir(), 'streamline-worker-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const training: Partial<TrainingSpec> = { batchSize: 1, learningRate: 1e-2, minLearningRate: 1e-3, weightDecay: 1e-3, gradientAccumulation: 1, maxGradNorm: 5, validationFraction: 0.2, seed: 0, minSteps: 40, checkpointEvery: 1000 };

function plan(overrides: Partial<TestPlan> = {}): PlanAssignment {
  const data = join(work, `ids-${Math.random()}.jsonl`);
  writeFileSync(data, Array.from({ length: 6 }, (_, i) => JSON.stringify({ input_ids: [1, 2 + i, 7, 9, 11, 3, 5, 8] })).join('\n'));
  return testAssignment({
    model: writeTinyModel('llama'),
    layersToPrune: 1,
    replacement: 'LAYER',
    dryRun: false,
    calibration: { source: data, samples: 6, seqLen: 8 },
    training,
    ...overrides,
  });
}

/** Runs a worker until `until` holds, then stops it. */
async function workUntil(transport: QueueTransport, dataDir: string, until: () => boolean, onEvent?: (stop: () => void, planId: string, e: PlanEvent) => void, log?: (line: string) => void) {
  const controller = new AbortController();
  transport.onEvent = (planId, e) => onEvent?.(() => controller.abort(), planId, e);
  const worker = runWorker({ transport, dataDir, signal: controller.signal, pollMs: 20, heartbeatMs: 20, log });
  while (!until() && !controller.signal.aborted) await new Promise((r) => setTimeout(r, 20));
  controller.abort();
  await worker;
}

describe('engine worker', () => {
  it('runs a claimed plan to completion, reporting ordered progress and a file:// output', async () => {
    const transport = new QueueTransport();
    transport.queue.push({ planId: 'p1', config: plan() });
    const lines: string[] = [];
    await workUntil(transport, join(work, 'd1'), () => transport.finished.has('p1'), undefined, (line) => lines.push(line));
    // The trainer and its threads, in the worker's log and in the first TRAINING event.
    expect(lines).toContainEqual(expect.stringMatching(/^plan p1 training: (onnxruntime cpu, \d+ threads?|tensorflow\.js \w+)/));
    expect(transport.events.get('p1')!.find((e) => e.stage === 'TRAINING')!.message).toMatch(/^training: /);
    const { result } = transport.finished.get('p1')!;
    expect(result!.outputUri).toMatch(/^file:\/\/.*outputs\/p1$/);
    expect(existsSync(join(fileURLToPath(result!.outputUri!), 'streamline.json'))).toBe(true);
    const stages = transport.events.get('p1')!.map((e) => e.stage);
    expect(stages[0]).toBe('LOADING');
    expect(stages.at(-1)).toBe('UPLOADING');
  });

  it('fails a plan with the engine error message', async () => {
    const transport = new QueueTransport();
    transport.queue.push({ planId: 'bad', config: plan({ layersToPrune: 3 }) });
    await workUntil(transport, join(work, 'd2'), () => transport.finished.has('bad'));
    expect(transport.finished.get('bad')!.error).toMatch(/a block must remove from 1 to 2 of the model's 3 layers/);
    expect(transport.finished.get('bad')!.code).toBe('BAD_INPUT');
  });

  it('fails a plan on a model with a NaN weight with INVALID_WEIGHTS, naming the tensor, before anything is produced', async () => {
    const transport = new QueueTransport();
    const nan = writeTinyModel('llama', { edit: (weights) => void (weights.get('model.layers.2.self_attn.v_proj.weight')!.data[3] = Number.NaN) });
    transport.queue.push({ planId: 'nan', config: plan({ model: nan }) });
    await workUntil(transport, join(work, 'd-nan'), () => transport.finished.has('nan'));
    const failure = transport.finished.get('nan')!;
    expect(failure.code).toBe('INVALID_WEIGHTS');
    expect(failure.error).toBe('tensor model.layers.2.self_attn.v_proj.weight holds NaN/infinite values');
    expect(failure.result).toBeUndefined();
  });

  it('stops a plan cancelled through its heartbeat, then goes back to the queue', async () => {
    const transport = new QueueTransport();
    transport.queue.push({ planId: 'c', config: plan({ training: { ...training, minSteps: 5000 } }) });
    let claimsWhenCancelled = Infinity;
    await workUntil(
      transport,
      join(work, 'd3'),
      () => transport.claims > claimsWhenCancelled, // the worker asked for more work: the plan has stopped
      (_stop, planId, e) => {
        if (e.stage === 'TRAINING' && !transport.cancelled.has(planId)) {
          transport.cancelled.add(planId);
          claimsWhenCancelled = transport.claims;
        }
      },
    );
    expect(transport.finished.has('c')).toBe(false);
    expect(transport.released).toEqual([]);
    const steps = transport.events.get('c')!.filter((e) => e.step !== undefined);
    expect(steps.at(-1)!.step).toBeLessThan(5000);
  });

  it('on stop, checkpoints and releases the plan; the next worker resumes it from the checkpoint', async () => {
    const transport = new QueueTransport();
    // Enough steps that the stop (sent when step 10's event arrives) lands mid-training: the ONNX
    // trainer runs this tiny model's 300 steps before the event batch carrying step 10 is delivered.
    const config = plan({ training: { ...training, minSteps: 3000 } });
    transport.queue.push({ planId: 'r', config });
    const dataDir = join(work, 'd4');
    await workUntil(transport, dataDir, () => false, (stop, _id, e) => {
      if (e.step === 10) stop();
    });
    expect(transport.released).toEqual(['r']);
    expect(existsSync(join(dataDir, 'work', 'r', 'train', 'checkpoint', 'state.json'))).toBe(true);

    transport.queue.push({ planId: 'r', config });
    await workUntil(transport, dataDir, () => transport.finished.has('r'));
    const summary = transport.finished.get('r')!.result!.outcome;
    expect(summary.dryRun).toBe(false);
    if ('pruned' in summary) expect(summary.pruned.training!.resumedFromStep).toBeGreaterThanOrEqual(10);
  });

  it('fails a plan whose config does not fit the plan contract, naming the field, and keeps serving', async () => {
    const transport = new QueueTransport();
    const { model: _model, ...withoutModel } = plan();
    transport.queue.push({ planId: 'malformed', config: withoutModel }, { planId: 'fine', config: plan() });
    await workUntil(transport, join(work, 'd-malformed'), () => transport.finished.has('fine'));
    const failure = transport.finished.get('malformed')!;
    expect(failure.code).toBe('BAD_INPUT');
    expect(failure.error).toMatch(/^the claimed plan's config does not fit the plan contract: model: /);
    expect(transport.events.get('malformed') ?? []).toEqual([]);
    expect(transport.finished.get('fine')!.error).toBeUndefined();
  });

  it('releases a plan of another contract version unread, says which side to upgrade, and stops', async () => {
    const transport = new QueueTransport();
    // A config this worker would misread: it must not run, so no field of it may matter.
    transport.queue.push({ planId: 'newer', config: { renamedEverything: true }, contractVersion: PLAN_CONTRACT_VERSION + 1 });
    transport.queue.push({ planId: 'next', config: plan() });
    const lines: string[] = [];
    const controller = new AbortController();
    transport.onEvent = () => controller.abort(); // only a worker that ran something gets here (the test then fails, not hangs)
    const worker = runWorker({ transport, dataDir: join(work, 'd-contract'), signal: controller.signal, pollMs: 20, heartbeatMs: 20, log: (line) => lines.push(line) });
    const stopped = await worker.then(
      () => null,
      (error: unknown) => error,
    );
    controller.abort();
    expect(stopped).toBeInstanceOf(PlanContractMismatch);
    const message = `this worker speaks plan contract ${PLAN_CONTRACT_VERSION}, the gateway sends ${PLAN_CONTRACT_VERSION + 1} (plan newer, released): upgrade the worker image`;
    expect((stopped as Error).message).toBe(message);
    expect(lines).toContain(message);
    expect(transport.released).toEqual(['newer']);
    expect(transport.events.has('newer')).toBe(false);
    expect(transport.finished.has('newer')).toBe(false);
    expect(existsSync(join(work, 'd-contract', 'work', 'newer'))).toBe(false);
    // It stopped instead of claiming on (the next claim would likely be the same plan again).
    expect(transport.claims).toBe(1);
  });

  it('names the gateway as the older side when it sends an older contract version', async () => {
    const transport = new QueueTransport();
    transport.queue.push({ planId: 'older', config: plan(), contractVersion: PLAN_CONTRACT_VERSION - 1 });
    const controller = new AbortController();
    transport.onEvent = () => controller.abort();
    const error = await runWorker({ transport, dataDir: join(work, 'd-contract-old'), signal: controller.signal, pollMs: 20 }).catch((e: unknown) => e);
    expect((error as Error).message).toContain(`the gateway sends ${PLAN_CONTRACT_VERSION - 1} (plan older, released): the gateway is older than this worker`);
    expect(transport.released).toEqual(['older']);
  });
});
