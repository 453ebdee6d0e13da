/**
 * GGUF import: the container (including hostile headers), dequantization of every supported GGML type
 * against llama.cpp's gguf-py (a committed fixture written by bench/gguf_reference.py), the model
 * mapping (a tiny Llama written as llama.cpp's converter writes it loads to the same weights and logits
 * as its Hugging Face folder) and the tokenizers built from GGUF metadata.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { EngineError } from '../src/errors.js';
import { GgufFile } from '../src/formats/gguf.js';
import { DEQUANTIZABLE_TYPES } from '../src/formats/gguf-quants.js';
import { writeHfFolder } from '../src/formats/hf-folder.js';
import { inspectModel, loadModel } from '../src/models/model.js';
import { openWeightReader } from '../src/models/weight-reader.js';
import { createRuntime } from '../src/runtime/create-runtime.js';
import { StreamedOnnxForward } from '../src/runtime/onnx/streamed-forward.js';
import { maxAbsDiff } from './fixtures/compare.js';
import { makeBatch } from '../src/runtime/runtime.js';
import { Llama2cTokenizer } from '../src/tokenizers/llama2c-tokenizer.js';
import { ggufTokenizerFiles } from '../src/tokenizers/gguf-tokenizer.js';
import { loadTokenizer } from '../src/tokenizers/tokenizer.js';
import { ggufBytes, llamaGguf, f32Data, TINY_LLAMA, type GgufKv, type GgufTensorToWrite } from './fixtures/gguf-writer.js';
import { runWithShared, sharedPath } from '@streamline/testing/shared-data';
import { tinyWeights } from './fixtures/tiny-models.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/gguf/', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'streamline-gguf-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

let fileCount = 0;
function writeGguf(bytes: Buffer): string {
  const path = join(scratch, `m${fileCount++}.gguf`);
  writeFileSync(path, bytes);
  return path;
}

function engineError(fn: () => unknown): EngineError {
  try {
    fn();
  } catch (error) {
    if (error instanceof EngineError) return error;
    throw error;
  }
  throw new Error('expected an EngineError');
}

const VECTOR: GgufTensorToWrite = { name: 'v', shape: [2, 32], type: 'F32', data: f32Data(new Float32Array(64).map((_, i) => i)) };

describe('GGUF container', () => {
  it('reads metadata of every value type and a tensor, row-major', () => {
    const kvs: GgufKv[] = [
      ['general.architecture', 'STRING', 'llama'],
      ['u8', 'UINT8', 200],
      ['i8', 'INT8', -5],
      ['u16', 'UINT16', 65000],
      ['i16', 'INT16', -300],
      ['u32', 'UINT32', 4_000_000_000],
      ['i32', 'INT32', -7],
      ['f32', 'FLOAT32', 0.5],
      ['b', 'BOOL', true],
      ['u64', 'UINT64', 2 ** 40],
      ['i64', 'INT64', -(2 ** 40)],
      ['f64', 'FLOAT64', 1e-300],
      ['arr', 'ARRAY', ['x', 'ÿ€'], 'STRING'],
      ['ints', 'ARRAY', [1, 2, 3], 'INT32'],
      ['bytes', 'ARRAY', [0, 255, 7], 'UINT8'],
      ['floats', 'ARRAY', [0.5, -2], 'FLOAT32'],
      ['flags', 'ARRAY', [true, false], 'BOOL'],
    ];
    const file = GgufFile.open(writeGguf(ggufBytes(kvs, [VECTOR])));
    try {
      expect(file.version).toBe(3);
      // arrays of numbers come back as typed arrays
      const typed: Record<string, unknown> = { ints: Int32Array.of(1, 2, 3), bytes: Uint8Array.of(0, 255, 7), floats: Float32Array.of(0.5, -2), flags: Uint8Array.of(1, 0) };
      const expected = Object.fromEntries(kvs.map(([k, , v]) => [k, typed[k] ?? v]));
      expect(Object.fromEntries([...file.metadata].map(([k, v]) => [k, v.value]))).toEqual(expected);
      expect(file.metadata.get('arr')).toMatchObject({ type: 'ARRAY', itemType: 'STRING' });
      const t = file.read('v');
      expect(t.shape).toEqual([2, 32]);
      expect(Array.from(t.data)).toEqual(Array.from({ length: 64 }, (_, i) => i));
      expect(file.dataStart % 32).toBe(0);
    } finally {
      file.close();
    }
  });

  it('dequantizes every supported type exactly as gguf-py does (committed fixture)', () => {
    const index: { tensors: { name: string; type: string; offset: number; count: number }[] } = JSON.parse(readFileSync(join(FIXTURE, 'quant-fixture.json'), 'utf8'));
    const bytes = readFileSync(join(FIXTURE, 'quant-fixture.f32'));
    const expected = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    expect(index.tensors.map((t) => t.type).sort()).toEqual([...DEQUANTIZABLE_TYPES].sort());
    const file = GgufFile.open(join(FIXTURE, 'quant-fixture.gguf'));
    try {
      for (const t of index.tensors) {
        const got = file.read(t.name);
        expect(file.tensor(t.name).type.name).toBe(t.type);
        expect(got.shape).toEqual([3, 512]);
        const want = expected.subarray(t.offset, t.offset + t.count);
        let unequal = 0;
        for (let i = 0; i < t.count; i++) if (got.data[i] !== want[i]) unequal++;
        expect(unequal, `${t.type}: values that differ from gguf-py`).toBe(0);
      }
    } finally {
      file.close();
    }
  });

  it('refuses a type it cannot dequantize by name, on read', () => {
    const path = writeGguf(ggufBytes([], [{ name: 'iq', shape: [1, 256], type: 'IQ2_XXS', data: new Uint8Array(66) }]));
    const file = GgufFile.open(path);
    try {
      const error = engineError(() => file.read('iq'));
      expect(error.code).toBe('UNSUPPORTED_MODEL');
      expect(error.message).toMatch(/IQ2_XXS; the engine reads F32, F16, BF16, Q4_0, Q4_1/);
    } finally {
      file.close();
    }
  });

  describe('hostile headers are refused with precise errors', () => {
    const cases: [string, Buffer, RegExp, string?][] = [
      ['a wrong magic', ggufBytes([], [], { magic: 0x12345678 }), /does not start with the magic "GGUF"/],
      ['version 1', ggufBytes([], [], { version: 1 }), /GGUF version 1; the engine reads versions 2 and 3/, 'UNSUPPORTED_MODEL'],
      ['a tensor count of 2^60', ggufBytes([], [], { tensorCount: 2n ** 60n }), /tensor_count 1152921504606846976 is 1152921504606846976, beyond|tensor_count .* beyond any size/],
      ['a tensor count beyond the header', ggufBytes([], [], { tensorCount: 60_000n }), /tensor_count 60000 cannot fit in the \d+ bytes left/],
      ['a metadata count beyond the header', ggufBytes([], [], { kvCount: 60_000n }), /metadata_kv_count 60000 cannot fit/],
      ['a tensor count beyond the cap', ggufBytes([], [], { tensorCount: 1_000_000n }), /tensor_count 1000000 is more than the 65536 tensors accepted/],
      ['a metadata count beyond the cap', ggufBytes([], [], { kvCount: 5_000_000n }), /metadata_kv_count 5000000 is more than the 65536 metadata keys accepted/],
      ['a file cut in the metadata', ggufBytes([['general.name', 'STRING', 'x'.repeat(100)]], [], { truncateTo: 60 }), /metadata "general.name" claims 100 bytes, more than the 4 left in the header/],
      ['a string longer than the file', (() => {
        const b = ggufBytes([['k', 'STRING', 'abc']], []);
        b.writeBigUInt64LE(2n ** 40n, 24 + 8 + 1 + 4); // the value's length
        return b;
      })(), /metadata "k" claims 1099511627776 bytes, more than the \d+ left in the header/],
      ['an array count beyond the header', (() => {
        const b = ggufBytes([['k', 'ARRAY', [1, 2], 'UINT32']], []);
        b.writeBigUInt64LE(2n ** 31n, 24 + 8 + 1 + 4 + 4); // the element count
        return b;
      })(), /metadata "k" claims 2147483648 elements of UINT32, more than the \d+ bytes left/],
      ['an unknown value type', (() => {
        const b = ggufBytes([['k', 'UINT32', 1]], []);
        b.writeUInt32LE(99, 24 + 8 + 1);
        return b;
      })(), /the value type of metadata "k" is 99; GGUF value types are 0 to 12/],
      ['an array of arrays', ggufBytes([['k', 'ARRAY', [['UINT8', [1]]], 'ARRAY']], []), /metadata "k" is an array of arrays, which is not accepted/],
      ['3 million strings in one array', (() => {
        const b = ggufBytes([['k', 'ARRAY', ['a'], 'STRING']], []);
        b.writeBigUInt64LE(3_000_000n, 24 + 8 + 1 + 4 + 4); // the element count
        return b;
      })(), /metadata "k" holds 3000000 strings, more than the 2097152 accepted in one array/],
      ['a bool array holding 2', (() => {
        const b = ggufBytes([['k', 'ARRAY', [true, true], 'BOOL']], []);
        b.writeUInt8(2, 24 + 8 + 1 + 4 + 4 + 8 + 1); // the second bool
        return b;
      })(), /metadata "k" is an array of bools holding a value other than 0 and 1/],
      ['a duplicate key', ggufBytes([['k', 'UINT32', 1], ['k', 'UINT32', 2]], []), /metadata key "k" appears twice/],
      ['a bool that is 7', (() => {
        const b = ggufBytes([['k', 'BOOL', true]], []);
        b.writeUInt8(7, 24 + 8 + 1 + 4);
        return b;
      })(), /metadata "k" is a bool holding 7/],
      ['an alignment that is not a power of two', ggufBytes([['general.alignment', 'UINT32', 48]], [VECTOR]), /general.alignment must be a UINT32 power of two/],
      ['an unknown GGML type', ggufBytes([], [VECTOR], { typeIds: { 0: 77 } }), /tensor "v" has type id 77, which is no GGML type/],
      ['a tensor past the end of the file', ggufBytes([], [VECTOR], { offsets: { 0: 4096n } }), /tensor "v" \(F32, 256 bytes at \d+\) ends beyond the end of the file/],
      ['a misaligned tensor', ggufBytes([], [VECTOR], { offsets: { 0: 4n } }), /starts at data offset 4, not a multiple of the alignment 32/],
      ['overlapping tensors', ggufBytes([], [VECTOR, { ...VECTOR, name: 'w' }], { offsets: { 1: 32n } }), /tensors "v" and "w" overlap/],
      ['a block type whose row is not whole blocks', ggufBytes([], [{ name: 'q', shape: [1, 32], type: 'Q4_K', data: new Uint8Array(144) }]), /tensor "q" is Q4_K, whose blocks hold 256 elements, but its innermost dimension is 32/],
      ['a duplicate tensor name', ggufBytes([], [VECTOR, VECTOR]), /tensor "v" appears twice/],
      ['five dimensions', ggufBytes([], [{ ...VECTOR, shape: [1, 1, 1, 2, 32] }]), /n_dims 5, outside 1 to 4/],
      ['a zero dimension', ggufBytes([], [{ ...VECTOR, shape: [0, 32], data: new Uint8Array(0) }]), /has a dimension of 0/],
      ['a 300-byte tensor name', ggufBytes([], [{ ...VECTOR, name: 'n'.repeat(300) }]), /the name of tensor 0 is 300 bytes long, more than the 255 accepted/],
    ];
    it.each(cases)('%s', (_, bytes, message, code = 'CORRUPT_FILE') => {
      const error = engineError(() => GgufFile.open(writeGguf(bytes)).close());
      expect(error.code).toBe(code);
      expect(error.message).toMatch(message);
      expect(error.message.length).toBeLessThan(400);
    });

    it('a header larger than the limit', () => {
      const path = writeGguf(ggufBytes(Array.from({ length: 300 }, (_, i): GgufKv => [`key${i}`, 'STRING', 'a value of 20 bytes.']), []));
      expect(GgufFile.open(path).metadata.size).toBe(300);
      const error = engineError(() => GgufFile.open(path, { maxHeaderBytes: 4096 }).close());
      expect(error.message).toMatch(/ends beyond the 4096 bytes accepted for a GGUF header|more than the \d+ left in the header/);
    });

    it('a FIFO or a directory is not read', () => {
      expect(engineError(() => GgufFile.open(scratch)).message).toMatch(/is not a regular file/);
      expect(GgufFile.isGguf(scratch)).toBe(false);
    });
  });
});


describe('GGUF Llama models', () => {
  const weights = tinyWeights('llama', TINY_LLAMA, 3);
  const hfDir = join(scratch, 'hf');
  writeHfFolder(hfDir, { config: TINY_LLAMA, weights, dtype: 'F32' });

  it('inspects from the header: config, format, parameters, no tokenizer', () => {
    const path = writeGguf(llamaGguf(TINY_LLAMA, weights, 'F32'));
    const info = inspectModel(path);
    const hf = inspectModel(hfDir);
    expect(info.format).toBe('gguf');
    expect(info.config).toEqual({ ...hf.config, normEps: Math.fround(1e-5) });
    expect(info.numParameters).toBe(hf.numParameters);
    expect(info.tokenizerPath).toBeNull();
  });

  it('loads the Hugging Face weights back (Q/K permutation undone) and gives the same logits', async () => {
    const path = writeGguf(llamaGguf(TINY_LLAMA, weights, 'F32'));
    const model = loadModel(path);
    for (const [name, tensor] of weights) expect(Array.from(model.weights.get(name)!.data), name).toEqual(Array.from(tensor.data));
    const reference = loadModel(hfDir);
    const ids = [[3, 14, 15, 9, 26, 5, 35, 8]];
    const [a, b] = [await createRuntime(model), await createRuntime(reference)];
    try {
      const [la, lb] = [(await a.forward(makeBatch(ids), { logits: true })).logits!, (await b.forward(makeBatch(ids), { logits: true })).logits!];
      expect(Array.from(la.data)).toEqual(Array.from(lb.data));
    } finally {
      await a.dispose();
      await b.dispose();
    }
  });

  it.each(['F32', 'Q8_0'] as const)('streams a %s file layer by layer (embedding rows only) to the whole-model logits and hidden states', async (type) => {
    const path = writeGguf(llamaGguf(TINY_LLAMA, weights, type));
    const info = inspectModel(path);
    const whole = await createRuntime(loadModel(path), { runtime: 'onnx' });
    const reader = openWeightReader(info);
    const streamed = new StreamedOnnxForward({ family: info.family, config: info.config, weights: reader }, { memoryBudget: 1024 ** 3, ownsWeights: true });
    try {
      const batch = makeBatch([[3, 14, 15, 9, 26, 5, 35, 8], [7, 1, 63, 2]]);
      const [expected, actual] = [await whole.forward(batch, { logits: true, hiddenStates: true }), await streamed.forward(batch, { logits: true, hiddenStates: true })];
      expect(maxAbsDiff(actual.logits!.data, expected.logits!.data)).toBeLessThan(1e-4);
      expected.hiddenStates!.forEach((state, i) => expect(maxAbsDiff(actual.hiddenStates![i].data, state.data)).toBeLessThan(1e-4));
      // Every layer's tensors once, and 12 of the 64 embedding rows — not the whole file.
      expect(reader.bytesRead).toBeGreaterThan(0);
      expect(reader.bytesRead).toBeLessThan(statSync(path).size);
    } finally {
      await whole.dispose();
      await streamed.dispose();
    }
  });

  it.each(['Q8_0', 'F16'] as const)('streams a %s file layer by layer (the pruning path) to the loaded model\'s logits; embedding rows dequantized alone', async (type) => {
    const tied = new Map(weights);
    tied.delete('lm_head.weight');
    const path = writeGguf(llamaGguf({ ...TINY_LLAMA, tie_word_embeddings: true }, tied, type));
    const info = inspectModel(path);
    const loaded = loadModel(path);
    const reader = openWeightReader(info);
    expect(reader.dtype).toBe(type === 'F16' ? 'F16' : 'F32');
    expect(reader.has('lm_head.weight')).toBe(false);
    const embeddings = loaded.weights.get('model.embed_tokens.weight')!;
    const cols = embeddings.shape[1];
    const rows = reader.readRows('model.embed_tokens.weight', [7, 2]);
    expect(Array.from(rows.data)).toEqual([...embeddings.data.subarray(7 * cols, 8 * cols), ...embeddings.data.subarray(2 * cols, 3 * cols)]);
    const whole = await createRuntime(loaded, { runtime: 'onnx' });
    const streamed = new StreamedOnnxForward({ family: info.family, config: info.config, weights: reader }, { memoryBudget: 1024 ** 3, ownsWeights: true });
    try {
      const batch = makeBatch([[3, 14, 15, 9, 26, 5, 35, 8], [1, 2, 3]]);
      const expected = (await whole.forward(batch, { logits: true })).logits!.data;
      const actual = (await streamed.forward(batch, { logits: true })).logits!.data;
      expect(maxAbsDiff(actual, expected)).toBeLessThan(1e-4);
      expect(reader.bytesRead).toBeGreaterThan(0);
    } finally {
      await whole.dispose();
      await streamed.dispose();
    }
  });

  it('ties the embeddings when output.weight is absent, and keeps F16 as the storage dtype', () => {
    const tied = new Map(weights);
    tied.delete('lm_head.weight');
    const info = inspectModel(writeGguf(llamaGguf({ ...TINY_LLAMA, tie_word_embeddings: true }, tied, 'F16')));
    expect(info.config.tieWordEmbeddings).toBe(true);
    expect(info.config.dtype).toBe('F16');
    expect(info.hfConfig.torch_dtype).toBe('float16');
  });

  it('reads Q8_0 weights within half a quantization step', () => {
    const model = loadModel(writeGguf(llamaGguf(TINY_LLAMA, weights, 'Q8_0')));
    const q = weights.get('model.layers.1.self_attn.q_proj.weight')!;
    const got = model.weights.get('model.layers.1.self_attn.q_proj.weight')!;
    const step = Math.max(...Array.from(q.data, Math.abs)) / 127;
    for (let i = 0; i < q.data.length; i++) expect(Math.abs(got.data[i] - q.data[i])).toBeLessThanOrEqual(step / 2 + 1e-3);
    expect(inspectModel(writeGguf(llamaGguf(TINY_LLAMA, weights, 'Q8_0'))).config.dtype).toBe('F32');
  });

  /** The tiny model's GGUF with its metadata and tensors edited. */
  function edited(edit: (kvs: GgufKv[], tensors: GgufTensorToWrite[]) => void): string {
    const file = GgufFile.open(writeGguf(llamaGguf(TINY_LLAMA, weights, 'F32')));
    const kvs: GgufKv[] = [...file.metadata].map(([key, entry]) => [key, entry.type, entry.value, entry.itemType] as const);
    const tensors: GgufTensorToWrite[] = [...file.tensors.values()].map((t) => ({ name: t.name, shape: t.shape, type: t.type.name, data: file.readRaw(t.name) }));
    file.close();
    edit(kvs, tensors);
    return writeGguf(ggufBytes(kvs, tensors));
  }
  const setKv = (kvs: GgufKv[], key: string, type: GgufKv[1], value: unknown) => {
    const at = kvs.findIndex(([k]) => k === key);
    kvs.splice(at < 0 ? kvs.length : at, at < 0 ? 0 : 1, [key, type, value]);
  };

  it.each<[string, (kvs: GgufKv[], tensors: GgufTensorToWrite[]) => void, string, RegExp]>([
    ['another architecture', (kvs) => setKv(kvs, 'general.architecture', 'STRING', 'gemma'), 'UNSUPPORTED_MODEL', /GGUF architecture "gemma" is not supported; supported: llama/],
    ['a tensor the mapping does not know (Llama 3.1 rope_freqs.weight)', (_, t) => t.push({ name: 'rope_freqs.weight', shape: [4], type: 'F32', data: f32Data(new Float32Array(4)) }), 'UNSUPPORTED_MODEL', /GGUF tensor "rope_freqs.weight" has no counterpart in the engine's llama model/],
    ['a missing tensor', (_, t) => t.splice(t.findIndex((x) => x.name === 'blk.2.attn_norm.weight'), 1), 'CORRUPT_FILE', /missing tensor blk.2.attn_norm.weight \(GGUF; expected shape \[32\]\)/],
    ['a misshapen tensor', (_, t) => t.splice(t.findIndex((x) => x.name === 'blk.0.ffn_up.weight'), 1, { name: 'blk.0.ffn_up.weight', shape: [32, 64], type: 'F32', data: new Uint8Array(32 * 64 * 4) }), 'CORRUPT_FILE', /GGUF tensor blk.0.ffn_up.weight has shape \[32, 64\] but the metadata implies \[64, 32\]/],
    ['a metadata size missing', (kvs) => kvs.splice(kvs.findIndex(([k]) => k === 'llama.embedding_length'), 1), 'CORRUPT_FILE', /GGUF metadata llama.embedding_length must be a non-negative integer, got nothing/],
    ['a metadata size of the wrong type', (kvs) => setKv(kvs, 'llama.block_count', 'STRING', '3'), 'CORRUPT_FILE', /GGUF metadata llama.block_count must be a non-negative integer, got a string/],
    ['a layer count beyond the bounds', (kvs) => setKv(kvs, 'llama.block_count', 'UINT32', 4_000_000), 'CORRUPT_FILE', /its GGUF metadata, as config.json, is refused: config.json: num_hidden_layers is 4000000, outside the accepted range 1 to 1024/],
    ['a mixture of experts', (kvs) => setKv(kvs, 'llama.expert_count', 'UINT32', 8), 'UNSUPPORTED_MODEL', /mixture-of-experts GGUF models \(llama.expert_count\) are not supported/],
    ['YaRN rope scaling', (kvs) => setKv(kvs, 'llama.rope.scaling.type', 'STRING', 'yarn'), 'UNSUPPORTED_MODEL', /GGUF rope scaling "yarn" is not supported/],
  ])('refuses %s at inspection', (_, edit, code, message) => {
    const error = engineError(() => inspectModel(edited(edit)));
    expect(error.code).toBe(code);
    expect(error.message).toMatch(message);
  });

  it('refuses NaN weights (a Q8_0 block whose scale is NaN) with INVALID_WEIGHTS on load', () => {
    const path = edited((_, t) => {
      const i = t.findIndex((x) => x.name === 'blk.1.attn_v.weight');
      const data = new Uint8Array((t[i].data.length / 4 / 32) * 34);
      data[0] = 0x00;
      data[1] = 0x7e; // float16 NaN as the first block's scale
      t[i] = { ...t[i], type: 'Q8_0', data };
    });
    expect(inspectModel(path).format).toBe('gguf'); // headers carry no values
    const error = engineError(() => loadModel(path));
    expect(error.code).toBe('INVALID_WEIGHTS');
    expect(error.message).toMatch(/model.layers.1.self_attn.v_proj.weight holds NaN/);
  });

  it('refuses a quantization it cannot read by name at inspection, before reading any tensor', () => {
    const wide = { ...TINY_LLAMA, intermediate_size: 256 };
    const w = tinyWeights('llama', wide, 4);
    const file = GgufFile.open(writeGguf(llamaGguf(wide, w, 'F32')));
    const kvs: GgufKv[] = [...file.metadata].map(([key, entry]) => [key, entry.type, entry.value, entry.itemType] as const);
    const tensors: GgufTensorToWrite[] = [...file.tensors.values()].map((t) =>
      t.name === 'blk.1.ffn_down.weight' ? { name: t.name, shape: t.shape, type: 'IQ4_XS', data: new Uint8Array(32 * 136) } : { name: t.name, shape: t.shape, type: t.type.name, data: file.readRaw(t.name) },
    );
    file.close();
    const error = engineError(() => inspectModel(writeGguf(ggufBytes(kvs, tensors))));
    expect(error.code).toBe('UNSUPPORTED_MODEL');
    expect(error.message).toMatch(/GGUF tensor blk.1.ffn_down.weight is stored as GGML type IQ4_XS; the engine reads F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K/);
  });
});

describe('GGUF through the engine CLI', () => {
  const bin = fileURLToPath(new URL('../bin/streamline-engine.js', import.meta.url));
  const cli = (...args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [bin, ...args], { encoding: 'utf8' }, (error, stdout, stderr) => resolve({ code: error ? 1 : 0, stdout, stderr }));
    });

  it('inspects a GGUF model', async () => {
    const { code, stdout } = await cli('inspect', '--model', writeGguf(llamaGguf(TINY_LLAMA, tinyWeights('llama', TINY_LLAMA, 3), 'F16')));
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ architecture: 'llama', format: 'gguf', numLayers: 3, dtype: 'F16', tokenizer: null });
  });

  it('answers a hostile GGUF with one line on stderr', async () => {
    const { code, stdout, stderr } = await cli('inspect', '--model', writeGguf(ggufBytes([], [], { tensorCount: 60_000n })));
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(/is not a valid GGUF file: tensor_count 60000 cannot fit/);
  });
});

describe.skipIf(!runWithShared)('GGUF tokenizers', () => {
  it('a llama (SentencePiece) vocabulary encodes as the llama2.c tokenizer it came from, and as llama2.c test.c expects', async () => {
    const llama2 = (await loadTokenizer(sharedPath('models/llama2-tokenizer/tokenizer.bin'))) as Llama2cTokenizer;
    const tokens = llama2.pieces.map((piece) => Buffer.from(piece, 'latin1').toString('utf8').replaceAll(' ', '\u2581'));
    const types = tokens.map((_, id) => (id === 0 ? 2 : id <= 2 ? 3 : id < 259 ? 6 : 1));
    const kvs: GgufKv[] = [
      ['general.architecture', 'STRING', 'llama'],
      ['tokenizer.ggml.model', 'STRING', 'llama'],
      ['tokenizer.ggml.tokens', 'ARRAY', tokens, 'STRING'],
      ['tokenizer.ggml.scores', 'ARRAY', Array.from(llama2.scores), 'FLOAT32'],
      ['tokenizer.ggml.token_type', 'ARRAY', types, 'INT32'],
      ['tokenizer.ggml.bos_token_id', 'UINT32', 1],
      ['tokenizer.ggml.eos_token_id', 'UINT32', 2],
    ];
    const tokenizer = await loadTokenizer(writeGguf(ggufBytes(kvs, [])));
    expect(tokenizer.vocabSize).toBe(32000);
    const cases: { text: string; ids: number[] }[] = JSON.parse(readFileSync(sharedPath('refs/llama2c_tokenizer_bin_expected_ids.json'), 'utf8'));
    for (const { text, ids } of cases) {
      expect(tokenizer.encode(text, { bos: true })).toEqual(ids);
      expect(tokenizer.decode(ids)).toBe(llama2.decode(ids));
    }
    const story = readFileSync(sharedPath('data/text/tinystories_val_excerpt.txt'), 'utf8').slice(0, 3000);
    expect(tokenizer.encode(story)).toEqual(llama2.encode(story));

    // exported beside a pruned model as a llama2.c tokenizer.bin: the same file the vocabulary came from
    const files = ggufTokenizerFiles(writeGguf(ggufBytes(kvs, [])));
    expect(Object.keys(files)).toEqual(['tokenizer.bin']);
    expect(Buffer.compare(Buffer.from(files['tokenizer.bin']), readFileSync(sharedPath('models/llama2-tokenizer/tokenizer.bin')))).toBe(0);
  });

  it('a gpt2 (byte-level BPE) vocabulary: special tokens, digits one by one, an unknown pre-tokenizer refused', async () => {
    const bytes = (pre: string) =>
      ggufBytes(
        [
          ['tokenizer.ggml.model', 'STRING', 'gpt2'],
          ['tokenizer.ggml.pre', 'STRING', pre],
          ['tokenizer.ggml.tokens', 'ARRAY', ['<|end|>', 'a', 'b', 'ab', '1', '2', 'Ġ', 'Ġab'], 'STRING'],
          ['tokenizer.ggml.token_type', 'ARRAY', [3, 1, 1, 1, 1, 1, 1, 1], 'INT32'],
          ['tokenizer.ggml.merges', 'ARRAY', ['a b', 'Ġ ab'], 'STRING'],
          ['tokenizer.ggml.eos_token_id', 'UINT32', 0],
        ],
        [],
      );
    const tokenizer = await loadTokenizer(writeGguf(bytes('smollm')));
    expect(tokenizer.encode('ab ab12<|end|>')).toEqual([3, 7, 4, 5, 0]);
    // exported beside a pruned model as tokenizer.json + tokenizer_config.json
    const dir = mkdtempSync(join(scratch, 'tokenizer-'));
    for (const [name, content] of Object.entries(ggufTokenizerFiles(writeGguf(bytes('smollm'))))) writeFileSync(join(dir, name), content);
    const exported = await loadTokenizer(dir);
    expect(exported.encode('ab ab12<|end|>')).toEqual([3, 7, 4, 5, 0]);
    expect(exported.eosId).toBe(0);
    expect(tokenizer.decode([3, 7, 4, 5])).toBe('ab ab12');
    expect(tokenizer.eosId).toBe(0);
    await expect(loadTokenizer(writeGguf(bytes('mystery')))).rejects.toThrow(/GGUF pre-tokenizer "mystery" \(tokenizer.ggml.pre\) is not supported; supported: default, gpt-2, phi-2, mpt, olmo, smollm/);
  });

  it('a GGUF without a vocabulary is no tokenizer', async () => {
    await expect(loadTokenizer(writeGguf(ggufBytes([['general.architecture', 'STRING', 'llama']], [])))).rejects.toThrow(/holds no tokenizer/);
  });
});
