/**
 * Reading a model's weights one tensor at a time, for the layer-streamed forward pass and the streamed
 * export: nothing is kept after it is returned. Safetensors shards are read with positioned reads straight
 * from disk in their stored dtype; a tensor is widened to float32 only when it is about to be computed
 * with (`readFloat32`), and an embedding lookup reads only the rows it needs (`readRows`).
 *
 * A GGUF file is read one tensor at a time too, dequantized to float32 on read (an embedding lookup
 * dequantizes only its rows); its "stored dtype" is the one its export keeps (see gguf-model.ts).
 *
 * A llama2.c checkpoint is converted whole on open (its q/k rows are permuted to the Hugging Face layout);
 * such files are float32 models small enough for that (llama2.c's largest, 110M, is 0.4 GB).
 */
import { EngineError } from '../errors.js';
import { BYTES_PER_ELEMENT, encodeFromFloat32, type StorageDtype } from '../formats/dtype.js';
import { GgufWeights } from '../formats/gguf-model.js';
import { dequantize } from '../formats/gguf-quants.js';
import { checkFiniteWeights, elementCount, type HostTensor } from '../formats/host-tensor.js';
import { readLlama2cCheckpoint } from '../formats/llama2c-checkpoint.js';
import type { RawTensor } from '../formats/safetensors.js';
import { lookup, openSafetensors, type ModelInfo } from './model.js';
import { expectedWeightShapes } from './weight-shapes.js';

export interface WeightReader {
  /** The dtype tensors are stored in. */
  readonly dtype: StorageDtype;
  has(name: string): boolean;
  shape(name: string): readonly number[];
  /** Bytes of the stored tensor (its size on disk). */
  byteLength(name: string): number;
  /**
   * One tensor widened to float32, checked finite (INVALID_WEIGHTS otherwise). With `into` (of the
   * tensor's element count) a reader that widens writes there instead of allocating — the streamed pass
   * reuses one set of buffers for every layer; a reader that holds float32 already returns its own.
   */
  readFloat32(name: string, into?: Float32Array): HostTensor;
  /** True when readFloat32 widens (and so can use `into`). */
  readonly widens: boolean;
  /** Rows of a 2-D tensor, widened to float32: [rows.length, cols]. */
  readRows(name: string, rows: ArrayLike<number>): HostTensor;
  /** One tensor in its stored dtype, for copying it as it is (export). */
  readRaw(name: string): RawTensor;
  /** Bytes read from disk so far (for progress reports). */
  readonly bytesRead: number;
  close(): void;
}

/** Opens the model's weights for reading on demand. */
export function openWeightReader(info: ModelInfo): WeightReader {
  if (info.format === 'llama2c') return new MemoryWeightReader(readLlama2cCheckpoint(info.path).weights, 'F32');
  const reader = info.format === 'gguf' ? new GgufWeightReader(info.path, info.config.dtype) : new ShardedWeightReader(info.path, info.config.dtype);
  try {
    // Every tensor the config implies is there with its shape: checked from the headers, before any pass.
    for (const [name, shape] of expectedWeightShapes(info.family, info.config)) {
      if (!reader.has(name)) throw new EngineError('CORRUPT_FILE', `${info.path}: missing tensor ${name} (expected shape [${shape.join(', ')}])`);
      const stored = reader.shape(name);
      if (stored.join() !== shape.join()) {
        throw new EngineError('CORRUPT_FILE', `${info.path}: tensor ${name} has shape [${stored.join(', ')}] but config.json implies [${shape.join(', ')}]`);
      }
    }
  } catch (error) {
    reader.close();
    throw error;
  }
  return reader;
}

class ShardedWeightReader implements WeightReader {
  bytesRead = 0;
  private readonly shards;
  /** The narrow bytes of the tensor being widened, reused from one tensor to the next. */
  private scratch = new Uint8Array(0);

  get widens(): boolean {
    return this.dtype !== 'F32';
  }

  constructor(
    dir: string,
    readonly dtype: StorageDtype,
  ) {
    this.shards = openSafetensors(dir);
  }

  private find(name: string) {
    const found = lookup(this.shards.files, name);
    if (!found) throw new EngineError('CORRUPT_FILE', `the model has no tensor ${name}`);
    return found;
  }

  has(name: string): boolean {
    return lookup(this.shards.files, name) !== null;
  }

  shape(name: string): readonly number[] {
    const { file, name: stored } = this.find(name);
    return file.entry(stored).shape;
  }

  byteLength(name: string): number {
    const { file, name: stored } = this.find(name);
    const entry = file.entry(stored);
    return entry.end - entry.begin;
  }

  readRaw(name: string): RawTensor {
    const { file, name: stored } = this.find(name);
    const raw = file.readRaw(stored);
    this.bytesRead += raw.bytes.byteLength;
    return raw;
  }

  readFloat32(name: string, into?: Float32Array): HostTensor {
    if (!this.widens) return widenChecked(name, this.readRaw(name));
    const length = this.byteLength(name);
    if (this.scratch.byteLength < length) this.scratch = new Uint8Array(length);
    const { file, name: stored } = this.find(name);
    const raw = file.readRaw(stored, this.scratch);
    this.bytesRead += raw.bytes.byteLength;
    return widenChecked(name, raw, into);
  }

  readRows(name: string, rows: ArrayLike<number>): HostTensor {
    const { file, name: stored } = this.find(name);
    const raw = file.readRows(stored, rows);
    this.bytesRead += raw.bytes.byteLength;
    return widenChecked(name, raw);
  }

  close(): void {
    this.shards.close();
  }
}

/** A GGUF model's tensors by their Hugging Face names, dequantized when read (gguf-model.ts maps the names). */
class GgufWeightReader implements WeightReader {
  bytesRead = 0;
  readonly widens = true;
  private readonly gguf: GgufWeights;
  private readonly names: ReadonlySet<string>;

  constructor(
    path: string,
    /** What the export writes: F16/BF16 for an all-F16/BF16 file, else F32 (GgufWeights' description). */
    readonly dtype: StorageDtype,
  ) {
    this.gguf = GgufWeights.open(path);
    this.names = new Set(this.gguf.names());
  }

  has(name: string): boolean {
    return this.names.has(name);
  }

  shape(name: string): readonly number[] {
    return this.gguf.shape(name);
  }

  byteLength(name: string): number {
    return this.gguf.storedBytes(name);
  }

  readFloat32(name: string, into?: Float32Array): HostTensor {
    const stored = this.gguf.readStored(name);
    this.bytesRead += stored.bytes.byteLength;
    const count = elementCount(stored.shape);
    const data = dequantize(stored.type, stored.bytes, count, `tensor ${name} of ${this.gguf.path}`);
    if (into && into.length === count) into.set(data);
    return checkFiniteWeights(name, { shape: stored.shape, data: into && into.length === count ? into : data });
  }

  readRows(name: string, rows: ArrayLike<number>): HostTensor {
    const { shape, type, bytes } = this.gguf.readStored(name);
    this.bytesRead += bytes.byteLength;
    const cols = shape[1];
    const rowBytes = (cols / type.blockSize) * type.blockBytes; // GGUF rows are whole blocks
    const out = new Float32Array(rows.length * cols);
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i];
      out.set(dequantize(type, bytes.subarray(row * rowBytes, (row + 1) * rowBytes), cols, `row ${row} of tensor ${name} of ${this.gguf.path}`), i * cols);
    }
    return checkFiniteWeights(name, { shape: [rows.length, cols], data: out });
  }

  readRaw(name: string): RawTensor {
    const { shape, data } = this.readFloat32(name);
    return { shape, dtype: this.dtype, bytes: encodeFromFloat32(data, this.dtype) };
  }

  close(): void {
    this.gguf.close();
  }
}

/** Weights already in memory (a small model, a test, a replacement just trained). */
export class MemoryWeightReader implements WeightReader {
  readonly bytesRead = 0;
  readonly widens = false;

  constructor(
    private readonly weights: ReadonlyMap<string, HostTensor>,
    readonly dtype: StorageDtype,
  ) {}

  private get(name: string): HostTensor {
    const tensor = this.weights.get(name);
    if (!tensor) throw new EngineError('CORRUPT_FILE', `the model has no tensor ${name}`);
    return tensor;
  }

  has(name: string): boolean {
    return this.weights.has(name);
  }

  shape(name: string): readonly number[] {
    return this.get(name).shape;
  }

  byteLength(name: string): number {
    return elementCount(this.get(name).shape) * BYTES_PER_ELEMENT[this.dtype];
  }

  readFloat32(name: string): HostTensor {
    return this.get(name);
  }

  readRows(name: string, rows: ArrayLike<number>): HostTensor {
    const { shape, data } = this.get(name);
    const cols = shape[1];
    const out = new Float32Array(rows.length * cols);
    for (let i = 0; i < rows.length; i++) out.set(data.subarray(rows[i] * cols, (rows[i] + 1) * cols), i * cols);
    return { shape: [rows.length, cols], data: out };
  }

  readRaw(name: string): RawTensor {
    const { shape, data } = this.get(name);
    return { shape, dtype: this.dtype, bytes: encodeFromFloat32(data, this.dtype) };
  }

  close(): void {}
}

/**
 * A view of another reader under new names (a pruned model's renumbered layers), with some tensors
 * supplied from memory instead (a replacement layer). `source(name)` is the name in the base reader, or
 * null when the tensor is not there.
 */
export class RenamedWeightReader implements WeightReader {
  constructor(
    private readonly base: WeightReader,
    private readonly source: (name: string) => string | null,
    private readonly overlay: ReadonlyMap<string, HostTensor> = new Map(),
  ) {}

  get dtype(): StorageDtype {
    return this.base.dtype;
  }

  get bytesRead(): number {
    return this.base.bytesRead;
  }

  get widens(): boolean {
    return this.base.widens;
  }

  private sourceName(name: string): string {
    const mapped = this.source(name);
    if (mapped === null) throw new EngineError('CORRUPT_FILE', `the model has no tensor ${name}`);
    return mapped;
  }

  has(name: string): boolean {
    if (this.overlay.has(name)) return true;
    const mapped = this.source(name);
    return mapped !== null && this.base.has(mapped);
  }

  shape(name: string): readonly number[] {
    return this.overlay.get(name)?.shape ?? this.base.shape(this.sourceName(name));
  }

  byteLength(name: string): number {
    const own = this.overlay.get(name);
    return own ? elementCount(own.shape) * BYTES_PER_ELEMENT[this.dtype] : this.base.byteLength(this.sourceName(name));
  }

  readFloat32(name: string, into?: Float32Array): HostTensor {
    return this.overlay.get(name) ?? this.base.readFloat32(this.sourceName(name), into);
  }

  readRows(name: string, rows: ArrayLike<number>): HostTensor {
    const own = this.overlay.get(name);
    return own ? new MemoryWeightReader(this.overlay, this.dtype).readRows(name, rows) : this.base.readRows(this.sourceName(name), rows);
  }

  readRaw(name: string): RawTensor {
    const own = this.overlay.get(name);
    return own ? { shape: own.shape, dtype: this.dtype, bytes: encodeFromFloat32(own.data, this.dtype) } : this.base.readRaw(this.sourceName(name));
  }

  /** The base reader stays open: its owner closes it. */
  close(): void {}
}

/**
 * Widens stored bytes to float32, refusing NaN and infinities on the way (an exponent of all ones) —
 * one pass over the narrow data, no second scan of the wide copy.
 */
export function widenChecked(name: string, raw: RawTensor, into?: Float32Array): HostTensor {
  const { bytes, dtype, shape } = raw;
  const count = bytes.byteLength / BYTES_PER_ELEMENT[dtype];
  const out = () => (into && into.length === count ? into : new Float32Array(count));
  const invalid = () => new EngineError('INVALID_WEIGHTS', `tensor ${name} holds NaN/infinite values`);
  if (dtype === 'F32') {
    const data = bytes.byteOffset % 4 === 0 ? new Float32Array(bytes.buffer, bytes.byteOffset, count) : new Float32Array(bytes.slice().buffer);
    for (let i = 0; i < count; i++) if (data[i] - data[i] !== 0) throw invalid();
    return { shape, data };
  }
  const narrow = bytes.byteOffset % 2 === 0 ? new Uint16Array(bytes.buffer, bytes.byteOffset, count) : new Uint16Array(bytes.slice().buffer);
  const data = out();
  if (dtype === 'BF16') {
    const bits = new Uint32Array(data.buffer, data.byteOffset, count);
    // An exponent of all ones (0x7f80) plus 0x80 sets bit 15; any other exponent stays below it.
    let exponentAllOnes = 0;
    for (let i = 0; i < count; i++) {
      const value = narrow[i];
      exponentAllOnes |= (value & 0x7f80) + 0x80;
      bits[i] = value << 16;
    }
    if (exponentAllOnes & 0x8000) throw invalid();
    return { shape, data };
  }
  for (let i = 0; i < count; i++) {
    const value = narrow[i];
    if ((value & 0x7c00) === 0x7c00) throw invalid();
    data[i] = HALF_TABLE[value];
  }
  return { shape, data };
}

/** float16 bit pattern → float32 value, all 65536 of them (256 KiB, built once). */
const HALF_TABLE = (() => {
  const table = new Float32Array(65536);
  for (let bits = 0; bits < 65536; bits++) {
    const sign = bits & 0x8000 ? -1 : 1;
    const exponent = (bits >> 10) & 0x1f;
    const fraction = bits & 0x3ff;
    table[bits] = exponent === 0 ? sign * fraction * 2 ** -24 : exponent === 0x1f ? (fraction ? NaN : sign * Infinity) : sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
  }
  return table;
})();
