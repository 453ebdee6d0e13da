/**
 * Pruning end to end on tiny models (every kind, export and reload, resume, bad input, a full disk) and
 * on the real stories260K model (the block importance picks, and the perplexity ordering the method
 * promises: original < LAYER < SWIGLU < NONE).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { computePerplexity, loadTextWindows } from '../src/evaluation/perplexity.js';
import { layerWeightName } from '../src/models/architecture.js';
import { loadModel, type LoadedModel } from '../src/models/model.js';
import { blockSizeForSparsity, layerParameters } from '../src/pruning/block-choice.js';
import { prune, type PruneOptions } from '../src/pruning/prune.js';
import { initialParameters } from '../src/pruning/replacement.js';
import { trainReplacement, type TrainingSettings } from '../src/pruning/train.js';
import { createRuntime } from '../src/runtime/create-runtime.js';
import { makeBatch } from '../src/runtime/runtime.js';
import { loadTokenizer } from '../src/tokenizers/tokenizer.js';
import { STORIES_BIN, STORIES_TOKENIZER, runWithShared, sharedPath } from '@streamline/testing/shared-data';
import { tinyLlamaPairs } from './fixtures/tiny-pairs.js';
import { seededRandom, writeTinyModel } from './fixtures/tiny-models.js';

const work = mkdtempSync(join(tmpdir(), 'streamline-pruning-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
let counter = 0;
const fresh = (name: string) => join(work, `${name}-${counter++}`);

/** A JSONL file of random token sequences for the tiny models (vocabulary 64). */
function tinyData(samples: number, length: number): string {
  const random = seededRandom(99);
  const path = fresh('data') + '.jsonl';
  const lines = Array.from({ length: samples }, () => JSON.stringify({ input_ids: Array.from({ length }, () => Math.floor((random() + 1) * 32)) }));
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

function tinyPrune(model: string, overrides: Partial<PruneOptions>): Promise<Awaited<ReturnType<typeof prune>>> {
  return prune({
    modelPath: model,
    dataPath: tinyData(6, 10),
    workDir: fresh('work'),
    outDir: fresh('out'),
    layers: 1,
    replacement: 'NONE',
    samples: 6,
    seqLen: 10,
    batchSize: 2,
    training: { minSteps: 4, checkpointEvery: 2 },
    ...overrides,
  });
}

async function logits(model: LoadedModel, runtime: 'onnx' | 'tfjs' = 'onnx'): Promise<Float32Array> {
  const r = await createRuntime(model, { runtime });
  try {
    return (await r.forward(makeBatch([[1, 5, 9, 33, 2, 17], [3, 4]]), { logits: true })).logits!.data;
  } finally {
    await r.dispose();
  }
}

function hashDir(dir: string): string {
  const digest = createHash('sha256');
  for (const name of readdirSync(dir).sort()) digest.update(name).update(readFileSync(join(dir, name)));
  return digest.digest('hex');
}

describe('block choice', () => {
  const model = loadModel(writeTinyModel('llama'));

  it('finds the block size closest to a target sparsity, net of the replacement', () => {
    const perLayer = layerParameters(model.family, model.config);
    const total = model.numParameters;
    expect(blockSizeForSparsity((2 * perLayer) / total, 'NONE', model.family, model.config, total).size).toBe(2);
    // A LAYER replacement gives one layer back: the same sparsity needs one more layer.
    expect(blockSizeForSparsity((1 * perLayer) / total, 'LAYER', model.family, model.config, total).size).toBe(2);
    expect(() => blockSizeForSparsity(0.95, 'NONE', model.family, model.config, total)).toThrow(/no block reaches target sparsity 95.0% with a NONE replacement \(reachable: 1 layers → .*%, 2 layers → .*%\)/);
    expect(() => blockSizeForSparsity(1.5, 'NONE', model.family, model.config, total)).toThrow(/between 0 and 1/);
  });
});

describe('pruning tiny models', () => {
  it.each(['NONE', 'LINEAR', 'FFN', 'SWIGLU', 'LAYER'] as const)('%s: exports a checkpoint that reloads with the same logits on both runtimes', async (kind) => {
    const dir = writeTinyModel('llama', { dtype: 'BF16' });
    // LINEAR also stores its hidden-state pairs as float16.
    const summary = await tinyPrune(dir, { replacement: kind, start: 1, pairsDtype: kind === 'LINEAR' ? 'F16' : 'F32' });
    expect(summary.removedLayers).toEqual([1]);
    expect(summary.netLayersRemoved).toBe(kind === 'LAYER' || kind === 'SWIGLU' ? 0 : 1);
    const exported = loadModel(summary.outDir);
    expect(exported.config.numLayers).toBe(summary.numLayers.after);
    expect(exported.config.dtype).toBe('BF16');
    expect(exported.numParameters).toBe(summary.numParameters.after);
    expect(exported.replacement?.kind).toBe(kind === 'LINEAR' || kind === 'FFN' ? kind : undefined);
    const manifest = JSON.parse(readFileSync(join(summary.outDir, 'streamline.json'), 'utf8'));
    expect(manifest).toMatchObject({ removedLayers: [1], replacement: kind, source: { numLayers: 3 } });
    expect(manifest.data.sha256).toMatch(/^[0-9a-f]{64}$/);
    if (kind !== 'NONE') expect(summary.training!.epochs.at(-1)!.validationCosine).toBeGreaterThan(0); // a number, computed on held-out samples
    const [onnx, tfjs] = [await logits(exported, 'onnx'), await logits(exported, 'tfjs')];
    onnx.forEach((value, i) => expect(Math.abs(value - tfjs[i])).toBeLessThan(1e-4));
  });

  it('NONE equals the original with the block deleted and the rest renumbered', async () => {
    const dir = writeTinyModel('qwen2');
    const original = loadModel(dir);
    const summary = await tinyPrune(dir, { replacement: 'NONE', layers: 1, start: 0 });
    const pruned = loadModel(summary.outDir);
    expect(pruned.config.numLayers).toBe(2);
    for (const [newLayer, oldLayer] of [[0, 1], [1, 2]]) {
      for (const part of ['q', 'k', 'v', 'o', 'gate', 'up', 'down', 'attentionNorm', 'mlpNorm'] as const) {
        expect(pruned.weights.get(layerWeightName(pruned.family, newLayer, part))).toEqual(original.weights.get(layerWeightName(original.family, oldLayer, part)));
      }
    }
    expect(pruned.weights.get('model.embed_tokens.weight')).toEqual(original.weights.get('model.embed_tokens.weight'));
  });

  it('SWIGLU is a plain decoder layer whose attention projections are zero', async () => {
    const summary = await tinyPrune(writeTinyModel('mistral'), { replacement: 'SWIGLU', layers: 2, start: 0 });
    const pruned = loadModel(summary.outDir);
    expect(pruned.config.numLayers).toBe(2);
    for (const part of ['q', 'k', 'v', 'o'] as const) expect(pruned.weights.get(layerWeightName(pruned.family, 0, part))!.data.every((x) => x === 0)).toBe(true);
    expect(pruned.weights.get(layerWeightName(pruned.family, 0, 'gate'))!.data.some((x) => x !== 0)).toBe(true);
  });

  it('refuses bad plans before any work, leaving the source untouched', async () => {
    const dir = writeTinyModel('llama');
    const before = hashDir(dir);
    await expect(tinyPrune(dir, { layers: 2, start: 2 })).rejects.toThrow(/start 2 with 2 layers does not fit a 3-layer model: layers 2..3 must lie within 0..2 \(start from 0 to 1\)/);
    await expect(tinyPrune(dir, { layers: 3 })).rejects.toThrow(/a block must remove from 1 to 2 of the model's 3 layers/);
    await expect(tinyPrune(dir, { layers: undefined, targetSparsity: 0.9 })).rejects.toThrow(/no block reaches target sparsity 90.0%/);
    await expect(tinyPrune(dir, { layers: 1, targetSparsity: 0.2 })).rejects.toThrow(/exactly one of layers \(the block size\) and target sparsity/);
    await expect(tinyPrune(dir, { replacement: 'PRUNE_ALL' as never })).rejects.toThrow(/replacement "PRUNE_ALL" is not one of NONE, LINEAR, FFN, SWIGLU, LAYER/);
    await expect(tinyPrune(writeTinyModel('opt'), { replacement: 'SWIGLU' })).rejects.toThrow(/SWIGLU needs a gated \(SwiGLU\) MLP, which opt does not have/);
    const empty = fresh('empty') + '.jsonl';
    writeFileSync(empty, '');
    await expect(tinyPrune(dir, { dataPath: empty })).rejects.toThrow(/has no usable sample/);
    const occupied = fresh('occupied');
    mkdirSync(occupied);
    writeFileSync(join(occupied, 'keep.txt'), 'mine');
    await expect(tinyPrune(dir, { outDir: occupied })).rejects.toThrow(/output directory .* already exists and is not empty/);
    expect(readFileSync(join(occupied, 'keep.txt'), 'utf8')).toBe('mine');
    expect(hashDir(dir)).toBe(before);
  });

  it('stops with a clear error when the disk fills up mid-collection, leaving no output and the source untouched', async () => {
    const dir = writeTinyModel('llama');
    const before = hashDir(dir);
    const workDir = fresh('full');
    mkdirSync(join(workDir, 'pairs'), { recursive: true });
    symlinkSync('/dev/full', join(workDir, 'pairs', 'pairs-00000.bin')); // writes there fail with ENOSPC
    const outDir = fresh('out');
    await expect(tinyPrune(dir, { replacement: 'LAYER', workDir, outDir })).rejects.toThrow(/the disk filled up while writing hidden-state pairs to .*pairs; free space or choose another --work-dir/);
    expect(existsSync(outDir)).toBe(false);
    expect(existsSync(join(workDir, 'pairs', 'manifest.json'))).toBe(false);
    expect(hashDir(dir)).toBe(before);
  });
});

describe('training', () => {
  const settings: TrainingSettings = {
    minSteps: 9,
    batchSize: 2,
    gradAccum: 2,
    learningRate: 1e-2,
    minLearningRate: 1e-3,
    weightDecay: 1e-3,
    gradClip: 1,
    seed: 3,
    checkpointEvery: 2,
  };

  const setup = () => tinyLlamaPairs(fresh('pairs'), 1);

  it('resumes from its last checkpoint to the same weights as an uninterrupted run, ignoring a half-written one', async () => {
    const { model, pairs } = await setup();
    const job = (dir: string, signal?: AbortSignal, onProgress?: (step: number) => void) =>
      trainReplacement({ kind: 'LAYER', model, initial: () => initialParameters('LAYER', model, 1, 3), pairs, dir, key: 'same', settings, signal, onProgress: (p) => onProgress?.(p.step) });

    const uninterrupted = await job(fresh('train'));
    expect(uninterrupted.steps).toBe(10); // 8 training samples, batches of 2, 2 per step: 2 steps an epoch, 5 epochs to reach 9
    expect(uninterrupted.resumedFromStep).toBeNull();

    const dir = fresh('train');
    const controller = new AbortController();
    await expect(job(dir, controller.signal, (step) => step === 5 && controller.abort())).rejects.toThrow(/training was cancelled/);
    mkdirSync(join(dir, 'checkpoint.tmp'), { recursive: true });
    writeFileSync(join(dir, 'checkpoint.tmp', 'state.json'), '{"half": '); // a crash mid-write
    const resumed = await job(dir);
    expect(resumed.resumedFromStep).toBe(5); // cancelled after step 5: saved on the way out
    expect(resumed.epochs).toEqual(uninterrupted.epochs);
    for (const [name, tensor] of uninterrupted.params) expect(Array.from(resumed.params.get(name)!.data)).toEqual(Array.from(tensor.data));
    pairs.close();
  });

  it('resumes from the last periodic checkpoint when the process dies without saving', async () => {
    const { model, pairs } = await setup();
    const job = (dir: string, onProgress?: (step: number) => void) =>
      trainReplacement({ kind: 'SWIGLU', model, initial: () => initialParameters('SWIGLU', model, 1, 3), pairs, dir, key: 'k2', settings, onProgress: (p) => onProgress?.(p.step) });
    const uninterrupted = await job(fresh('train'));
    const dir = fresh('train');
    // A crash (not a cancellation): nothing is saved beyond the step-4 checkpoint.
    await expect(job(dir, (step) => { if (step === 5) throw new Error('killed'); })).rejects.toThrow('killed');
    const resumed = await job(dir);
    expect(resumed.resumedFromStep).toBe(4);
    for (const [name, tensor] of uninterrupted.params) expect(Array.from(resumed.params.get(name)!.data)).toEqual(Array.from(tensor.data));
    pairs.close();
  });

  it('lowers the loss and keeps the best validation epoch', async () => {
    const { model, pairs } = await setup();
    const result = await trainReplacement({ kind: 'FFN', model, initial: () => initialParameters('FFN', model, 1, 1), pairs, dir: fresh('train'), key: 'ffn', settings: { ...settings, minSteps: 30 } });
    const losses = result.epochs.map((e) => e.validationLoss!);
    expect(losses.at(-1)!).toBeLessThan(losses[0]);
    expect(result.epochs[result.bestEpoch - 1].validationLoss).toBe(Math.min(...losses));
    pairs.close();
  });
});

describe.skipIf(!runWithShared)('stories260K: pruning 2 layers', () => {
  const data = sharedPath('data/text/tinystories_val_excerpt.txt');
  const results: Record<string, number> = {};
  const run = (replacement: PruneOptions['replacement'], extra: Partial<PruneOptions> = {}) =>
    prune({
      modelPath: STORIES_BIN,
      dataPath: data,
      workDir: fresh('work'),
      outDir: fresh(`stories-${replacement}`),
      layers: 2,
      replacement,
      samples: 32,
      seqLen: 256,
      batchSize: 8,
      evalWindows: 8,
      // Fewer steps than the README's 300 to keep CI short; the ordering already holds.
      training: { learningRate: 2e-3, minLearningRate: 2e-4, minSteps: 60 },
      ...extra,
    });

  it('removes layers 2–3, the block importance picks, and orders perplexities original < LAYER < SWIGLU < NONE', async () => {
    for (const kind of ['NONE', 'SWIGLU', 'LAYER'] as const) {
      const summary = await run(kind);
      expect(summary.removedLayers).toEqual([2, 3]);
      expect(summary.importance!.bestStart).toBe(2);
      results.original = summary.evaluation!.perplexityOriginal;
      results[kind] = summary.evaluation!.perplexityPruned;

      // The exported checkpoint, reloaded, scores exactly what the in-memory pruned model scored.
      const tokenizer = await loadTokenizer(STORIES_TOKENIZER);
      const windows = await loadTextWindows(data, tokenizer, { seqLen: 256, windows: 8, skipWindows: 32, vocabSize: 512 });
      const runtime = await createRuntime(loadModel(summary.outDir));
      try {
        expect((await computePerplexity(runtime, windows, { batchSize: 8 })).perplexity).toBeCloseTo(summary.evaluation!.perplexityPruned, 6);
      } finally {
        await runtime.dispose();
      }
    }
    expect(results.original).toBeLessThan(results.LAYER);
    expect(results.LAYER).toBeLessThan(results.SWIGLU);
    expect(results.SWIGLU).toBeLessThan(results.NONE);
  });

  it('evaluates multiple choice and stability when asked, and keeps the report in streamline.json', async () => {
    const summary = await run('NONE', { evaluation: { tasks: [sharedPath('data/mc/copa.jsonl')], limit: 20 } });
    const task = summary.report!.tasks[0];
    expect(task).toMatchObject({ task: 'copa', numItems: 20 });
    expect(task.stability).toBeGreaterThanOrEqual(0);
    expect(task.stability).toBeLessThanOrEqual(1);
    const manifest = JSON.parse(readFileSync(join(summary.outDir, 'streamline.json'), 'utf8'));
    expect(manifest.evaluation.report.tasks[0].items).toHaveLength(20);
    expect(manifest.evaluation.report.tasks[0].stability).toBe(task.stability);
  });

  it('does much worse when the first two layers go instead', async () => {
    const summary = await run('NONE', { start: 0 });
    expect(summary.importance).toBeNull();
    expect(summary.evaluation!.perplexityPruned).toBeGreaterThan(3 * (results.NONE ?? 50));
  });
});
