/**
 * The second real model: SmolLM2-135M-Instruct as GGUF Q4_1 (30 layers), fetched by
 * `npm run fetch:test-models` into a cache outside the repository; skipped with one line when it is not
 * there (a failure under CI=true). The references are llama.cpp's (bench/gguf-reference.bench.ts
 * compares dequantization, tokenization and logits in full).
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testModelPath } from '@streamline/testing/test-models';
import { loadCalibrationSamples } from '../src/data/calibration.js';
import { GgufFile } from '../src/formats/gguf.js';
import { generate } from '../src/generate.js';
import { computeImportance } from '../src/importance.js';
import { inspectModel, loadModel, type LoadedModel } from '../src/models/model.js';
import { createRuntime } from '../src/runtime/create-runtime.js';
import type { ForwardRuntime } from '../src/runtime/runtime.js';
import { ggufTokenizerFiles } from '../src/tokenizers/gguf-tokenizer.js';
import { loadTokenizer, type Tokenizer } from '../src/tokenizers/tokenizer.js';
import { runWithShared, sharedPath } from '@streamline/testing/shared-data';

const SMOLLM2 = testModelPath('smollm2');

describe.skipIf(SMOLLM2 === null)('SmolLM2-135M-Instruct (GGUF Q4_1)', () => {
  const path = SMOLLM2!;
  let tokenizer: Tokenizer;
  let model: LoadedModel;
  let runtime: ForwardRuntime;

  beforeAll(async () => {
    tokenizer = await loadTokenizer(path);
    model = loadModel(path);
    runtime = await createRuntime(model, { runtime: 'onnx' });
  });
  afterAll(() => runtime?.dispose());

  it('inspects as a 30-layer Llama with tied embeddings and its own tokenizer', () => {
    const info = inspectModel(path);
    expect(info.format).toBe('gguf');
    expect(info.tokenizerPath).toBe(path);
    expect(info.config).toMatchObject({
      modelType: 'llama',
      numLayers: 30,
      hiddenSize: 576,
      numAttentionHeads: 9,
      numKeyValueHeads: 3,
      headDim: 64,
      intermediateSize: 1536,
      vocabSize: 49152,
      maxPositionEmbeddings: 8192,
      ropeTheta: 100000,
      tieWordEmbeddings: true,
      bosTokenId: 1,
      eosTokenId: 2,
      dtype: 'F32',
    });
    expect(info.numParameters).toBe(134_515_008);
  });

  it('inspects from the header alone: a copy whose tensor data is a hole inspects the same', () => {
    const dir = mkdtempSync(join(tmpdir(), 'streamline-smollm2-'));
    try {
      const file = GgufFile.open(path);
      const headerBytes = file.dataStart;
      file.close();
      const header = Buffer.alloc(headerBytes);
      const fd = openSync(path, 'r');
      readSync(fd, header, 0, headerBytes, 0);
      closeSync(fd);
      const sparse = join(dir, 'header-only.gguf');
      writeFileSync(sparse, header);
      truncateSync(sparse, statSync(path).size); // the rest reads as zeros and takes no disk
      const { path: _, tokenizerPath: __, ...fromSparse } = inspectModel(sparse);
      const { path: ___, tokenizerPath: ____, ...fromReal } = inspectModel(path);
      expect(fromSparse).toEqual(fromReal);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is inspected by the engine CLI, tokenizer included', () => {
    const bin = fileURLToPath(new URL('../bin/streamline-engine.js', import.meta.url));
    const summary = JSON.parse(execFileSync(process.execPath, [bin, 'inspect', '--model', path], { encoding: 'utf8' }));
    expect(summary).toMatchObject({ architecture: 'llama', format: 'gguf', numLayers: 30, numParameters: 134_515_008, tieWordEmbeddings: true, tokenizer: { kind: 'huggingface', vocabSize: 49152 } });
  });

  it("tokenizes as llama.cpp does, chat markers included, without BOS (the file's add_bos_token is false)", () => {
    expect(tokenizer.encode('The capital of France is')).toEqual([504, 3575, 282, 4649, 314]);
    expect(tokenizer.encode('<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n')).toEqual([1, 4093, 198, 1780, 314, 216, 34, 27, 34, 47, 2, 198, 1, 520, 9531, 198]);
    expect(tokenizer.decode(tokenizer.encode('Ünïcödé 日本語 🚀 x**2'))).toBe('Ünïcödé 日本語 🚀 x**2');
  });

  it('exports its tokenizer as tokenizer.json + tokenizer_config.json that encode the same', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'streamline-smollm2-'));
    try {
      for (const [name, content] of Object.entries(ggufTokenizerFiles(path))) writeFileSync(join(dir, name), content);
      const exported = await loadTokenizer(dir);
      const text = '<|im_start|>user\nWhat is 2+2?<|im_end|>\n Ünïcödé 日本語 🚀 x**2 12345';
      expect(exported.encode(text)).toEqual(tokenizer.encode(text));
      expect([exported.bosId, exported.eosId]).toEqual([tokenizer.bosId, tokenizer.eosId]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('greedy-generates sensibly', async () => {
    const greedy = (prompt: string, maxTokens: number) => generate(runtime, tokenizer, { prompt, maxTokens, temperature: 0, topP: 1, seed: 0, maxPositions: 512 });
    expect((await greedy('The capital of France is', 8)).text).toMatch(/^The capital of France is Paris\./);
    const chat = await greedy('<|im_start|>user\nWhat is the capital of Italy?<|im_end|>\n<|im_start|>assistant\n', 12);
    expect(chat.text).toMatch(/Rome/);
  });

  it.skipIf(!runWithShared)('profiles block importance over its 30 layers', async () => {
    const samples = await loadCalibrationSamples(sharedPath('data/text/tinystories_val_excerpt.txt'), tokenizer, { samples: 4, seqLen: 64, vocabSize: 49152 });
    const profile = await computeImportance(runtime, 30, samples, 64, { blockSizes: [1, 7, 30], batchSize: 4 });
    expect(profile.blocks.map((b) => [b.blockSize, b.scores.length])).toEqual([[1, 30], [7, 24], [30, 1]]);
    for (const block of profile.blocks) for (const score of block.scores) expect(score).toBeGreaterThanOrEqual(-1), expect(score).toBeLessThanOrEqual(1);
    // (4 × 64 tokens of TinyStories: layer 0 turns the embeddings into something else (cos ≈ 0), the
    // middle and deep layers barely change the residual stream (cos ≈ 0.96–0.98), the last one more (≈ 0.75))
    const single = profile.blocks[0].scores;
    expect(single.indexOf(Math.min(...single))).toBe(0);
    expect(Math.max(...single)).toBeGreaterThan(0.9);
    expect(profile.blocks[0].bestStart).toBeGreaterThan(0);
    expect(profile.blocks[0].bestStart).toBeLessThan(29);
    expect(profile.blocks[2].scores[0]).toBeLessThan(0.5);
    expect(profile.blockInfluence).toHaveLength(30);
  });
});
