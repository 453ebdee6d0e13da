/**
 * The whole workflow through the SDK against a live gateway with a real engine worker on stories260K:
 * register, dry run → importance profiles, prune with a LAYER replacement → progress, stability report.
 * Then the progress stream cut mid-plan, resumed with no gap and no duplicate.
 */
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { PlanFailedError, type ProgressEvent } from '../src/index.js';
import { useGateway } from './fixtures/gateway.js';
import { calibration, runWithShared, STORIES_TOKENIZER_URI, STORIES_URI, training } from './fixtures/shared.js';

describe.runIf(runWithShared)('the SDK workflow on stories260K', () => {
  const live = useGateway({ workers: 1 });

  it('registers, profiles, prunes with progress, and reports stability', async () => {
    const client = live.client();
    const model = await client.registerModel({ name: 'stories260K', source: STORIES_URI, tokenizer: STORIES_TOKENIZER_URI });
    expect(model).toMatchObject({ name: 'stories260K', architecture: 'llama', numLayers: 5, hiddenSize: 64, status: 'READY' });
    expect((await client.models()).map((m) => m.id)).toContain(model.id);
    expect(await client.model(model.id)).toMatchObject({ id: model.id, plans: [] });

    const profiles = await client.dryRun(model.id, calibration);
    const cosine = profiles.filter((p) => p.metric === 'COSINE').sort((a, b) => a.blockSize - b.blockSize);
    expect(cosine.map((p) => p.blockSize)).toEqual([1, 2, 3, 4, 5]);
    expect(cosine[1].best).toMatchObject({ startLayer: 2, endLayer: 3 });
    expect(cosine[1].scores).toHaveLength(4); // starts 0..3 for a 2-layer block in 5 layers

    const handle = await client.prune({ modelId: model.id, layersToPrune: 2, replacement: 'LAYER', calibration, training });
    const events: ProgressEvent[] = [];
    for await (const event of handle.progress()) events.push(event);
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    expect(events.some((e) => e.stage === 'TRAINING' && e.loss !== null && e.step !== null)).toBe(true);

    const plan = await handle.wait();
    expect(plan).toMatchObject({ id: handle.id, status: 'SUCCEEDED', stage: 'DONE', startLayer: 2, removedLayers: [2, 3], replacement: 'LAYER' });
    expect(plan.prunedParameters).toBeLessThan(plan.originalParameters!);
    expect(plan.importance).toMatchObject({ blockSize: 2, metric: 'COSINE' });
    expect(plan.stability!.parameterReduction).toBeGreaterThan(0);
    expect(plan.stability!.perplexity[0].pruned).toBeGreaterThan(0);
    expect((await client.plans('SUCCEEDED')).map((p) => p.id)).toContain(plan.id);

    // the pruned output becomes a model of its own, by plan id (the gateway's data directory is never a file:// source)
    const pruned = await client.registerModel({ name: 'stories260K-pruned', fromPlan: plan.id });
    expect(pruned).toMatchObject({ status: 'READY', numLayers: 4, fromPlan: plan.id });
  });

  it('resumes progress after the WebSocket is cut mid-plan, with no gap and no duplicate', async () => {
    // A WebSocket class that remembers its sockets, so the test can cut the client's connection.
    const sockets: WebSocket[] = [];
    class TrackedWebSocket extends WebSocket {
      constructor(...args: ConstructorParameters<typeof WebSocket>) {
        super(...args);
        sockets.push(this);
      }
    }
    // The reconnection waits 300 ms, so training events pile up in the gap and must come back as a replay.
    const client = live.client({ webSocketImpl: TrackedWebSocket, retryDelayMs: 300 });
    const model = await client.registerModel({ name: 'stories', source: STORIES_URI, tokenizer: STORIES_TOKENIZER_URI });
    const handle = await client.prune({ modelId: model.id, layersToPrune: 2, replacement: 'LAYER', calibration, training: { epochs: 8, batchSize: 4 } });

    const events: ProgressEvent[] = [];
    let cutAtSeq = 0;
    for await (const event of handle.progress()) {
      events.push(event);
      if (!cutAtSeq && event.stage === 'TRAINING') {
        cutAtSeq = event.seq;
        sockets.at(-1)!.terminate(); // an abrupt drop (1006), not a clean close
      }
    }
    expect(cutAtSeq).toBeGreaterThan(0);
    expect(sockets.length).toBeGreaterThanOrEqual(2); // it did reconnect
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    expect(events.at(-1)!.seq).toBeGreaterThan(cutAtSeq);
    // Nothing missing: the stream holds exactly the events the gateway stored.
    const stored = await client.plan(handle.id, { eventsLimit: 1000 });
    expect(stored.events.length).toBeLessThan(1000);
    expect(events.map((e) => e.seq)).toEqual(stored.events.map((e) => e.seq));
    expect((await handle.wait()).status).toBe('SUCCEEDED');
  });

  it('rejects wait() with PlanFailedError for a cancelled plan', async () => {
    const client = live.client();
    const model = await client.registerModel({ name: 'stories', source: STORIES_URI, tokenizer: STORIES_TOKENIZER_URI });
    const handle = await client.prune({ modelId: model.id, layersToPrune: 2, replacement: 'LAYER', calibration, training: { epochs: 500, batchSize: 4 } });
    for await (const event of handle.progress()) if (event.stage === 'TRAINING') break;
    expect((await handle.cancel()).status).toBe('CANCELLED');
    const failure = await handle.wait().catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(PlanFailedError);
    expect(failure).toMatchObject({ code: 'PLAN_FAILED', planId: handle.id, status: 'CANCELLED' });
  });
});
