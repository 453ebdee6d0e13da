/**
 * The layer-streamed ONNX pass against the whole-model one, on every family (tiny random models, stored
 * in f32, f16 and bf16, sharded); its pass checkpoint; the memory budget setting; the pruned model's
 * streamed export; the TensorFlow.js size limit.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openCalibrationSession } from '../src/calibration-session.js';
import { checkFreeSpace } from '../src/disk-space.js';
import { computeImportance } from '../src/importance.js';
import { inspectModel, loadModel } from '../src/models/model.js';
import { openWeightReader } from '../src/models/weight-reader.js';
import { prune } from '../src/pruning/prune.js';
import { createRuntime } from '../src/runtime/create-runtime.js';
import { availableMemory, memoryBudget, parseMemorySize } from '../src/runtime/memory-budget.js';
import { StreamedOnnxForward } from '../src/runtime/onnx/streamed-forward.js';
import { openRuntime } from '../src/runtime/open-runtime.js';
import { makeBatch, type ForwardRuntime } from '../src/runtime/runtime.js';
import { runWithShared, sharedPath, STORIES_BIN } from '@streamline/testing/shared-data';
import { seededRandom, writeTinyModel } from './fixtures/tiny-models.js';
import { maxAbsDiff } from './fixtures/compare.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));
const fresh = () => {
  const dir = mkdtempSync(join(tmpdir(), 'streamline-streamed-'));
  dirs.push(dir);
  return dir;
};
const sequences = (seed: number, lengths: number[], vocab = 64) => {
  const random = seededRandom(seed);
  return lengths.map((n) => Array.from({ length: n }, () => Math.floor(((random() + 1) / 2) * vocab)));
};
const GiB = 1024 ** 3;

describe('the layer-streamed pass computes what the whole model computes', () => {
  it.each([
    ['llama', 'F32'],
    ['llama', 'BF16'],
    ['mistral', 'F16'],
    ['qwen2', 'BF16'],
    ['opt', 'F32'],
  ] as const)('%s stored as %s: logits and every hidden state', async (family, dtype) => {
    const dir = writeTinyModel(family, { dtype, maxShardBytes: 4096 }); // several shards
    const info = inspectModel(dir);
    const whole = await createRuntime(loadModel(dir), { runtime: 'onnx' });
    const weights = openWeightReader(info);
    const streamed = new StreamedOnnxForward({ family: info.family, config: info.config, weights }, { memoryBudget: GiB, ownsWeights: true });
    try {
      const batch = makeBatch(sequences(3, [9, 5, 7]));
      const expected = await whole.forward(batch, { logits: true, hiddenStates: true });
      const actual = await streamed.forward(batch, { logits: true, hiddenStates: true });
      expect(maxAbsDiff(actual.logits!.data, expected.logits!.data)).toBeLessThan(1e-4);
      expected.hiddenStates!.forEach((state, i) => expect(maxAbsDiff(actual.hiddenStates![i].data, state.data)).toBeLessThan(1e-4));
      expect(weights.bytesRead).toBeGreaterThan(0);
    } finally {
      await whole.dispose();
      await streamed.dispose();
    }
  });

  it('keeps an F16 model narrow up to the graph (the CUDA path, checked on the CPU provider)', async () => {
    const dir = writeTinyModel('llama', { dtype: 'F16' });
    const info = inspectModel(dir);
    const whole = await createRuntime(loadModel(dir), { runtime: 'onnx' });
    const streamed = new StreamedOnnxForward({ family: info.family, config: info.config, weights: openWeightReader(info) }, { memoryBudget: GiB, ownsWeights: true, narrowWeights: true });
    try {
      const batch = makeBatch(sequences(4, [7, 3]));
      const expected = await whole.forward(batch, { logits: true });
      expect(maxAbsDiff((await streamed.forward(batch, { logits: true })).logits!.data, expected.logits!.data)).toBeLessThan(1e-4);
    } finally {
      await whole.dispose();
      await streamed.dispose();
    }
  });

  it('reads each layer once per pass whatever the number of batches, and embeds only the rows used', async () => {
    const dir = writeTinyModel('llama', { dtype: 'BF16' });
    const info = inspectModel(dir);
    const weights = openWeightReader(info);
    const streamed = new StreamedOnnxForward({ family: info.family, config: info.config, weights }, { memoryBudget: GiB, ownsWeights: true });
    try {
      const layers: number[] = [];
      const batches = [0, 1, 2, 3].map((seed) => makeBatch(sequences(seed, [6, 6])));
      await streamed.pass(batches, {}, { onLayer: (p) => layers.push(p.layer) });
      expect(layers).toEqual([-1, 0, 1, 2]);
      let layerBytes = 0;
      for (const name of readdirSync(dir)) if (name.endsWith('.safetensors')) layerBytes += readFileSync(join(dir, name)).byteLength;
      // Every decoder layer once, a few embedding rows; neither the full table nor the LM head.
      const embedBytes = weights.byteLength('model.embed_tokens.weight');
      expect(weights.bytesRead).toBeLessThan(layerBytes - 2 * embedBytes + embedBytes / 2);
    } finally {
      await streamed.dispose();
    }
  });

  it('importance: the same matrix with activations in memory, spilled to disk, and on the whole model', async () => {
    const dir = writeTinyModel('llama', { dtype: 'BF16' });
    const samples = sequences(5, [12, 9, 4, 12, 7]);
    const whole = await createRuntime(loadModel(dir), { runtime: 'onnx' });
    const expected = await computeImportance(whole, 3, samples, 12, { batchSize: 2 });
    await whole.dispose();
    for (const memoryBudget of [GiB, 64 * 1024]) {
      const runtime = await openRuntime(inspectModel(dir), { memoryBudget, spillDir: fresh() });
      const actual = await computeImportance(runtime, 3, samples, 12, { batchSize: 2 });
      await runtime.dispose();
      expect(actual.tokens).toBe(expected.tokens);
      actual.blocks.forEach((block, i) => expect(maxAbsDiff(block.scores, expected.blocks[i].scores)).toBeLessThan(1e-5));
    }
  });

  it('resumes a pass cut short from its last complete layer, to the same scores', async () => {
    const dir = writeTinyModel('llama', { dtype: 'BF16', config: { num_hidden_layers: 4 } });
    const samples = sequences(9, [10, 10, 8]);
    const checkpoint = { dir: join(fresh(), 'pass'), key: 'k1' };
    const uninterrupted = await (async () => {
      const runtime = await openRuntime(inspectModel(dir), { memoryBudget: GiB });
      try {
        return await computeImportance(runtime, 4, samples, 10, { batchSize: 2 });
      } finally {
        await runtime.dispose();
      }
    })();
    const crashing = await openRuntime(inspectModel(dir), { memoryBudget: GiB });
    await expect(
      computeImportance(crashing, 4, samples, 10, {
        batchSize: 2,
        checkpoint,
        onLayer: (p) => {
          if (p.layer === 1) throw new Error('killed after layer 1');
        },
      }),
    ).rejects.toThrow('killed after layer 1');
    await crashing.dispose();
    expect(JSON.parse(readFileSync(join(checkpoint.dir, 'pass.json'), 'utf8'))).toEqual({ key: 'k1', state: 2 });

    const layers: { layer: number; resumed?: boolean }[] = [];
    const runtime = await openRuntime(inspectModel(dir), { memoryBudget: GiB });
    const resumed = await computeImportance(runtime, 4, samples, 10, { batchSize: 2, checkpoint, onLayer: (p) => layers.push({ layer: p.layer, resumed: p.resumed }) });
    await runtime.dispose();
    expect(layers[0]).toEqual({ layer: 1, resumed: true });
    expect(layers.map((l) => l.layer)).toEqual([1, 2, 3]);
    resumed.blocks.forEach((block, i) => expect(maxAbsDiff(block.scores, uninterrupted.blocks[i].scores)).toBeLessThan(1e-6));
  });

  it.runIf(runWithShared)('gives stories260K the whole-model importance and logits (within 1e-4)', async () => {
    const samples = sequences(1, [64, 64, 64, 40], 512);
    const session = await openCalibrationSession({ modelPath: STORIES_BIN, dataPath: sharedPath('data/text/tinystories_val_excerpt.txt'), samples: 8, seqLen: 64 });
    const streamed = await session.runtime();
    const whole = await createRuntime(loadModel(STORIES_BIN), { runtime: 'onnx' });
    try {
      const bytes: number[] = [];
      const [a, b] = [await computeImportance(streamed, 5, session.data, 64, { onLayer: (p) => bytes.push(p.bytesRead) }), await computeImportance(whole, 5, session.data, 64)];
      // Read from the llama2.c file a layer at a time: the bytes grow with each layer, to about the file's size.
      expect(bytes.every((n, i) => i === 0 || n > bytes[i - 1])).toBe(true);
      expect(bytes.at(-1)).toBeGreaterThan(0.5 * statSync(STORIES_BIN).size);
      a.blocks.forEach((block, i) => expect(maxAbsDiff(block.scores, b.blocks[i].scores)).toBeLessThan(1e-4));
      const batch = makeBatch(samples);
      expect(maxAbsDiff((await streamed.forward(batch, { logits: true })).logits!.data, (await whole.forward(batch, { logits: true })).logits!.data)).toBeLessThan(1e-4);
    } finally {
      await whole.dispose();
      await session.close();
    }
  });
});

describe('the memory budget', () => {
  it('parses sizes with units and refuses nonsense, naming the setting', () => {
    expect(parseMemorySize('6GiB')).toBe(6 * GiB);
    expect(parseMemorySize('512 MiB')).toBe(512 * 1024 ** 2);
    expect(parseMemorySize('8GB')).toBe(8e9);
    expect(parseMemorySize('1073741824')).toBe(GiB);
    expect(() => parseMemorySize('lots')).toThrow(/STREAMLINE_MEMORY_BUDGET "lots" must be a size/);
    expect(() => parseMemorySize('1KiB', '--memory-budget')).toThrow(/--memory-budget/);
    expect(memoryBudget('2GiB')).toBe(2 * GiB);
  });

  it('reads a cgroup v2 limit (less its usage) and ignores "max"', () => {
    const root = fresh();
    writeFileSync(join(root, 'memory.max'), `${3 * GiB}\n`);
    writeFileSync(join(root, 'memory.current'), `${GiB}\n`);
    expect(availableMemory(root)).toEqual({ bytes: 2 * GiB, source: 'cgroup v2 memory.max' });
    writeFileSync(join(root, 'memory.max'), 'max\n');
    expect(availableMemory(root).source).toBe('host available memory');
    const v1 = fresh();
    mkdirSync(join(v1, 'memory'));
    writeFileSync(join(v1, 'memory', 'memory.limit_in_bytes'), `${4 * GiB}`);
    writeFileSync(join(v1, 'memory', 'memory.usage_in_bytes'), `${GiB}`);
    expect(availableMemory(v1)).toEqual({ bytes: 3 * GiB, source: 'cgroup v1 memory.limit_in_bytes' });
  });
});

describe('pruning with the layer-streamed runtime', () => {
  it('exports a sharded bf16 checkpoint, tensor by tensor, whose reloaded logits match the pruned model before export', async () => {
    const dir = writeTinyModel('llama', { dtype: 'BF16', maxShardBytes: 8192, config: { num_hidden_layers: 4 } });
    const work = fresh();
    const data = join(work, 'data.jsonl');
    writeFileSync(data, `${sequences(4, [16, 16, 16, 16, 12, 16]).map((ids) => JSON.stringify({ input_ids: ids })).join('\n')}\n`);
    const prompts = makeBatch(sequences(2, [8, 5]));
    let before: Float32Array | null = null;
    const logitsOf = async (runtime: ForwardRuntime) => (await runtime.forward(prompts, { logits: true })).logits!.data.slice();
    const summary = await prune({
      modelPath: dir,
      dataPath: data,
      workDir: join(work, 'work'),
      outDir: join(work, 'out'),
      layers: 2,
      replacement: 'LINEAR',
      samples: 6,
      seqLen: 16,
      batchSize: 2,
      pairsDtype: 'BF16',
      evalWindows: 2,
      onAssembled: async (pruned) => void (before = await logitsOf(pruned)),
    });
    const out = join(work, 'out');
    expect(existsSync(join(out, 'model.safetensors.index.json'))).toBe(true);
    expect(readdirSync(out).filter((name) => /^model-\d+-of-\d+\.safetensors$/.test(name)).length).toBeGreaterThan(1);
    const reloaded = inspectModel(out);
    expect(reloaded.config.dtype).toBe('BF16');
    expect(reloaded.config.numLayers).toBe(2);
    expect(summary.numLayers.after).toBe(2);
    const runtime = await openRuntime(reloaded);
    const after = await logitsOf(runtime);
    await runtime.dispose();
    // The replacement is rounded to bf16 before the pruned model is evaluated, so the export reloads as the
    // very model that was measured: only float32 summation order differs (unrounded, this was ~1e-2).
    expect(maxAbsDiff(after, before!)).toBeLessThan(1e-4);
    expect(summary.hiddenStateCosine).toBeGreaterThan(0);
  });
});

describe('incremental decoding with a KV cache (whole-model ONNX runtime)', () => {
  it.each(['llama', 'mistral', 'qwen2', 'opt'])('%s: a prompt then token by token gives the full forward pass\'s logits', async (family) => {
    const runtime = (await createRuntime(loadModel(writeTinyModel(family)), { runtime: 'onnx' })) as ForwardRuntime & { step: Function };
    try {
      const [ids] = sequences(6, [12]); // past mistral's sliding window of 5
      const full = (await runtime.forward(makeBatch([ids]), { logits: true })).logits!;
      const vocab = full.shape[2];
      let step = await runtime.step(ids.slice(0, 4), null);
      expect(maxAbsDiff(step.logits.data, full.data.subarray(0, 4 * vocab))).toBeLessThan(1e-4);
      for (let t = 4; t < ids.length; t++) {
        step = await runtime.step([ids[t]], step.cache);
        expect(step.cache.length).toBe(t + 1);
        expect(maxAbsDiff(step.logits.data, full.data.subarray(t * vocab, (t + 1) * vocab))).toBeLessThan(1e-4);
      }
    } finally {
      await runtime.dispose();
    }
  });
});

describe('disk space', () => {
  it('is checked before a spill or a pair collection, naming the bytes needed', () => {
    expect(() => checkFreeSpace(fresh(), 2 ** 50, 'collecting hidden-state pairs')).toThrow(/collecting hidden-state pairs needs 1125899906842624 bytes .* free/);
    expect(() => checkFreeSpace(fresh(), 1024, 'spilling')).not.toThrow();
  });
});

describe('the TensorFlow.js runtime', () => {
  it('refuses a model larger than its wasm heap holds, pointing to the streamed runtime', async () => {
    const info = inspectModel(writeTinyModel('llama'));
    await expect(openRuntime({ ...info, numParameters: 2e9 }, { runtime: 'tfjs' })).rejects.toThrow(/TensorFlow\.js.*wasm heap.*ONNX runtime \(layer-streamed\)/);
  });
});
