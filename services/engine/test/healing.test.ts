/**
 * Healing by distillation: the healing graph's gradient equals finite differences (float64); on every
 * family, a replacement that is exactly the removed layer has zero KL to the original (the in-graph
 * teacher is the engine's own forward pass); on stories260K a short heal lowers the pruned model's
 * held-out perplexity, streams its loss as HEALING events and writes before- and after-healing figures
 * to streamline.json; healing settings that cannot run are refused before any work; a stopped heal
 * resumes from its checkpoint to the weights of an uninterrupted one.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { transpose2d } from '../src/formats/host-tensor.js';
import { loadModel } from '../src/models/model.js';
import { healReplacement } from '../src/pruning/heal.js';
import { collectHiddenStatePairs, PairReader } from '../src/pruning/hidden-state-pairs.js';
import { prune, type PruneEvent } from '../src/pruning/prune.js';
import { initialParameters } from '../src/pruning/replacement.js';
import { loadBatch } from '../src/pruning/train.js';
import { attentionBias, ropeTables } from '../src/runtime/attention-inputs.js';
import { createRuntime } from '../src/runtime/create-runtime.js';
import type { TokenBatch } from '../src/runtime/runtime.js';
import { buildHealingStepGraph, frozenWeightNames } from '../src/training/onnx/healing-graphs.js';
import { OnnxReplacementTrainer } from '../src/training/onnx/onnx-trainer.js';
import { STORIES_BIN, STORIES_TOKENIZER, runWithShared, sharedPath } from '@streamline/testing/shared-data';
import { engineFailure } from './fixtures/failures.js';
import { seededRandom, TINY_CONFIGS, writeTinyModel } from './fixtures/tiny-models.js';
import { largestDifference, tinyHealingJob, tinyLlamaPairs } from './fixtures/tiny-pairs.js';

const work = mkdtempSync(join(tmpdir(), 'streamline-healing-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
let counter = 0;
const fresh = (name: string) => join(work, `${name}-${counter++}`);
const OPTIMIZER = { weightDecay: 0, gradClip: 0 };

function randomSamples(count: number, seed: number): number[][] {
  const random = seededRandom(seed);
  return Array.from({ length: count }, (_, i) => Array.from({ length: 5 + (i % 3) }, () => Math.floor((random() + 1) * 32)));
}

it('the healing step graph: d KL / d replacement equals finite differences (float64, qwen2: biases, tied head)', async () => {
  const model = loadModel(writeTinyModel('qwen2', { seed: 7 }));
  const { config } = model;
  const d = config.hiddenSize;
  const tailLayers = [2];
  const asTrained = (t: { shape: readonly number[]; data: Float32Array }) => (t.shape.length === 2 ? transpose2d(t) : t);
  const params = new Map([...initialParameters('LAYER', model, 0, 1)].map(([name, t]) => [name, asTrained(t)]));
  const frozen = new Map(frozenWeightNames({ model, tailLayers }).map((name) => [name, asTrained(model.weights.get(name)!)]));
  const shapes = new Map([...params].map(([name, t]) => [name, [...t.shape]]));
  const graph = buildHealingStepGraph({ kind: 'LAYER', model, shapes, tailLayers, frozenShapes: new Map([...frozen].map(([name, t]) => [name, [...t.shape]])), elem: 'double' });
  // Basic optimization: the full level fuses SiLU into QuickGelu, which has no float64 kernel.
  const session = await ort.InferenceSession.create(graph, { intraOpNumThreads: 1, graphOptimizationLevel: 'basic' });

  const random = seededRandom(13);
  const B = 2;
  const T = 5;
  const mask = new Uint8Array(B * T).fill(1);
  mask[B * T - 1] = 0;
  const f64 = (data: ArrayLike<number>, dims: readonly number[]) => new ort.Tensor('float64', Float64Array.from(data), [...dims]);
  const feeds: Record<string, ort.Tensor> = {
    x: f64(Array.from({ length: B * T * d }, () => random()), [B, T, d]),
    target: f64(Array.from({ length: B * T * d }, () => random()), [B, T, d]),
    mask: f64(mask, [B, T, 1]),
    loss_scale: f64([1 / 9], []),
    attention_bias: f64(attentionBias({ batchSize: B, seqLen: T, attentionMask: mask } as unknown as TokenBatch, config.slidingWindow), [B, 1, T, T]),
    rope_cos: f64(ropeTables(config, T).cos, [T, config.headDim]),
    rope_sin: f64(ropeTables(config, T).sin, [T, config.headDim]),
  };
  for (const [name, t] of frozen) feeds[`frozen.${name}`] = f64(t.data, t.shape);
  for (const [name, t] of params) feeds[`acc.${name}`] = f64(new Float64Array(t.data.length), t.shape);
  const run = async (shift: (name: string, i: number) => number) => {
    const withParams = { ...feeds };
    for (const [name, t] of params) withParams[`param.${name}`] = f64(Array.from(t.data, (v, i) => v + shift(name, i)), t.shape);
    return session.run(withParams);
  };
  const direction = new Map([...params].map(([name, t]) => [name, Float64Array.from(t.data, () => random())]));
  const analytic = await run(() => 0);
  let exact = 0;
  let norm = 0;
  for (const [name, u] of direction) {
    const grad = analytic[`grad.${name}`].data as Float64Array;
    grad.forEach((g, i) => (exact += g * u[i]));
    norm += grad.reduce((s, g) => s + g * g, 0);
  }
  const epsilon = 1e-6;
  const lossAt = async (sign: number) => ((await run((name, i) => sign * epsilon * direction.get(name)![i])).loss.data as Float64Array)[0];
  const numeric = ((await lossAt(1)) - (await lossAt(-1))) / (2 * epsilon);
  expect(norm).toBeGreaterThan(0);
  expect(Math.abs(numeric - exact) / Math.abs(exact)).toBeLessThan(1e-6);
  await session.release();
});

describe.each(Object.keys(TINY_CONFIGS))('%s: healing', (family) => {
  it('a LAYER replacement that is the removed layer itself has zero KL to the original (teacher = the forward pass)', async () => {
    const model = loadModel(writeTinyModel(family, { seed: 3 }));
    const runtime = await createRuntime(model, { runtime: 'onnx' });
    const dir = fresh('pairs');
    const manifest = await collectHiddenStatePairs(runtime, randomSamples(4, 5), { dir, key: 'k', block: { start: 0, size: 1 }, hiddenSize: model.config.hiddenSize, dtype: 'F32', validation: new Set(), batchSize: 4 });
    await runtime.dispose();
    const pairs = new PairReader(dir, manifest);
    const initial = new Map([...initialParameters('LAYER', model, 0, 1)].map(([name, t]) => [name, t.shape.length === 2 ? transpose2d(t) : t]));
    const trainer = await OnnxReplacementTrainer.createHealing({ kind: 'LAYER', model, initial, optimizer: OPTIMIZER, threads: 1 }, { layers: [1, 2], read: (name) => model.weights.get(name)! });
    try {
      const batch = loadBatch(pairs, [0, 1, 2, 3]);
      expect(Math.abs(await trainer.klSum(batch)) / batch.tokens).toBeLessThan(1e-5);
      // …and a perturbed replacement has a clearly positive one, which a few steps reduce.
      const state = await trainer.state();
      for (const t of state.params.values()) t.data.forEach((v, i, a) => (a[i] = v * (1 + 0.3 * Math.sin(i))));
      await trainer.restore(state);
      const perturbed = await trainer.klSum(batch);
      expect(perturbed / batch.tokens).toBeGreaterThan(1e-4);
      for (let step = 0; step < 5; step++) {
        await trainer.accumulate(batch);
        await trainer.step(1, 3e-3);
      }
      expect(await trainer.klSum(batch)).toBeLessThan(perturbed);
    } finally {
      await trainer.dispose();
      pairs.close();
    }
  });
});

describe('healing checkpoints', () => {
  it('resumes from its last checkpoint to the weights of an uninterrupted run, cancelled or killed, ignoring a half-written one', async () => {
    const { model, pairs } = await tinyLlamaPairs(fresh('pairs'), 1);
    try {
      const heal = (dir: string, onStep?: (step: number) => void, signal?: AbortSignal) =>
        healReplacement(tinyHealingJob(model, pairs, { checkpoints: { dir, key: 'same', every: 3 }, signal, onProgress: (p) => onStep?.(p.step) }));
      const uninterrupted = await heal(fresh('heal'));
      expect(uninterrupted.resumedFromStep).toBeNull();
      // The best weights come before the checkpoints resumed from, and early stopping after them: both
      // the kept weights and the counters must survive the interruption.
      expect(uninterrupted).toMatchObject({ stoppedEarly: true, bestStep: 3, steps: 11 });

      // Cancelled after step 7: saved on the way out.
      const cancelledDir = fresh('heal');
      const controller = new AbortController();
      await expect(heal(cancelledDir, (step) => step === 7 && controller.abort(), controller.signal)).rejects.toThrow(/healing was cancelled/);
      mkdirSync(join(cancelledDir, 'checkpoint.tmp'), { recursive: true });
      writeFileSync(join(cancelledDir, 'checkpoint.tmp', 'state.json'), '{"half": '); // a crash mid-write
      // Killed (not cancelled) during step 8: only the periodic checkpoint of step 6 is there.
      const killedDir = fresh('heal');
      await expect(heal(killedDir, (step) => { if (step === 8) throw new Error('killed'); })).rejects.toThrow('killed');

      for (const [dir, from] of [[cancelledDir, 7], [killedDir, 6]] as const) {
        const resumedSteps: number[] = [];
        const resumed = await heal(dir, (step) => resumedSteps.push(step));
        expect(resumed.resumedFromStep).toBe(from);
        expect(resumedSteps[0]).toBe(from + 1); // no step done again
        expect({ ...resumed, params: null, resumedFromStep: null }).toEqual({ ...uninterrupted, params: null });
        expect(largestDifference(resumed.params, uninterrupted.params)).toBeLessThanOrEqual(1e-6);
      }
      // A checkpoint of other settings (another key) is not resumed.
      expect((await healReplacement(tinyHealingJob(model, pairs, { checkpoints: { dir: killedDir, key: 'other', every: 3 } }))).resumedFromStep).toBeNull();
    } finally {
      pairs.close();
    }
  });
});

describe.skipIf(!runWithShared)('stories260K: healing', () => {
  const base = {
    modelPath: STORIES_BIN,
    tokenizerPath: STORIES_TOKENIZER,
    dataPath: sharedPath('data/text/tinystories_val_excerpt.txt'),
    layers: 2,
    start: 2,
    replacement: 'LAYER' as const,
    samples: 32,
    seqLen: 128,
    batchSize: 8,
    evalWindows: 16,
    training: { learningRate: 2e-3, minLearningRate: 2e-4, minSteps: 40 },
  };

  it('a short heal lowers held-out perplexity; its loss streams as HEALING events; streamline.json has the figures before and after', async () => {
    const events: PruneEvent[] = [];
    const outDir = fresh('out');
    const summary = await prune({
      ...base,
      workDir: fresh('work'),
      outDir,
      healing: { steps: 60, learningRate: 1e-3, validationFraction: 0.1, patience: 5 },
      onProgress: (event) => events.push(event),
    });
    const healing = summary.healing!;
    expect(healing.perplexity!.after).toBe(summary.evaluation!.perplexityPruned);
    expect(healing.perplexity!.after).toBeLessThan(healing.perplexity!.before);
    expect(healing.validationKl.after!).toBeLessThan(healing.validationKl.before!);
    expect(healing.bestStep).toBeGreaterThan(0);
    const steps = events.filter((e) => e.stage === 'HEALING' && e.training);
    expect(steps.map((e) => e.training!.step)).toEqual(Array.from({ length: healing.steps }, (_, i) => i + 1));
    expect(steps.every((e) => Number.isFinite(e.training!.loss) && e.training!.loss > 0)).toBe(true);
    const manifest = JSON.parse(readFileSync(join(outDir, 'streamline.json'), 'utf8'));
    expect(manifest.healing.perplexity).toEqual(healing.perplexity);
    expect(manifest.healing.settings).toEqual({ steps: 60, learningRate: 1e-3, validationFraction: 0.1, patience: 5 });
  });

  it('refuses a heal whose estimate exceeds the memory budget once the block is known, before collecting pairs', async () => {
    const events: PruneEvent[] = [];
    const failure = await engineFailure(
      prune({ ...base, seqLen: 256, batchSize: 16, memoryBudget: '64MiB', workDir: fresh('work'), outDir: fresh('out'), healing: { steps: 10, learningRate: 1e-3, validationFraction: 0.1, patience: 2 }, onProgress: (e) => events.push(e) }),
    );
    expect(failure.message).toMatch(/^healing needs about \d+\.\d MiB \(the 1 layer after the block and the LM head in float32, and one batch's activations\) but the memory budget is 64\.0 MiB; use a smaller batch size or sequence length, or raise the memory budget$/);
    expect(events.some((e) => e.stage === 'COLLECTING')).toBe(false);
  });

  it('refuses healing a replacement that is not trained, and settings out of range, before any work', async () => {
    const attempt = (overrides: object) => prune({ ...base, workDir: fresh('work'), outDir: fresh('out'), ...overrides });
    const linear = await engineFailure(attempt({ replacement: 'LINEAR', healing: { steps: 10, learningRate: 1e-3, validationFraction: 0.1, patience: 2 } }));
    expect(linear.message).toContain('healing fine-tunes a trained replacement (FFN, SWIGLU or LAYER); the LINEAR replacement has nothing to heal');
    const bad = await engineFailure(attempt({ healing: { steps: 0, learningRate: -1, validationFraction: 1, patience: 0 } }));
    for (const part of ['healing steps must be a positive integer, got 0', 'learning rate must be a positive number, got -1', 'validation fraction must be in [0, 1), got 1', 'patience must be a positive integer, got 0']) {
      expect(bad.message).toContain(part);
    }
  });
});
