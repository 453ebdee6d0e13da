/**
 * The real model: llama2.c's stories260K, checked against llama2.c's published outputs and the derived
 * per-layer fixtures in ../shared/refs, on both runtimes.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeHfFolder } from '../src/formats/hf-folder.js';
import { readLlama2cCheckpoint } from '../src/formats/llama2c-checkpoint.js';
import { generate } from '../src/generate.js';
import { loadModel, type LoadedModel } from '../src/models/model.js';
import { createRuntime } from '../src/runtime/create-runtime.js';
import { makeBatch, type ForwardRuntime, type RuntimeName } from '../src/runtime/runtime.js';
import { loadTokenizer, type Tokenizer } from '../src/tokenizers/tokenizer.js';
import { STORIES_BIN, STORIES_TOKENIZER, runWithShared, sharedPath } from '@streamline/testing/shared-data';

const readJson = (relative: string) => JSON.parse(readFileSync(sharedPath(relative), 'utf8'));
const readFloats = (relative: string) => {
  const bytes = readFileSync(sharedPath(relative));
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
};

describe.skipIf(!runWithShared).each<RuntimeName>(['onnx', 'tfjs'])('stories260K on %s', (runtimeName) => {
  let model: LoadedModel;
  let tokenizer: Tokenizer;
  let runtime: ForwardRuntime;
  let fixtures: Record<string, any>;
  let references: Record<string, { text?: string; expected?: Record<string, number> }>;

  beforeAll(async () => {
    model = loadModel(STORIES_BIN);
    tokenizer = await loadTokenizer(STORIES_TOKENIZER);
    runtime = await createRuntime(model, { runtime: runtimeName });
    fixtures = readJson('refs/stories260K_derived_fixtures.json');
    references = Object.fromEntries(readJson('refs/stories260K_real_references.json').references.map((r: { id: string }) => [r.id, r]));
  });
  afterAll(() => runtime?.dispose());

  const greedy = (prompt: string, maxTokens: number) =>
    generate(runtime, tokenizer, { prompt, maxTokens, temperature: 0, topP: 0.9, seed: 0, maxPositions: model.config.maxPositionEmbeddings });

  it('reports which runtime runs', () => {
    expect(runtime.name).toBe(runtimeName);
    expect(runtime.description).toMatch(runtimeName === 'onnx' ? /onnxruntime-node .* cpu/ : /tfjs (wasm|cpu|tensorflow)/);
  });

  it('gives the residual stream and logits of the derived fixture within 1e-4', async () => {
    const ids: number[] = fixtures.prompt_ids_runc_encode_bos;
    expect(tokenizer.encode(fixtures.prompt_text, { bos: true })).toEqual(ids);
    const result = await runtime.forward(makeBatch([ids]), { logits: true, hiddenStates: true });
    const hidden = readFloats(fixtures.prompt_hidden_file.path.replace(/^/, 'refs/'));
    const logits = readFloats(fixtures.prompt_logits_file.path.replace(/^/, 'refs/'));
    const stacked = new Float32Array(hidden.length);
    result.hiddenStates!.forEach((h, layer) => stacked.set(h.data, layer * h.data.length));
    expect(result.hiddenStates).toHaveLength(6);
    expect(maxAbs(stacked, hidden)).toBeLessThan(1e-4);
    expect(maxAbs(result.logits!.data, logits)).toBeLessThan(1e-4);
  });

  it('gives the published next-token probabilities after "Once upon a time"', async () => {
    const result = await runtime.forward(makeBatch([fixtures.prompt_ids_runc_encode_bos]), { logits: true });
    const last = softmax(result.logits!.data.subarray(4 * 512, 5 * 512));
    const expected = references.next_token_after_prompt.expected!;
    expect(last[432]).toBeCloseTo(expected[','], 3); // ","
    expect(last[383]).toBeCloseTo(expected[' there'], 3); // " there"
    for (const [id, , probability] of fixtures.prompt_last_top5) expect(last[id]).toBeCloseTo(probability, 5);
  });

  it('reproduces llama2.c greedy outputs (200 and 256 steps, and a 64-step prompt continuation)', async () => {
    expect((await greedy('', 200)).text).toBe(references.runc_greedy_200.text);
    const long = await greedy('', 256);
    expect(long.text).toBe(references.runc_greedy_256.text);
    expect(long.tokens.slice(0, 201)).toEqual(fixtures.greedy_from_bos_ids_201);
    // run.c -n 64 counts positions: 5 prompt positions (BOS + 4 tokens) leave 60 new tokens.
    expect((await greedy('Once upon a time', 60)).text).toBe(references.runc_prompt_once_upon_a_time_64.text);
  });

  it('reproduces the seeded top-p 0.9 sample (seed 133742)', async () => {
    const { text } = await generate(runtime, tokenizer, {
      prompt: '',
      maxTokens: 256,
      temperature: 1,
      topP: 0.9,
      seed: 133742,
      maxPositions: model.config.maxPositionEmbeddings,
    });
    expect(text).toBe(references.runc_topp_seed133742.text);
  });
});

describe.skipIf(!runWithShared)('llama2.c → Hugging Face conversion', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'streamline-convert-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('round-trips to the same logits', async () => {
    const { config, weights } = readLlama2cCheckpoint(STORIES_BIN);
    writeHfFolder(dir, { config, weights, dtype: 'F32' });
    const original = loadModel(STORIES_BIN);
    const converted = loadModel(dir);
    expect(converted.format).toBe('huggingface');
    expect(converted.config).toEqual(original.config);
    const batch = makeBatch([[1, 403, 407, 261, 378, 432, 383]]);
    const [a, b] = await Promise.all([original, converted].map(async (m) => {
      const runtime = await createRuntime(m, { runtime: 'onnx' });
      try {
        return (await runtime.forward(batch, { logits: true })).logits!.data;
      } finally {
        await runtime.dispose();
      }
    }));
    expect(maxAbs(a, b)).toBe(0);
  });

  it('permutes q/k rows from interleaved to rotate-half pairs', () => {
    const { weights } = readLlama2cCheckpoint(STORIES_BIN);
    const raw = readFileSync(STORIES_BIN);
    const floats = new Float32Array(raw.buffer.slice(raw.byteOffset + 28, raw.byteOffset + 28 + (512 * 64 + 5 * 64 + 64 * 64) * 4));
    const wqLayer0 = floats.subarray(512 * 64 + 5 * 64); // after the embeddings and rms_att
    const q = weights.get('model.layers.0.self_attn.q_proj.weight')!.data;
    // head 1 (head size 8): llama2.c rows 8..15 are pairs (8,9), (10,11)…; HF puts evens first then odds.
    const hfRowFor = (llamaRow: number) => 8 + ((llamaRow - 8) % 2) * 4 + Math.floor((llamaRow - 8) / 2);
    for (const llamaRow of [8, 9, 10, 15]) {
      expect(Array.from(q.subarray(hfRowFor(llamaRow) * 64, hfRowFor(llamaRow) * 64 + 64))).toEqual(Array.from(wqLayer0.subarray(llamaRow * 64, llamaRow * 64 + 64)));
    }
  });
});

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

function softmax(logits: Float32Array): Float64Array {
  const max = Math.max(...logits);
  const e = Float64Array.from(logits, (x) => Math.exp(x - max));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / z);
}
