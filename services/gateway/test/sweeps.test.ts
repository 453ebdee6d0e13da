/**
 * Sweeps through the API with a real gateway and real engine worker processes on stories260K: a sweep
 * over block sizes 1–3 reports its candidates and Pareto front, progress events name their candidate,
 * one candidate is cancelled on its own, and exportCandidate publishes a candidate's checkpoint whose
 * tensors equal those of a single plan for that block (same seed and data) within 1e-6.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { data, failure, useGateways } from './fixtures/gateway.js';
import { runWithShared, STORIES_TOKENIZER_URI, STORIES_URI, TINYSTORIES_URI } from './fixtures/shared.js';
import { CREATE, startWorker, stopProcess, waitForStatus } from './fixtures/workers.js';

const gateways = useGateways();
const REGISTER = `mutation { registerModel(input: { name: "stories", source: "${STORIES_URI}", tokenizer: "${STORIES_TOKENIZER_URI}" }) { id } }`;
const calibration = { source: TINYSTORIES_URI, samples: 8, seqLen: 64 };
const training = { minSteps: 4, batchSize: 4, seed: 3, validationFraction: 0.25, learningRate: 1e-3, minLearningRate: 1e-4 };
const CANDIDATES = `query Candidates($id: ID!) { plan(id: $id) { status error outputUri replacement layersToPrune
  candidates { id status start blockSize replacement iterative removedLayers parametersBefore parametersAfter perplexityOriginal perplexity trainingLoss validationLoss pareto tasks { task } }
  events(limit: 1000) { candidateId stage step } } }`;
const EXPORT = `mutation Export($planId: ID!, $candidateId: ID!) { exportCandidate(planId: $planId, candidateId: $candidateId) { id status } }`;
const CANCEL = `mutation Cancel($planId: ID!, $candidateId: ID!) { cancelCandidate(planId: $planId, candidateId: $candidateId) { id status } }`;

/** A safetensors file's float32 tensors by name (the exports of stories260K are float32). */
function float32Tensors(path: string): Map<string, Float32Array> {
  const bytes = readFileSync(path);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8')) as Record<string, { dtype: string; data_offsets: [number, number] }>;
  const tensors = new Map<string, Float32Array>();
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    expect(entry.dtype).toBe('F32');
    const [from, to] = entry.data_offsets;
    const body = bytes.subarray(8 + headerLength + from, 8 + headerLength + to);
    tensors.set(name, new Float32Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength)));
  }
  return tensors;
}

describe.runIf(runWithShared)('sweeps through the API', () => {
  it('sweeps block sizes 1–3, cancels a candidate on its own, and exports a candidate equal to its single plan', async () => {
    const dataDir = gateways.tempDir();
    const gateway = await gateways.start({ dataDir, workers: 0 });
    const { registerModel } = await data(gateway.url, REGISTER);
    const modelId = registerModel.id;

    // Refusals name the field.
    expect((await failure(gateway.url, CREATE, { input: { modelId, layersToPrune: 2, calibration, sweep: { blockSizes: [1], replacements: ['LAYER'] } } })).message).toMatch(/input\.layersToPrune: not with input\.sweep/);
    expect((await failure(gateway.url, CREATE, { input: { modelId, calibration, sweep: { blockSizes: [5], replacements: ['LAYER'] } } })).message).toMatch(/input\.sweep\.blockSizes: .*5 is out of range; expected integers from 1 to 4/);
    const tooMany = await failure(gateway.url, CREATE, { input: { modelId, calibration, sweep: { blockSizes: [1, 2, 3], topStarts: 3, replacements: ['LAYER', 'LINEAR'] } } });
    expect(tooMany.code).toBe('BAD_USER_INPUT');
    expect(tooMany.message).toMatch(/18 candidates .* more than 16/);

    // A dry run estimates the sweep: its candidates, the shared hidden states' disk, roughly its time.
    const { createPruningPlan: estimate } = await data(gateway.url, CREATE, {
      input: { modelId, calibration, training, dryRun: true, sweep: { blockSizes: [1, 2, 3], topStarts: 1, replacements: ['LAYER', 'LINEAR'], iterative: true } },
    });
    // Both starts of a 4-layer block, NONE (nothing to train): one cancelled while the sweep is queued.
    const { createPruningPlan: small } = await data(gateway.url, CREATE, { input: { modelId, calibration, sweep: { blockSizes: [4], topStarts: 2, replacements: ['NONE'] } } });
    await data(gateway.url, CANCEL, { planId: small.id, candidateId: 'n4-s1-none' });
    // a size, kind or form the sweep does not make, and no id at all
    for (const candidateId of ['n2-s1-none', 'n4-s1-layer', 'n4-iterative', '../../etc', 'n4-s1-none-'.repeat(50)]) {
      const refused = await failure(gateway.url, CANCEL, { planId: small.id, candidateId });
      expect(refused.code).toBe('BAD_USER_INPUT');
      expect(refused.message).toMatch(/^candidateId: ".*" is not a candidate plan \S+ makes: ids are n<size>-s<start>-<kind> with size in 4 and kind in none$/);
    }
    const { createPruningPlan: plan } = await data(gateway.url, CREATE, {
      input: { modelId, calibration, training, sweep: { blockSizes: [1, 2, 3], topStarts: 1, replacements: ['LAYER', 'LINEAR'] } },
    });
    const worker = startWorker(gateway.url, gateway.workerToken, dataDir, 'w1');
    try {
      await waitForStatus(gateway.url, estimate.id, ['SUCCEEDED', 'FAILED'], 180_000);
      const { plan: estimated } = await data(gateway.url, `query { plan(id: "${estimate.id}") { status candidates { id } sweepEstimate { candidates hiddenStateBytes seconds } } }`);
      expect(estimated).toMatchObject({ status: 'SUCCEEDED', candidates: [] });
      expect(estimated.sweepEstimate.candidates).toBe(9); // 3 sizes × 2 kinds + 3 iterative
      // Some boundaries h[s] of 8 × 64 tokens × 64 floats: a whole number of them, at least 2.
      const boundaryBytes = 8 * 64 * 64 * 4;
      expect(estimated.sweepEstimate.hiddenStateBytes % boundaryBytes).toBe(0);
      expect(estimated.sweepEstimate.hiddenStateBytes / boundaryBytes).toBeGreaterThanOrEqual(2);
      expect(estimated.sweepEstimate.seconds).toBeGreaterThan(0);
      await waitForStatus(gateway.url, small.id, ['SUCCEEDED', 'FAILED'], 180_000);
      const { plan: smallDone } = await data(gateway.url, CANDIDATES, { id: small.id });
      expect(smallDone.candidates.map((c: { id: string; status: string }) => [c.id, c.status]).sort()).toEqual([['n4-s0-none', 'DONE'], ['n4-s1-none', 'CANCELLED']]);

      await waitForStatus(gateway.url, plan.id, ['SUCCEEDED', 'FAILED'], 180_000);
      const { plan: done } = await data(gateway.url, CANDIDATES, { id: plan.id });
      expect(done.error).toBeNull();
      expect(done.status).toBe('SUCCEEDED');
      const candidates = done.candidates;
      expect(candidates.map((c: { blockSize: number; replacement: string }) => [c.blockSize, c.replacement])).toEqual([[1, 'LAYER'], [1, 'LINEAR'], [2, 'LAYER'], [2, 'LINEAR'], [3, 'LAYER'], [3, 'LINEAR']]);
      for (const c of candidates) {
        expect(c).toMatchObject({ status: 'DONE', iterative: false, tasks: [] });
        expect(c.perplexity).toBeGreaterThan(1);
        expect(c.perplexityOriginal).toBe(candidates[0].perplexityOriginal); // the same windows for every candidate
        expect(c.trainingLoss).toBeGreaterThan(0);
        expect(c.removedLayers).toHaveLength(c.blockSize);
      }
      // The front: no candidate off it removes at least as much with a lower perplexity than one on it …
      const front = candidates.filter((c: { pareto: boolean }) => c.pareto);
      expect(front.length).toBeGreaterThan(0);
      const removed = (c: { parametersBefore: number; parametersAfter: number }) => c.parametersBefore - c.parametersAfter;
      for (const off of candidates.filter((c: { pareto: boolean }) => !c.pareto)) {
        expect(candidates.some((on: typeof off) => on.pareto && removed(on) >= removed(off) && on.perplexity <= off.perplexity)).toBe(true);
      }
      // … and each candidate's events carry its id.
      const ids = new Set(done.events.map((e: { candidateId: string | null }) => e.candidateId).filter(Boolean));
      expect(ids).toEqual(new Set(candidates.map((c: { id: string }) => c.id)));

      // Export the 2-layer LAYER candidate, and run the single plan for the same block.
      const chosen = candidates.find((c: { blockSize: number; replacement: string }) => c.blockSize === 2 && c.replacement === 'LAYER');
      expect((await failure(gateway.url, EXPORT, { planId: plan.id, candidateId: 'n9-s0-layer' })).message).toMatch(/candidateId: "n9-s0-layer" is not a candidate of plan/);
      const { exportCandidate: exported } = await data(gateway.url, EXPORT, { planId: plan.id, candidateId: chosen.id });
      const { createPruningPlan: single } = await data(gateway.url, CREATE, { input: { modelId, calibration, training, layersToPrune: 2, startLayer: chosen.start, replacement: 'LAYER' } });
      const exportDone = await waitForStatus(gateway.url, exported.id, ['SUCCEEDED', 'FAILED'], 180_000);
      const singleDone = await waitForStatus(gateway.url, single.id, ['SUCCEEDED', 'FAILED'], 180_000);
      expect(exportDone.error).toBeNull();
      expect(exportDone).toMatchObject({ status: 'SUCCEEDED', removedLayers: chosen.removedLayers, prunedParameters: chosen.parametersAfter });
      const { plan: exportEvents } = await data(gateway.url, CANDIDATES, { id: exported.id });
      expect(exportEvents.events.some((e: { stage: string }) => e.stage === 'TRAINING' || e.stage === 'COLLECTING')).toBe(false); // not trained again
      const a = float32Tensors(join(fileURLToPath(exportDone.outputUri), 'model.safetensors'));
      const b = float32Tensors(join(fileURLToPath(singleDone.outputUri), 'model.safetensors'));
      expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
      let worst = 0;
      for (const [name, x] of a) {
        const y = b.get(name)!;
        expect(y.length).toBe(x.length);
        for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]));
      }
      expect(worst).toBeLessThanOrEqual(1e-6);
    } finally {
      await stopProcess(worker);
    }
  }, 600_000);
});
