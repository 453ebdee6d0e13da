import { rmSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCalibrationSamples } from '../src/data/calibration.js';
import { computeImportance, ImportanceAccumulator, parseBlockSizes } from '../src/importance.js';
import { loadModel } from '../src/models/model.js';
import { createRuntime } from '../src/runtime/create-runtime.js';
import { loadTokenizer } from '../src/tokenizers/tokenizer.js';
import { STORIES_BIN, STORIES_TOKENIZER, hasShared, runWithShared, sharedPath } from '@streamline/testing/shared-data';
import { seededRandom, writeTinyModel } from './fixtures/tiny-models.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

const randomSamples = (count: number, seed: number, lengths: number[]) => {
  const random = seededRandom(seed);
  return Array.from({ length: count }, (_, i) => Array.from({ length: lengths[i % lengths.length] }, () => Math.floor((random() + 1) * 32)));
};

describe('importance on a model whose answer is known', () => {
  // Layers 1 and 2 write nothing to the residual stream (zero output projections), so h[1] = h[2] = h[3]:
  // the block of size 2 starting at 1 has cosine exactly 1 and must be the one chosen.
  const dir = writeTinyModel('llama', {
    edit(weights) {
      for (const layer of [1, 2]) {
        weights.get(`model.layers.${layer}.self_attn.o_proj.weight`)!.data.fill(0);
        weights.get(`model.layers.${layer}.mlp.down_proj.weight`)!.data.fill(0);
      }
    },
  });
  dirs.push(dir);

  it.each(['onnx', 'tfjs'] as const)('finds the identity block on %s', async (runtimeName) => {
    const model = loadModel(dir);
    const runtime = await createRuntime(model, { runtime: runtimeName });
    try {
      const profile = await computeImportance(runtime, 3, randomSamples(5, 7, [12, 9, 4]), 12, { batchSize: 2 });
      expect(profile.tokens).toBe(12 + 9 + 4 + 12 + 9);
      const [size1, size2, size3] = profile.blocks;
      expect(size2.scores).toHaveLength(2);
      expect(size2.scores[1]).toBeCloseTo(1, 6);
      expect(size2.scores[0]).toBeLessThan(0.99);
      expect(size2.bestStart).toBe(1);
      expect(size1.scores[1]).toBeCloseTo(1, 6);
      expect(size1.scores[2]).toBeCloseTo(1, 6);
      expect(size3.scores).toHaveLength(1);
      expect(profile.blockInfluence[1]).toBeCloseTo(0, 6);
      expect(profile.blockInfluence[0]).toBeGreaterThan(0.01);
      expect(profile.angularDistance[1].bestStart).toBe(1);
      expect(profile.angularDistance[1].scores[1]).toBeLessThan(1e-3);
    } finally {
      await runtime.dispose();
    }
  });
});

describe('accumulation', () => {
  it('does not depend on batch size or padding', async () => {
    const dir = writeTinyModel('qwen2');
    dirs.push(dir);
    const runtime = await createRuntime(loadModel(dir), { runtime: 'onnx' });
    try {
      const samples = randomSamples(7, 3, [16, 5, 11]);
      const one = await computeImportance(runtime, 3, samples, 16, { batchSize: 1 });
      const padded = await computeImportance(runtime, 3, samples, 16, { batchSize: 4 });
      expect(padded.tokens).toBe(one.tokens);
      padded.blocks.forEach((block, i) => block.scores.forEach((score, s) => expect(score).toBeCloseTo(one.blocks[i].scores[s], 5)));
    } finally {
      await runtime.dispose();
    }
  });

  it('is the mean of per-token cosines and angles, skipping masked tokens', () => {
    // One layer (two hidden states), three tokens of which the middle one is padding.
    const gram = (c: number) => [1, c, c, 1];
    const cosines = { shape: [1, 3, 2, 2], data: new Float32Array([...gram(Math.SQRT1_2), ...gram(-0.3), ...gram(1)]) };
    const accumulator = new ImportanceAccumulator(1);
    accumulator.add(cosines, new Uint8Array([1, 0, 1]));
    expect(accumulator.tokens).toBe(2);
    expect(accumulator.cosine(1)[0]).toBeCloseTo((Math.SQRT1_2 + 1) / 2, 6);
    expect(accumulator.angularDistance(1)[0]).toBeCloseTo((0.25 + 0) / 2, 6);
  });

  it('reports progress and stops when cancelled', async () => {
    const dir = writeTinyModel('opt');
    dirs.push(dir);
    const runtime = await createRuntime(loadModel(dir), { runtime: 'onnx' });
    try {
      const controller = new AbortController();
      const seen: number[] = [];
      const run = computeImportance(runtime, 3, randomSamples(8, 5, [6]), 6, {
        batchSize: 2,
        signal: controller.signal,
        onProgress: (p) => {
          seen.push(p.samplesDone);
          if (p.samplesDone === 4) controller.abort();
        },
      });
      await expect(run).rejects.toThrow(/importance was cancelled/);
      expect(seen).toEqual([2, 4]);
    } finally {
      await runtime.dispose();
    }
  });

  it('refuses block sizes that do not fit', () => {
    expect(parseBlockSizes('all', 4)).toEqual([1, 2, 3, 4]);
    expect(parseBlockSizes('1, 3', 4)).toEqual([1, 3]);
    expect(() => parseBlockSizes('5', 4)).toThrow(/each must be an integer from 1 to 4/);
    expect(() => parseBlockSizes('two', 4)).toThrow(/"two"/);
  });
});

describe.skipIf(!runWithShared)('importance of stories260K on TinyStories', () => {
  it('picks layers 2–3 as the most redundant pair, on both runtimes alike', async () => {
    const model = loadModel(STORIES_BIN);
    const tokenizer = await loadTokenizer(STORIES_TOKENIZER);
    const samples = await loadCalibrationSamples(sharedPath('data/text/tinystories_val_excerpt.txt'), tokenizer, { samples: 8, seqLen: 128, vocabSize: 512 });
    const profiles = [];
    for (const runtimeName of ['onnx', 'tfjs'] as const) {
      const runtime = await createRuntime(model, { runtime: runtimeName, workers: runtimeName === 'tfjs' ? 2 : undefined });
      try {
        profiles.push(await computeImportance(runtime, 5, samples, 128, { batchSize: 4 }));
      } finally {
        await runtime.dispose();
      }
    }
    const [onnx, tfjs] = profiles;
    expect(onnx.tokens).toBe(8 * 128);
    expect(onnx.blocks[1].bestStart).toBe(2);
    expect(tfjs.backend).toMatch(/×2 worker threads/);
    onnx.blocks.forEach((block, i) => block.scores.forEach((score, s) => expect(tfjs.blocks[i].scores[s]).toBeCloseTo(score, 5)));
  });
});

describe('calibration data', () => {
  const dir = mkdtempSync(join(tmpdir(), 'streamline-data-'));
  dirs.push(dir);
  const file = (name: string, content: string) => {
    const path = join(dir, name);
    writeFileSync(path, content);
    return path;
  };

  it('reads input_ids and text records from JSONL, truncated to seq-len', async () => {
    const tokenizer = hasShared ? await loadTokenizer(STORIES_TOKENIZER) : null;
    const path = file('mixed.jsonl', `{"input_ids":[1,2,3,4,5]}\n\n{"input_ids":[7]}\n${tokenizer ? '{"text":"Once upon a time"}\n' : ''}`);
    const samples = await loadCalibrationSamples(path, tokenizer, { samples: 10, seqLen: 4, vocabSize: 512 });
    expect(samples.slice(0, 2)).toEqual([[1, 2, 3, 4], [7]]);
    if (tokenizer) expect(samples[2]).toEqual([1, 403, 407, 261]);
  });

  it.skipIf(!runWithShared)('cuts text into consecutive windows of one BOS-led stream', async () => {
    const tokenizer = await loadTokenizer(STORIES_TOKENIZER);
    const text = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park.\n'.repeat(40);
    const stream = tokenizer.encode(text, { bos: true });
    const samples = await loadCalibrationSamples(file('story.txt', text), tokenizer, { samples: 3, seqLen: 50, vocabSize: 512 });
    expect(samples).toEqual([stream.slice(0, 50), stream.slice(50, 100), stream.slice(100, 150)]);
  });

  it('names what is wrong with a bad data file', async () => {
    const options = { samples: 4, seqLen: 8, vocabSize: 512 };
    await expect(loadCalibrationSamples(join(dir, 'absent.jsonl'), null, options)).rejects.toThrow(/data file not found: .*absent.jsonl/);
    await expect(loadCalibrationSamples(file('empty.jsonl', '\n\n'), null, options)).rejects.toThrow(/has no usable sample/);
    await expect(loadCalibrationSamples(file('bad.jsonl', '{"input_ids":[1]}\n{oops\n'), null, options)).rejects.toThrow(/bad.jsonl:2 is not valid JSON/);
    await expect(loadCalibrationSamples(file('ids.jsonl', '{"input_ids":[1, 9999]}\n'), null, options)).rejects.toThrow(/holds 9999, not a token id in \[0, 512\)/);
    await expect(loadCalibrationSamples(file('neither.jsonl', '{"prompt":"x"}\n'), null, options)).rejects.toThrow(/needs "input_ids"/);
    await expect(loadCalibrationSamples(file('data.csv', 'a,b\n'), null, options)).rejects.toThrow(/must end in .txt or .jsonl/);
    await expect(loadCalibrationSamples(file('t.txt', 'hello'), null, options)).rejects.toThrow(/needs a tokenizer/);
  });
});
