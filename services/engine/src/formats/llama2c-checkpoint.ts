/**
 * llama2.c checkpoints (legacy version 0): 7 int32 header fields, then float32 tensors in a fixed order
 * (see ../shared/README.md). Converted on read to the Hugging Face Llama layout: weight names, and the
 * q/k rows permuted from llama2.c's interleaved RoPE pairs (2i, 2i+1) to rotate-half halves (i, i + d/2),
 * the same permutation as transformers' convert_llama_weights_to_hf.py.
 */
import { closeSync, fstatSync } from 'node:fs';
import { EngineError } from '../errors.js';
import { openRegularFile, readFully } from './file-reads.js';
import { CONFIG_BOUNDS } from '../models/families/config-fields.js';
import type { HostTensor } from './host-tensor.js';

export interface Llama2cHeader {
  readonly dim: number;
  readonly hiddenDim: number;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly vocabSize: number;
  readonly maxSeqLen: number;
  /** A negative vocab_size in the file means an untied classifier follows the other weights. */
  readonly sharedClassifier: boolean;
}

const HEADER_BYTES = 7 * 4;

export function readLlama2cHeader(path: string): Llama2cHeader & { fileSize: number } {
  const fd = openRegularFile(path, 'llama2.c checkpoint');
  try {
    const fileSize = fstatSync(fd).size;
    if (fileSize < HEADER_BYTES) throw new EngineError('CORRUPT_FILE', `${path} is too short for a llama2.c header (${fileSize} bytes, need ${HEADER_BYTES})`);
    const bytes = Buffer.alloc(HEADER_BYTES);
    readFully(fd, bytes, 0, path, 'the header');
    const field = (i: number) => bytes.readInt32LE(4 * i);
    const header = {
      dim: field(0),
      hiddenDim: field(1),
      numLayers: field(2),
      numHeads: field(3),
      numKvHeads: field(4),
      vocabSize: Math.abs(field(5)),
      maxSeqLen: field(6),
      sharedClassifier: field(5) > 0,
      fileSize,
    };
    checkHeaderBounds(path, header);
    const expected = expectedFileSize(header);
    if (fileSize < expected) {
      throw new EngineError('CORRUPT_FILE', `${path} is truncated: its header describes ${expected} bytes of weights but the file has ${fileSize}`);
    }
    return header;
  } finally {
    closeSync(fd);
  }
}

/**
 * The header's sizes, each within the bounds config.json sizes have (checked before anything is sized
 * from them). An error names the header field, its value and the bound — never the rest of the header.
 */
function checkHeaderBounds(path: string, h: Llama2cHeader): void {
  const fields: [keyof Llama2cHeader, string, number][] = [
    ['dim', 'dim (hidden_size)', CONFIG_BOUNDS.hidden_size],
    ['hiddenDim', 'hidden_dim (intermediate_size)', CONFIG_BOUNDS.intermediate_size],
    ['numLayers', 'n_layers (num_hidden_layers)', CONFIG_BOUNDS.num_hidden_layers],
    ['numHeads', 'n_heads (num_attention_heads)', h.dim],
    ['numKvHeads', 'n_kv_heads (num_key_value_heads)', h.numHeads],
    ['vocabSize', 'vocab_size', CONFIG_BOUNDS.vocab_size],
    ['maxSeqLen', 'seq_len (max_position_embeddings)', CONFIG_BOUNDS.max_position_embeddings],
  ];
  for (const [key, name, max] of fields) {
    const value = h[key] as number;
    if (!(value >= 1 && value <= max)) {
      throw new EngineError('CORRUPT_FILE', `${path} is not a valid llama2.c checkpoint: header field ${name} is ${value}, outside the accepted range 1 to ${max}`);
    }
  }
  if (h.dim % h.numHeads !== 0) throw new EngineError('CORRUPT_FILE', `${path} is not a valid llama2.c checkpoint: dim ${h.dim} is not a multiple of n_heads ${h.numHeads}`);
  if (h.numHeads % h.numKvHeads !== 0) {
    throw new EngineError('CORRUPT_FILE', `${path} is not a valid llama2.c checkpoint: n_heads ${h.numHeads} is not a multiple of n_kv_heads ${h.numKvHeads}`);
  }
}

function tensorShapes(h: Llama2cHeader): [string, number[]][] {
  const headSize = h.dim / h.numHeads;
  const kvDim = h.numKvHeads * headSize;
  const L = h.numLayers;
  const shapes: [string, number[]][] = [
    ['token_embedding', [h.vocabSize, h.dim]],
    ['rms_att', [L, h.dim]],
    ['wq', [L, h.dim, h.dim]],
    ['wk', [L, kvDim, h.dim]],
    ['wv', [L, kvDim, h.dim]],
    ['wo', [L, h.dim, h.dim]],
    ['rms_ffn', [L, h.dim]],
    ['w1', [L, h.hiddenDim, h.dim]],
    ['w2', [L, h.dim, h.hiddenDim]],
    ['w3', [L, h.hiddenDim, h.dim]],
    ['rms_final', [h.dim]],
    ['freq_cis_real', [h.maxSeqLen, headSize / 2]], // unused legacy RoPE tables
    ['freq_cis_imag', [h.maxSeqLen, headSize / 2]],
  ];
  if (!h.sharedClassifier) shapes.push(['wcls', [h.vocabSize, h.dim]]);
  return shapes;
}

function expectedFileSize(h: Llama2cHeader): number {
  return HEADER_BYTES + tensorShapes(h).reduce((sum, [, shape]) => sum + 4 * shape.reduce((a, b) => a * b, 1), 0);
}

/** Hugging Face config.json for a llama2.c model. */
export function llama2cHfConfig(h: Llama2cHeader): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: h.dim,
    intermediate_size: h.hiddenDim,
    num_hidden_layers: h.numLayers,
    num_attention_heads: h.numHeads,
    num_key_value_heads: h.numKvHeads,
    vocab_size: h.vocabSize,
    max_position_embeddings: h.maxSeqLen,
    rms_norm_eps: 1e-5,
    rope_theta: 10000.0,
    hidden_act: 'silu',
    tie_word_embeddings: h.sharedClassifier,
    bos_token_id: 1,
    eos_token_id: 2,
    torch_dtype: 'float32',
  };
}

/**
 * Rows of a q or k weight [heads·headSize, dim]: within each head, llama2.c's row 2i+p (pair i, part p)
 * becomes Hugging Face's row p·headSize/2 + i.
 */
export function permuteInterleavedToRotateHalf(data: Float32Array, heads: number, headSize: number, dim: number): Float32Array {
  const out = new Float32Array(data.length);
  const half = headSize / 2;
  for (let head = 0; head < heads; head++) {
    for (let i = 0; i < half; i++) {
      for (let part = 0; part < 2; part++) {
        const from = (head * headSize + 2 * i + part) * dim;
        const to = (head * headSize + part * half + i) * dim;
        out.set(data.subarray(from, from + dim), to);
      }
    }
  }
  return out;
}

/** Where one Hugging Face tensor lies in a llama2.c file: a contiguous float32 slice. */
export interface Llama2cTensor {
  readonly offset: number;
  readonly shape: readonly number[];
  /** q/k weights: the number of heads whose rows are permuted from interleaved to rotate-half on read. */
  readonly permuteHeads?: number;
}

/**
 * Every tensor of the file under its Hugging Face name, with its byte offset: the file is a fixed
 * sequence of stacked [L, …] tensors, so layer l of a stacked tensor is the l-th slice of it.
 */
export function llama2cTensorTable(h: Llama2cHeader): Map<string, Llama2cTensor> {
  const offsets = new Map<string, { offset: number; shape: number[] }>();
  let offset = HEADER_BYTES;
  for (const [name, shape] of tensorShapes(h)) {
    offsets.set(name, { offset, shape });
    offset += 4 * shape.reduce((a, b) => a * b, 1);
  }
  const whole = (name: string): Llama2cTensor => offsets.get(name)!;
  const layer = (name: string, l: number, permuteHeads?: number): Llama2cTensor => {
    const { offset: base, shape } = offsets.get(name)!;
    const inner = shape.slice(1);
    return { offset: base + 4 * l * inner.reduce((a, b) => a * b, 1), shape: inner, ...(permuteHeads ? { permuteHeads } : {}) };
  };
  const table = new Map<string, Llama2cTensor>([['model.embed_tokens.weight', whole('token_embedding')]]);
  for (let l = 0; l < h.numLayers; l++) {
    const p = `model.layers.${l}.`;
    table.set(`${p}input_layernorm.weight`, layer('rms_att', l));
    table.set(`${p}self_attn.q_proj.weight`, layer('wq', l, h.numHeads));
    table.set(`${p}self_attn.k_proj.weight`, layer('wk', l, h.numKvHeads));
    table.set(`${p}self_attn.v_proj.weight`, layer('wv', l));
    table.set(`${p}self_attn.o_proj.weight`, layer('wo', l));
    table.set(`${p}post_attention_layernorm.weight`, layer('rms_ffn', l));
    table.set(`${p}mlp.gate_proj.weight`, layer('w1', l));
    table.set(`${p}mlp.down_proj.weight`, layer('w2', l));
    table.set(`${p}mlp.up_proj.weight`, layer('w3', l));
  }
  table.set('model.norm.weight', whole('rms_final'));
  if (!h.sharedClassifier) table.set('lm_head.weight', whole('wcls'));
  return table;
}

/** One tensor of the table read with a positioned read (q/k rows permuted to the Hugging Face layout). */
export function readLlama2cTensor(fd: number, path: string, h: Llama2cHeader, tensor: Llama2cTensor): HostTensor {
  const data = new Float32Array(tensor.shape.reduce((a, b) => a * b, 1));
  readFully(fd, new Uint8Array(data.buffer), tensor.offset, path, `a tensor needs bytes ${tensor.offset}..${tensor.offset + data.byteLength}`);
  if (!tensor.permuteHeads) return { shape: tensor.shape, data };
  return { shape: tensor.shape, data: permuteInterleavedToRotateHalf(data, tensor.permuteHeads, h.dim / h.numHeads, h.dim) };
}

/** Reads a whole llama2.c checkpoint as Hugging Face Llama weights. */
export function readLlama2cCheckpoint(path: string): { header: Llama2cHeader; config: Record<string, unknown>; weights: Map<string, HostTensor> } {
  const header = readLlama2cHeader(path);
  const fd = openRegularFile(path, 'llama2.c checkpoint');
  try {
    const weights = new Map<string, HostTensor>();
    for (const [name, tensor] of llama2cTensorTable(header)) weights.set(name, readLlama2cTensor(fd, path, header, tensor));
    return { header, config: llama2cHfConfig(header), weights };
  } finally {
    closeSync(fd);
  }
}
