/**
 * Writing GGUF v3 (the layout ./gguf.ts reads): header, metadata, tensor infos, then each tensor's data
 * at an offset aligned to 32 bytes. Tensors are written one at a time — `readTensor(name)` is called
 * once per tensor, its values encoded to the tensor's GGML type and written before the next is read — so
 * a model is never held whole in memory.
 *
 * Encodings, as ggml's reference code does them: F16 and BF16 round to nearest even (../formats/dtype.ts);
 * Q8_0 takes blocks of 32 values, d = max|x| / 127 stored as f16, q = roundf(x / d) as int8.
 */
import { closeSync, openSync, renameSync, rmSync } from 'node:fs';
import { writeFully } from './file-writes.js';
import { EngineError } from '../errors.js';
import { encodeFromFloat32, float32ToFloat16 } from './dtype.js';
import { GGUF_MAGIC, type GgufMetadataEntry, type GgufValue, type GgufValueType, GGUF_VALUE_TYPES } from './gguf.js';
import { GGML_TYPES, type GgmlType } from './gguf-quants.js';

/** The GGML types the writer encodes. */
export type GgufWriteType = 'F32' | 'F16' | 'BF16' | 'Q8_0';
export const GGUF_WRITE_TYPES: readonly GgufWriteType[] = ['F32', 'F16', 'BF16', 'Q8_0'];

export const GGUF_ALIGNMENT = 32;

export interface GgufTensorPlan {
  readonly name: string;
  /** Row-major (written as ne, reversed). */
  readonly shape: readonly number[];
  readonly type: GgufWriteType;
}

function typeNamed(name: GgufWriteType): GgmlType {
  return GGML_TYPES.find((t) => t.name === name)!;
}

/** Bytes a tensor of this shape takes in `type`. */
export function ggmlByteLength(shape: readonly number[], type: GgufWriteType): number {
  const t = typeNamed(type);
  const elements = shape.reduce((a, b) => a * b, 1);
  return (elements / t.blockSize) * t.blockBytes;
}

/** Q8_0 as ggml's quantize_row_q8_0_ref: per 32 values d = max|x| / 127 (f16), q = roundf(x · (1/d)). */
export function quantizeQ8_0(values: Float32Array): Uint8Array {
  if (values.length % 32 !== 0) throw new EngineError('BAD_INPUT', `Q8_0 needs a multiple of 32 values, got ${values.length}`);
  const blocks = values.length / 32;
  const out = new Uint8Array(blocks * 34);
  const view = new DataView(out.buffer);
  for (let b = 0; b < blocks; b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(values[32 * b + j]));
    const d = Math.fround(amax / 127);
    const id = d ? Math.fround(1 / d) : 0;
    view.setUint16(34 * b, float32ToFloat16(d), true);
    for (let j = 0; j < 32; j++) {
      const x = Math.fround(values[32 * b + j] * id);
      view.setInt8(34 * b + 2 + j, Math.sign(x) * Math.round(Math.abs(x))); // roundf: half away from zero
    }
  }
  return out;
}

/** float32 values encoded in a GGML type. */
export function encodeGgml(values: Float32Array, type: GgufWriteType): Uint8Array {
  return type === 'Q8_0' ? quantizeQ8_0(values) : encodeFromFloat32(values, type);
}

const TYPE_ID = new Map<GgufValueType, number>(GGUF_VALUE_TYPES.map((t, i) => [t, i]));
const FIXED: Partial<Record<GgufValueType, number>> = { UINT8: 1, INT8: 1, UINT16: 2, INT16: 2, UINT32: 4, INT32: 4, FLOAT32: 4, BOOL: 1, UINT64: 8, INT64: 8, FLOAT64: 8 };

/** Builds the header bytes in memory (metadata and tensor infos are small beside the tensors). */
class HeaderBuilder {
  private chunks: Buffer[] = [];
  length = 0;
  push(b: Buffer): void {
    this.chunks.push(b);
    this.length += b.length;
  }
  u32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v >>> 0);
    this.push(b);
  }
  u64(v: number | bigint): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.push(b);
  }
  string(s: string): void {
    const bytes = Buffer.from(s, 'utf8');
    this.u64(bytes.length);
    this.push(bytes);
  }
  scalar(type: GgufValueType, v: GgufValue, key: string): void {
    const size = FIXED[type];
    if (type === 'STRING') {
      if (typeof v !== 'string') throw badValue(key, type, v);
      return this.string(v);
    }
    if (size === undefined) throw badValue(key, type, v);
    const b = Buffer.alloc(size);
    switch (type) {
      case 'UINT8': b.writeUInt8(Number(v)); break;
      case 'INT8': b.writeInt8(Number(v)); break;
      case 'UINT16': b.writeUInt16LE(Number(v)); break;
      case 'INT16': b.writeInt16LE(Number(v)); break;
      case 'UINT32': b.writeUInt32LE(Number(v)); break;
      case 'INT32': b.writeInt32LE(Number(v)); break;
      case 'FLOAT32': b.writeFloatLE(Number(v)); break;
      case 'BOOL': b.writeUInt8(v ? 1 : 0); break;
      case 'UINT64': b.writeBigUInt64LE(BigInt(v as number | bigint)); break;
      case 'INT64': b.writeBigInt64LE(BigInt(v as number | bigint)); break;
      default: b.writeDoubleLE(Number(v));
    }
    this.push(b);
  }
  entry(key: string, entry: GgufMetadataEntry): void {
    this.string(key);
    this.u32(TYPE_ID.get(entry.type)!);
    if (entry.type !== 'ARRAY') return this.scalar(entry.type, entry.value, key);
    const itemType = entry.itemType;
    if (!itemType || itemType === 'ARRAY') throw badValue(key, 'ARRAY', entry.value);
    const items = entry.value as ArrayLike<GgufValue>;
    this.u32(TYPE_ID.get(itemType)!);
    this.u64(items.length);
    const size = FIXED[itemType];
    if (size !== undefined && ArrayBuffer.isView(items) && itemType !== 'BOOL') {
      // a typed array read by ./gguf.ts: its little-endian bytes as they are
      const view = items as unknown as ArrayBufferView;
      if (view.byteLength === items.length * size) return this.push(Buffer.from(view.buffer, view.byteOffset, view.byteLength));
    }
    for (let i = 0; i < items.length; i++) this.scalar(itemType, items[i], key);
  }
  bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

function badValue(key: string, type: string, value: unknown): EngineError {
  return new EngineError('BAD_INPUT', `GGUF metadata ${key}: cannot write ${typeof value} as ${type}`);
}

/**
 * Writes a GGUF v3 file: `metadata` in its order, then the tensors of `plan`, each read by `readTensor`
 * (float32, row-major, of the planned shape) only when its turn comes.
 */
export function writeGgufStreamed(
  path: string,
  metadata: Iterable<readonly [string, GgufMetadataEntry]>,
  plan: readonly GgufTensorPlan[],
  readTensor: (name: string) => Float32Array,
): void {
  const header = new HeaderBuilder();
  const entries = [...metadata];
  header.u32(GGUF_MAGIC);
  header.u32(3);
  header.u64(plan.length);
  header.u64(entries.length);
  for (const [key, entry] of entries) header.entry(key, entry);
  let offset = 0;
  const sizes: number[] = [];
  for (const tensor of plan) {
    const type = typeNamed(tensor.type);
    if (tensor.shape.length < 1 || tensor.shape.length > 4) throw new EngineError('BAD_INPUT', `GGUF tensor ${tensor.name}: ${tensor.shape.length} dimensions (1 to 4 allowed)`);
    if (tensor.shape[tensor.shape.length - 1] % type.blockSize !== 0) {
      throw new EngineError('BAD_INPUT', `GGUF tensor ${tensor.name}: ${tensor.type} blocks hold ${type.blockSize} values but its rows have ${tensor.shape[tensor.shape.length - 1]}`);
    }
    header.string(tensor.name);
    header.u32(tensor.shape.length);
    for (const n of [...tensor.shape].reverse()) header.u64(n);
    header.u32(type.id);
    header.u64(offset);
    const size = ggmlByteLength(tensor.shape, tensor.type);
    sizes.push(size);
    offset += Math.ceil(size / GGUF_ALIGNMENT) * GGUF_ALIGNMENT;
  }
  header.push(Buffer.alloc((GGUF_ALIGNMENT - (header.length % GGUF_ALIGNMENT)) % GGUF_ALIGNMENT));
  // into path.tmp-…, renamed over path only when complete: a reader never sees half a file
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  const fd = openSync(tmp, 'w');
  let done = false;
  try {
    writeFully(fd, header.bytes());
    plan.forEach((tensor, i) => {
      const values = readTensor(tensor.name);
      const expected = tensor.shape.reduce((a, b) => a * b, 1);
      if (values.length !== expected) throw new EngineError('BAD_INPUT', `GGUF tensor ${tensor.name}: ${values.length} values read for shape [${tensor.shape.join(', ')}]`);
      const bytes = encodeGgml(values, tensor.type);
      writeFully(fd, bytes);
      writeFully(fd, new Uint8Array((GGUF_ALIGNMENT - (sizes[i] % GGUF_ALIGNMENT)) % GGUF_ALIGNMENT));
    });
    done = true;
  } finally {
    closeSync(fd);
    if (done) renameSync(tmp, path);
    else rmSync(tmp, { force: true });
  }
}

