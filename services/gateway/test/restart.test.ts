/**
 * A gateway stopped and started again on the same data while a real worker is training a plan: the
 * worker keeps training and retries until the gateway is back, and the plan finishes with every
 * progress event and every training step, in order, once.
 */
import { describe, expect, it } from 'vitest';
import { data, useGateways } from './fixtures/gateway.js';
import { runWithShared, STORIES_TOKENIZER_URI, STORIES_URI, TINYSTORIES_URI } from './fixtures/shared.js';
import { connect, subscribe } from './fixtures/subscriptions.js';
import { CREATE, PROGRESS, REGISTER, startWorker, stopProcess, waitForStatus } from './fixtures/workers.js';

const gateways = useGateways();

describe.runIf(runWithShared)('a gateway restarted mid-plan', () => {
  it('loses nothing: the worker waits for it, and the plan finishes with every event and step', async () => {
    const dataDir = gateways.tempDir();
    const workerToken = 'restart-test-worker-token';
    const before = await gateways.start({ dataDir, workerToken });
    const port = Number(new URL(before.url).port);
    const { registerModel } = await data(before.url, REGISTER, { input: { name: 'stories', source: STORIES_URI, tokenizer: STORIES_TOKENIZER_URI } });
    const { createPruningPlan: plan } = await data(before.url, CREATE, {
      input: { modelId: registerModel.id, layersToPrune: 2, replacement: 'SWIGLU', calibration: { source: TINYSTORIES_URI, samples: 8, seqLen: 64 }, training: { epochs: 40, batchSize: 4 } },
    });
    const log: string[] = [];
    const worker = startWorker(before.url, workerToken, dataDir, 'steady', (line) => log.push(line));
    try {
      const client = connect(before.wsUrl);
      const first = subscribe(client, PROGRESS, { planId: plan.id }, (d) => d.planProgress);
      await first.until((e) => (e.step ?? 0) >= 5);
      await before.close(); // ends the subscription and refuses the worker's requests
      await client.dispose();
      const seenBefore = first.received.slice();
      await new Promise((resolve) => setTimeout(resolve, 1500)); // the worker trains on meanwhile

      const after = await gateways.start({ dataDir, workerToken, port });
      const again = connect(after.wsUrl);
      const rest = subscribe(again, PROGRESS, { planId: plan.id, afterSeq: seenBefore.at(-1).seq }, (d) => d.planProgress);
      const events = [...seenBefore, ...(await rest.completed)];
      await again.dispose();
      const done = await waitForStatus(after.url, plan.id, ['SUCCEEDED', 'FAILED']);
      expect(done.error).toBeNull();
      expect(done.status).toBe('SUCCEEDED');
      expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
      const steps = events.filter((e) => e.stage === 'TRAINING' && e.step !== null).map((e) => e.step);
      expect(steps).toEqual(steps.map((_, i) => i + 1));
      expect(steps.at(-1)).toBe(events.find((e) => e.totalSteps !== null).totalSteps);
      expect(log.some((line) => line.includes('failed'))).toBe(false); // retried, not dropped
    } finally {
      await stopProcess(worker);
    }
  });
});
