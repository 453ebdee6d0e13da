/**
 * Random Llama models of real shapes, for benchmarks (and tests) at scale: a Hugging Face folder with
 * config.json, bf16 (or f16/f32) safetensors shards and model.safetensors.index.json, exactly as a real
 * checkpoint is laid out, generated tensor by tensor in bounded memory. Never committed: write it under a
 * temporary directory and delete it after (`removeRandomModel`); `cleanStaleRandomModels` removes what a
 * crashed run left behind.
 *
 * Weights are N(0, 0.02²) like a freshly initialised Llama (norm weights 1), drawn from a seeded PRNG, so a
 * model is the same for the same seed.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, statfsSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RandomLlamaShape {
  readonly numLayers: number;
  readonly hiddenSize: number;
  readonly numAttentionHeads: number;
  readonly numKeyValueHeads: number;
  readonly intermediateSize: number;
  readonly vocabSize: number;
  readonly maxPositionEmbeddings: number;
}

/** Llama-2-7B's shape; pick the layer count. */
export function llama2_7bShape(numLayers = 32): RandomLlamaShape {
  return { numLayers, hiddenSize: 4096, numAttentionHeads: 32, numKeyValueHeads: 32, intermediateSize: 11008, vocabSize: 32000, maxPositionEmbeddings: 4096 };
}

/** The CPU benches' model: 8 layers, d 512, 8 heads, 4 KV heads, FFN 1376, vocab 32000. */
export function d512Shape(): RandomLlamaShape {
  return { numLayers: 8, hiddenSize: 512, numAttentionHeads: 8, numKeyValueHeads: 4, intermediateSize: 1376, vocabSize: 32000, maxPositionEmbeddings: 2048 };
}

export type RandomDtype = 'BF16' | 'F16' | 'F32';

export interface RandomLlamaOptions {
  readonly dtype?: RandomDtype;
  readonly seed?: number;
  /** Shards of at most this many bytes (a tensor is never split); default 2 GiB. */
  readonly maxShardBytes?: number;
  readonly onTensor?: (name: string, bytesWritten: number, totalBytes: number) => void;
}

const ELEMENT_BYTES: Record<RandomDtype, number> = { BF16: 2, F16: 2, F32: 4 };
/** Directories this module creates start with this, so stale ones can be found and removed. */
export const RANDOM_MODEL_PREFIX = 'streamline-random-llama-';

/** Every tensor of the model with its shape, in the order Hugging Face writes them. */
export function randomLlamaTensors(shape: RandomLlamaShape): [string, number[]][] {
  const d = shape.hiddenSize;
  const headDim = d / shape.numAttentionHeads;
  const kv = shape.numKeyValueHeads * headDim;
  const tensors: [string, number[]][] = [['model.embed_tokens.weight', [shape.vocabSize, d]]];
  for (let l = 0; l < shape.numLayers; l++) {
    const p = `model.layers.${l}.`;
    tensors.push(
      [`${p}input_layernorm.weight`, [d]],
      [`${p}self_attn.q_proj.weight`, [d, d]],
      [`${p}self_attn.k_proj.weight`, [kv, d]],
      [`${p}self_attn.v_proj.weight`, [kv, d]],
      [`${p}self_attn.o_proj.weight`, [d, d]],
      [`${p}post_attention_layernorm.weight`, [d]],
      [`${p}mlp.gate_proj.weight`, [shape.intermediateSize, d]],
      [`${p}mlp.up_proj.weight`, [shape.intermediateSize, d]],
      [`${p}mlp.down_proj.weight`, [d, shape.intermediateSize]],
    );
  }
  tensors.push(['model.norm.weight', [d]], ['lm_head.weight', [shape.vocabSize, d]]);
  return tensors;
}

export function randomLlamaBytes(shape: RandomLlamaShape, dtype: RandomDtype = 'BF16'): number {
  return randomLlamaTensors(shape).reduce((n, [, s]) => n + s.reduce((a, b) => a * b, 1) * ELEMENT_BYTES[dtype], 0);
}

/** Free bytes on the file system holding `dir`. */
export function freeDiskBytes(dir: string): number {
  const stats = statfsSync(dir);
  return stats.bavail * stats.bsize;
}

/** Writes a random model into a new directory under `parent` (default the system's temporary directory) and returns its path. */
export function writeRandomLlama(shape: RandomLlamaShape, options: RandomLlamaOptions & { parent?: string } = {}): string {
  const dtype = options.dtype ?? 'BF16';
  const parent = options.parent ?? tmpdir();
  const total = randomLlamaBytes(shape, dtype);
  const free = freeDiskBytes(parent);
  if (free < total + 1024 ** 3) {
    throw new Error(`a random ${shape.numLayers}-layer model needs ${(total / 1e9).toFixed(1)} GB (+1 GB headroom) in ${parent}, which has ${(free / 1e9).toFixed(1)} GB free`);
  }
  const dir = join(parent, `${RANDOM_MODEL_PREFIX}${shape.numLayers}L-${process.pid}-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'owner.pid'), String(process.pid));
  try {
    writeShards(dir, shape, dtype, options, total);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return dir;
}

function writeShards(dir: string, shape: RandomLlamaShape, dtype: RandomDtype, options: RandomLlamaOptions, total: number): void {
  const maxShard = options.maxShardBytes ?? 2 * 1024 ** 3;
  const tensors = randomLlamaTensors(shape);
  const bytesOf = (s: number[]) => s.reduce((a, b) => a * b, 1) * ELEMENT_BYTES[dtype];
  const shards: [string, number[]][][] = [[]];
  let size = 0;
  for (const tensor of tensors) {
    const bytes = bytesOf(tensor[1]);
    if (size > 0 && size + bytes > maxShard) {
      shards.push([]);
      size = 0;
    }
    shards[shards.length - 1].push(tensor);
    size += bytes;
  }
  const random = xorshift(options.seed ?? 1);
  const table = normalTable(dtype, random);
  const weightMap: Record<string, string> = {};
  let written = 0;
  shards.forEach((shard, i) => {
    const file = `model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`;
    const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
    let offset = 0;
    for (const [name, s] of shard) {
      header[name] = { dtype, shape: s, data_offsets: [offset, offset + bytesOf(s)] };
      offset += bytesOf(s);
      weightMap[name] = file;
    }
    let json = JSON.stringify(header);
    json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
    const fd = openSync(join(dir, file), 'w');
    try {
      writeAll(fd, length);
      writeAll(fd, Buffer.from(json));
      for (const [name, s] of shard) {
        const count = s.reduce((a, b) => a * b, 1);
        const isNorm = s.length === 1;
        const chunk = 16 * 1024 * 1024;
        for (let done = 0; done < count; done += chunk) {
          const n = Math.min(chunk, count - done);
          writeAll(fd, isNorm ? ones(n, dtype) : sample(n, dtype, table, random));
        }
        written += bytesOf(s);
        options.onTensor?.(name, written, total);
      }
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  });
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2));
  const torchDtype = { BF16: 'bfloat16', F16: 'float16', F32: 'float32' }[dtype];
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify(
      {
        architectures: ['LlamaForCausalLM'],
        model_type: 'llama',
        hidden_size: shape.hiddenSize,
        intermediate_size: shape.intermediateSize,
        num_hidden_layers: shape.numLayers,
        num_attention_heads: shape.numAttentionHeads,
        num_key_value_heads: shape.numKeyValueHeads,
        vocab_size: shape.vocabSize,
        max_position_embeddings: shape.maxPositionEmbeddings,
        rms_norm_eps: 1e-5,
        rope_theta: 10000,
        hidden_act: 'silu',
        tie_word_embeddings: false,
        bos_token_id: 1,
        eos_token_id: 2,
        torch_dtype: torchDtype,
      },
      null,
      2,
    ),
  );
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.byteLength) done += writeSync(fd, bytes, done, bytes.byteLength - done);
}

function xorshift(seed: number): () => number {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

/** 65536 draws of N(0, 0.02²) in the target encoding; a weight is a table entry picked by 16 random bits. */
function normalTable(dtype: RandomDtype, random: () => number): Uint32Array {
  const table = new Uint32Array(65536);
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  for (let i = 0; i < table.length; i++) {
    const u1 = (random() + 1) / 4294967297;
    const u2 = random() / 4294967296;
    f32[0] = 0.02 * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    if (dtype === 'F32') table[i] = u32[0];
    else if (dtype === 'BF16') table[i] = (u32[0] + 0x7fff + ((u32[0] >>> 16) & 1)) >>> 16;
    else table[i] = toHalf(f32[0]);
  }
  return table;
}

function toHalf(value: number): number {
  // Values here are small normals: no overflow; tiny ones flush to zero.
  const sign = value < 0 ? 0x8000 : 0;
  const abs = Math.abs(value);
  if (abs < 6.1e-5) return sign;
  const exponent = Math.floor(Math.log2(abs));
  const mantissa = Math.round((abs / 2 ** exponent - 1) * 1024);
  return sign | ((exponent + 15) << 10) | Math.min(1023, mantissa);
}

function sample(n: number, dtype: RandomDtype, table: Uint32Array, random: () => number): Uint8Array {
  if (dtype === 'F32') {
    const out = new Uint32Array(n);
    for (let i = 0; i < n; i++) out[i] = table[random() & 0xffff];
    return new Uint8Array(out.buffer);
  }
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = random();
    out[i] = table[r & 0xffff];
    if (i + 1 < n) out[i + 1] = table[r >>> 16];
  }
  return new Uint8Array(out.buffer);
}

function ones(n: number, dtype: RandomDtype): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(new Float32Array(n).fill(1).buffer);
  return new Uint8Array(new Uint16Array(n).fill(dtype === 'BF16' ? 0x3f80 : 0x3c00).buffer);
}

export function removeRandomModel(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Removes random models under `parent` whose writing process is gone (a crashed or killed bench). */
export function cleanStaleRandomModels(parent = tmpdir()): string[] {
  if (!existsSync(parent)) return [];
  const removed: string[] = [];
  for (const name of readdirSync(parent)) {
    if (!name.startsWith(RANDOM_MODEL_PREFIX)) continue;
    const dir = join(parent, name);
    if (!statSync(dir).isDirectory()) continue;
    let pid = Number.NaN;
    try {
      pid = Number(readFileSync(join(dir, 'owner.pid'), 'utf8').trim());
    } catch {
      // no owner file: a half-created directory
    }
    if (Number.isInteger(pid) && pid !== process.pid && alive(pid)) continue;
    if (pid === process.pid) continue;
    rmSync(dir, { recursive: true, force: true });
    removed.push(dir);
  }
  return removed;
}


function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
