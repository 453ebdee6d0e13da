/**
 * A GGUF model as the engine's Hugging Face-style model: llama.cpp's tensor names mapped to Hugging
 * Face's by a table, the Q/K row permutation of llama.cpp's convert_hf_to_gguf.py undone, and a
 * config.json built from the GGUF metadata (`<arch>.block_count`, …). Embeddings are tied when the file
 * has no `output.weight`, as llama.cpp does.
 *
 * `inspectGguf` reads only the header (it runs in the gateway's inspection thread on tenants' files);
 * `GgufWeights.read(name)` reads and dequantizes one tensor on demand, by its Hugging Face name.
 */
import { EngineError } from '../errors.js';
import type { ArchitectureFamily, ModelConfig } from '../models/architecture.js';
import { familyFor } from '../models/families/index.js';
import { expectedWeightShapes } from '../models/weight-shapes.js';
import type { StorageDtype } from './dtype.js';
import { GgufFile, type GgufValue } from './gguf.js';
import { checkDequantizable, dequantize, type GgmlType } from './gguf-quants.js';
import type { HostTensor } from './host-tensor.js';

/** Rows of q/k that llama.cpp stores interleaved for its RoPE (by attention heads or by KV heads). */
type Permutation = 'attention-heads' | 'kv-heads' | null;

interface GgufArchitecture {
  /** The Hugging Face model_type it becomes. */
  readonly modelType: string;
  readonly architectures: readonly string[];
  /** [llama.cpp name, Hugging Face name, permutation]; `{i}` is the layer. */
  readonly tensors: readonly (readonly [string, string, Permutation])[];
}

/** GGUF `general.architecture` → how to read it. Only llama is implemented (Llama 1–3, Mistral, SmolLM… convert to it). */
const GGUF_ARCHITECTURES: Readonly<Record<string, GgufArchitecture>> = {
  llama: {
    modelType: 'llama',
    architectures: ['LlamaForCausalLM'],
    tensors: [
      ['token_embd.weight', 'model.embed_tokens.weight', null],
      ['output_norm.weight', 'model.norm.weight', null],
      ['output.weight', 'lm_head.weight', null],
      ['blk.{i}.attn_norm.weight', 'model.layers.{i}.input_layernorm.weight', null],
      ['blk.{i}.attn_q.weight', 'model.layers.{i}.self_attn.q_proj.weight', 'attention-heads'],
      ['blk.{i}.attn_k.weight', 'model.layers.{i}.self_attn.k_proj.weight', 'kv-heads'],
      ['blk.{i}.attn_v.weight', 'model.layers.{i}.self_attn.v_proj.weight', null],
      ['blk.{i}.attn_output.weight', 'model.layers.{i}.self_attn.o_proj.weight', null],
      ['blk.{i}.ffn_norm.weight', 'model.layers.{i}.post_attention_layernorm.weight', null],
      ['blk.{i}.ffn_gate.weight', 'model.layers.{i}.mlp.gate_proj.weight', null],
      ['blk.{i}.ffn_up.weight', 'model.layers.{i}.mlp.up_proj.weight', null],
      ['blk.{i}.ffn_down.weight', 'model.layers.{i}.mlp.down_proj.weight', null],
    ],
  },
};

export interface TensorMapping {
  readonly ggufName: string;
  readonly permutation: Permutation;
}

/** Every Hugging Face name of a model with `numLayers` layers → its GGUF tensor. */
export function llamaTensorMappings(numLayers: number): Map<string, TensorMapping> {
  return tensorMappings(GGUF_ARCHITECTURES.llama, numLayers);
}

/** Every Hugging Face name of a model with `numLayers` layers → its GGUF tensor. */
function tensorMappings(arch: GgufArchitecture, numLayers: number): Map<string, TensorMapping> {
  const byHfName = new Map<string, TensorMapping>();
  for (const [gguf, hf, permutation] of arch.tensors) {
    if (!gguf.includes('{i}')) {
      byHfName.set(hf, { ggufName: gguf, permutation });
      continue;
    }
    for (let i = 0; i < numLayers; i++) byHfName.set(hf.replace('{i}', String(i)), { ggufName: gguf.replace('{i}', String(i)), permutation });
  }
  return byHfName;
}

export interface GgufModelDescription {
  readonly family: ArchitectureFamily;
  readonly config: ModelConfig;
  readonly hfConfig: Record<string, unknown>;
  /** The GGML types of the weights, with how many tensors each (e.g. {Q4_1: 210, F32: 61, Q8_0: 1}). */
  readonly tensorTypes: Readonly<Record<string, number>>;
}

/** Typed reads of GGUF metadata with errors that name the key. */
class Metadata {
  constructor(
    private readonly file: GgufFile,
    readonly arch: string,
  ) {}

  private fail(key: string, expected: string, value: GgufValue | undefined): never {
    const shown = value === undefined ? 'nothing' : typeof value === 'string' ? `a string` : Array.isArray(value) ? 'an array' : String(value);
    throw new EngineError('CORRUPT_FILE', `${this.file.path}: GGUF metadata ${this.key(key)} must be ${expected}, got ${shown}`);
  }

  key(suffix: string): string {
    return suffix.startsWith('tokenizer.') || suffix.startsWith('general.') ? suffix : `${this.arch}.${suffix}`;
  }

  int(suffix: string, fallback?: number): number {
    const value = this.file.get(this.key(suffix));
    if (value === undefined && fallback !== undefined) return fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) this.fail(suffix, 'a non-negative integer', value);
    return value;
  }

  number(suffix: string, fallback: number): number {
    const value = this.file.get(this.key(suffix));
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || !Number.isFinite(value)) this.fail(suffix, 'a number', value);
    return value;
  }

  string(suffix: string): string | undefined {
    const value = this.file.get(this.key(suffix));
    if (value !== undefined && typeof value !== 'string') this.fail(suffix, 'a string', value);
    return value;
  }
}

/** The architecture a GGUF file names, or UNSUPPORTED_MODEL. */
function architectureOf(file: GgufFile): [string, GgufArchitecture] {
  const name = file.get('general.architecture');
  if (typeof name !== 'string') throw new EngineError('CORRUPT_FILE', `${file.path}: GGUF metadata general.architecture is missing or not a string`);
  const arch = Object.hasOwn(GGUF_ARCHITECTURES, name) ? GGUF_ARCHITECTURES[name] : undefined;
  if (!arch) {
    const shown = name.length <= 40 ? JSON.stringify(name) : `a name of ${name.length} characters`;
    throw new EngineError('UNSUPPORTED_MODEL', `${file.path}: GGUF architecture ${shown} is not supported; supported: ${Object.keys(GGUF_ARCHITECTURES).join(', ')}`);
  }
  return [name, arch];
}

/** config.json for the model in a GGUF file, from its metadata (and, for the vocabulary size, its tokens or embedding). */
export function ggufHfConfig(file: GgufFile): Record<string, unknown> {
  const [archName, arch] = architectureOf(file);
  const meta = new Metadata(file, archName);
  if (meta.int('expert_count', 0) > 0) throw new EngineError('UNSUPPORTED_MODEL', `${file.path}: mixture-of-experts GGUF models (${archName}.expert_count) are not supported`);
  const ropeScaling = meta.string('rope.scaling.type') ?? 'none';
  if (ropeScaling !== 'none' && ropeScaling !== 'linear') {
    throw new EngineError('UNSUPPORTED_MODEL', `${file.path}: GGUF rope scaling ${JSON.stringify(ropeScaling.slice(0, 40))} is not supported (only none and linear)`);
  }
  const hiddenSize = meta.int('embedding_length');
  const numHeads = meta.int('attention.head_count');
  const headDim = numHeads > 0 && hiddenSize % numHeads === 0 ? hiddenSize / numHeads : undefined;
  const keyLength = meta.int('attention.key_length', headDim ?? 0);
  const valueLength = meta.int('attention.value_length', keyLength);
  const ropeDims = meta.int('rope.dimension_count', keyLength);
  if (keyLength !== valueLength || ropeDims !== keyLength) {
    throw new EngineError('UNSUPPORTED_MODEL', `${file.path}: GGUF attention with key length ${keyLength}, value length ${valueLength} and ${ropeDims} rotary dimensions is not supported (all three must be equal)`);
  }
  const tokens = file.get('tokenizer.ggml.tokens');
  const embedding = file.tensors.get('token_embd.weight');
  const vocabSize = meta.int('vocab_size', Array.isArray(tokens) ? tokens.length : (embedding?.shape[0] ?? 0));
  const optionalId = (key: string) => {
    const value = file.get(key);
    return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : null;
  };
  return {
    architectures: [...arch.architectures],
    model_type: arch.modelType,
    hidden_size: hiddenSize,
    intermediate_size: meta.int('feed_forward_length'),
    num_hidden_layers: meta.int('block_count'),
    num_attention_heads: numHeads,
    num_key_value_heads: meta.int('attention.head_count_kv', numHeads),
    ...(keyLength !== headDim ? { head_dim: keyLength } : {}),
    vocab_size: vocabSize,
    max_position_embeddings: meta.int('context_length', 2048),
    rms_norm_eps: meta.number('attention.layer_norm_rms_epsilon', 1e-5),
    rope_theta: meta.number('rope.freq_base', 10000),
    ...(ropeScaling === 'linear' ? { rope_scaling: { type: 'linear', factor: meta.number('rope.scaling.factor', 1) } } : {}),
    hidden_act: 'silu',
    tie_word_embeddings: !file.has('output.weight'),
    bos_token_id: optionalId('tokenizer.ggml.bos_token_id'),
    eos_token_id: optionalId('tokenizer.ggml.eos_token_id'),
    torch_dtype: 'float32',
  };
}

/**
 * What the model in an open GGUF file is, from its header alone: config, and every tensor checked
 * against the shapes the config implies, with a GGML type the engine reads. A tensor the mapping does
 * not know (e.g. Llama 3.1's rope_freqs.weight) is refused by name: ignoring it would change the model.
 */
export function describeGguf(file: GgufFile): GgufModelDescription {
  const [, arch] = architectureOf(file);
  const hfConfig = ggufHfConfig(file);
  const family = familyFor(hfConfig.model_type);
  let config: ModelConfig;
  try {
    config = family.parseConfig(hfConfig, 'F32');
  } catch (error) {
    if (error instanceof EngineError) throw new EngineError(error.code, `${file.path}: its GGUF metadata, as config.json, is refused: ${error.message}`);
    throw error;
  }
  const mappings = tensorMappings(arch, config.numLayers);
  const known = new Set([...mappings.values()].map((m) => m.ggufName));
  for (const name of file.tensors.keys()) {
    if (!known.has(name)) {
      const shown = name.length <= 80 ? JSON.stringify(name) : `a tensor name of ${name.length} characters`;
      throw new EngineError('UNSUPPORTED_MODEL', `${file.path}: GGUF tensor ${shown} has no counterpart in the engine's ${config.modelType} model`);
    }
  }
  const tensorTypes: Record<string, number> = {};
  const storageTypes = new Set<string>();
  for (const [hfName, shape] of expectedWeightShapes(family, config)) {
    const { ggufName } = mappings.get(hfName)!;
    const info = file.tensors.get(ggufName);
    if (!info) throw new EngineError('CORRUPT_FILE', `${file.path}: missing tensor ${ggufName} (GGUF; expected shape [${shape.join(', ')}])`);
    if (info.shape.join() !== shape.join()) {
      throw new EngineError('CORRUPT_FILE', `${file.path}: GGUF tensor ${ggufName} has shape [${info.shape.join(', ')}] but the metadata implies [${shape.join(', ')}]`);
    }
    checkDequantizable(info.type, `${file.path}: GGUF tensor ${ggufName}`);
    tensorTypes[info.type.name] = (tensorTypes[info.type.name] ?? 0) + 1;
    if (shape.length === 2) storageTypes.add(info.type.name);
  }
  // Exports keep F16/BF16 when every matrix was stored so; quantized weights are exported as F32
  // (their dequantized values are float32 products, not representable in 16 bits).
  const only = storageTypes.size === 1 ? [...storageTypes][0] : 'F32';
  const dtype: StorageDtype = only === 'F16' || only === 'BF16' ? only : 'F32';
  return { family, config: { ...config, dtype }, hfConfig: { ...hfConfig, torch_dtype: TORCH_DTYPE[dtype] }, tensorTypes };
}

/**
 * Undoes llama.cpp's convert_hf_to_gguf permutation of q/k rows (the inverse of its `permute`): within
 * each head, GGUF row 2i + p (RoPE pair i, part p) is Hugging Face row p·headSize/2 + i. Rows are moved
 * as `rowBytes` opaque bytes, so this works on float32 data and on quantized blocks alike.
 */
export function permuteInterleavedRowsToRotateHalf(bytes: Uint8Array, heads: number, headSize: number, rowBytes: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  const half = headSize / 2;
  for (let head = 0; head < heads; head++) {
    for (let i = 0; i < half; i++) {
      for (let part = 0; part < 2; part++) {
        const from = (head * headSize + 2 * i + part) * rowBytes;
        out.set(bytes.subarray(from, from + rowBytes), (head * headSize + part * half + i) * rowBytes);
      }
    }
  }
  return out;
}

/**
 * llama.cpp's convert_hf_to_gguf permutation of q/k rows (its `permute`), the inverse of the one above:
 * within each head, Hugging Face row p·headSize/2 + i (rotate-half) becomes GGUF row 2i + p (RoPE pairs
 * interleaved). Float32 rows of `cols` values.
 */
export function permuteRotateHalfRowsToInterleaved(data: Float32Array, heads: number, headSize: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  const half = headSize / 2;
  for (let head = 0; head < heads; head++) {
    for (let part = 0; part < 2; part++) {
      for (let i = 0; i < half; i++) {
        const from = (head * headSize + part * half + i) * cols;
        out.set(data.subarray(from, from + cols), (head * headSize + 2 * i + part) * cols);
      }
    }
  }
  return out;
}

const TORCH_DTYPE: Record<StorageDtype, string> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };

/** Reads the weights of a GGUF model one at a time, by Hugging Face name, as float32. */
export class GgufWeights {
  private constructor(
    private readonly file: GgufFile,
    readonly description: GgufModelDescription,
    private readonly mappings: ReadonlyMap<string, TensorMapping>,
  ) {}

  static open(path: string): GgufWeights {
    const file = GgufFile.open(path);
    try {
      const description = describeGguf(file);
      const [, arch] = architectureOf(file);
      return new GgufWeights(file, description, tensorMappings(arch, description.config.numLayers));
    } catch (error) {
      file.close();
      throw error;
    }
  }

  get path(): string {
    return this.file.path;
  }

  /** The Hugging Face names this model has (lm_head.weight only when untied). */
  names(): string[] {
    return [...expectedWeightShapes(this.description.family, this.description.config).keys()];
  }

  /** One weight by its Hugging Face name, dequantized to float32; q/k rows in Hugging Face's rotate-half order. */
  read(hfName: string): HostTensor {
    const stored = this.readStored(hfName);
    return { shape: stored.shape, data: dequantize(stored.type, stored.bytes, stored.shape.reduce((a, b) => a * b, 1), `tensor ${hfName} of ${this.file.path}`) };
  }

  /** Rows of a 2-D weight (an embedding lookup), dequantized: [rows.length, cols]; only those rows are read. */
  readRows(hfName: string, rows: ArrayLike<number>): HostTensor {
    const mapping = this.mappings.get(hfName);
    if (!mapping || !this.file.has(mapping.ggufName)) throw new EngineError('NOT_FOUND', `tensor ${hfName} is not in ${this.file.path}`);
    if (mapping.permutation !== null) throw new EngineError('BAD_INPUT', `tensor ${hfName} has permuted rows; read it whole`);
    const info = this.file.tensor(mapping.ggufName);
    const what = `tensor ${mapping.ggufName} of ${this.file.path}`;
    checkDequantizable(info.type, what);
    const [numRows, cols] = info.shape;
    const rowBytes = (cols / info.type.blockSize) * info.type.blockBytes;
    const out = new Float32Array(rows.length * cols);
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i];
      if (!(Number.isInteger(row) && row >= 0 && row < numRows)) throw new EngineError('BAD_INPUT', `row ${row} is outside ${hfName} (${numRows} rows)`);
      out.set(dequantize(info.type, this.file.readRange(mapping.ggufName, row * rowBytes, rowBytes), cols, what), i * cols);
    }
    return { shape: [rows.length, cols], data: out };
  }

  /** Stored bytes of one weight (its size on disk). */
  byteLength(hfName: string): number {
    return this.info(hfName).bytes;
  }

  /** A weight's shape, by its Hugging Face name (Hugging Face's [rows, cols] order, as `read` returns it). */
  shape(hfName: string): readonly number[] {
    return this.info(hfName).shape;
  }

  private info(hfName: string) {
    const mapping = this.mappings.get(hfName);
    if (!mapping || !this.file.has(mapping.ggufName)) throw new EngineError('NOT_FOUND', `tensor ${hfName} is not in ${this.file.path}`);
    return this.file.tensor(mapping.ggufName);
  }

  /** True when the model has this weight (lm_head.weight only when untied). */
  has(hfName: string): boolean {
    const mapping = this.mappings.get(hfName);
    return mapping !== undefined && this.file.has(mapping.ggufName);
  }

  /**
   * One weight by its Hugging Face name as stored — its GGML type's blocks, not dequantized — with q/k
   * rows already in Hugging Face's order (a row is a whole number of blocks, so rows move as bytes). For
   * holding weights in their stored size until they are used: `dequantize(type, bytes, elements)`.
   */
  readStored(hfName: string): { readonly shape: readonly number[]; readonly type: GgmlType; readonly bytes: Uint8Array } {
    const mapping = this.mappings.get(hfName);
    if (!mapping || !this.file.has(mapping.ggufName)) throw new EngineError('NOT_FOUND', `tensor ${hfName} is not in ${this.file.path}`);
    const info = this.file.tensor(mapping.ggufName);
    checkDequantizable(info.type, `tensor ${mapping.ggufName} of ${this.file.path}`);
    const bytes = this.file.readRaw(mapping.ggufName);
    if (mapping.permutation === null) return { shape: info.shape, type: info.type, bytes };
    const { config } = this.description;
    const heads = mapping.permutation === 'attention-heads' ? config.numAttentionHeads : config.numKeyValueHeads;
    const [rows, cols] = info.shape;
    const rowBytes = (cols / info.type.blockSize) * info.type.blockBytes;
    return { shape: info.shape, type: info.type, bytes: permuteInterleavedRowsToRotateHalf(bytes, heads, rows / heads, rowBytes) };
  }

  close(): void {
    this.file.close();
  }
}
