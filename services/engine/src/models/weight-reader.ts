/**
 * Reading a model's weights one tensor at a time, for the layer-streamed forward pass and the streamed
 * export: nothing is kept after it is returned. Safetensors shards are read with positioned reads straight
 * from disk in their stored dtype; a tensor is widened to float32 only when it is about to be computed
 * with (`readFloat32`), and an embedding lookup reads only the rows it needs (`readRows`).
 *
 * llama2.c checkpoints are read the same way, a layer's slice of each stacked tensor at a time (q/k rows
 * permuted to the Hugging Face layout as they are read); GGUF files a tensor at a time, dequantized as
 * they are read, the embedding row by row.
 */
import { EngineError } from '../errors.js';
import { BYTES_PER_ELEMENT, encodeFromFloat32, type StorageDtype } from '../formats/dtype.js';
import { checkFiniteWeights, elementCount, type HostTensor } from '../formats/host-tensor.js';
import { GgufWeights } from '../formats/gguf-model.js';
import { openRegularFile } from '../formats/file-reads.js';
import { llama2cTensorTable, readLlama2cHeader, readLlama2cTensor, type Llama2cHeader, type Llama2cTensor } from '../formats/llama2c-checkpoint.js';
import { closeSync } from 'node:fs';
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
   * tensor's element count) a reader that reads from disk writes there instead of allocating — the
   * streamed pass reuses one set of buffers for every layer; a reader that holds float32 already returns its own.
   */
  readFloat32(name: string, into?: Float32Array): HostTensor;
  /** True when readFloat32 reads into fresh memory (and so can use `into` instead). */
  readonly readsInto: boolean;
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
  if (info.format === 'llama2c') return new Llama2cWeightReader(info.path);
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

  readonly readsInto = true;

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
    const length = this.byteLength(name);
    if (this.dtype === 'F32') {
      // Straight into the caller's buffer: no allocation per tensor, nothing for the garbage collector.
      const target = into && into.byteLength === length ? new Uint8Array(into.buffer, into.byteOffset, length) : undefined;
      const { file, name: stored } = this.find(name);
      const raw = file.readRaw(stored, target);
      this.bytesRead += raw.bytes.byteLength;
      return widenChecked(name, raw);
    }
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

/** A llama2.c checkpoint (float32), one tensor slice at a time with positioned reads. */
class Llama2cWeightReader implements WeightReader {
  bytesRead = 0;
  readonly dtype = 'F32';
  readonly readsInto = false;
  private readonly header: Llama2cHeader;
  private readonly table: Map<string, Llama2cTensor>;
  private readonly fd: number;

  constructor(private readonly path: string) {
    this.header = readLlama2cHeader(path);
    this.table = llama2cTensorTable(this.header);
    this.fd = openRegularFile(path, 'llama2.c checkpoint');
  }

  private find(name: string): Llama2cTensor {
    const tensor = this.table.get(name);
    if (!tensor) throw new EngineError('CORRUPT_FILE', `the model has no tensor ${name}`);
    return tensor;
  }

  has(name: string): boolean {
    return this.table.has(name);
  }

  shape(name: string): readonly number[] {
    return this.find(name).shape;
  }

  byteLength(name: string): number {
    return 4 * elementCount(this.find(name).shape);
  }

  readFloat32(name: string): HostTensor {
    const tensor = readLlama2cTensor(this.fd, this.path, this.header, this.find(name));
    this.bytesRead += tensor.data.byteLength;
    return checkFiniteWeights(name, tensor);
  }

  readRows(name: string, rows: ArrayLike<number>): HostTensor {
    const { offset, shape } = this.find(name);
    const cols = shape[1];
    const out = new Float32Array(rows.length * cols);
    for (let i = 0; i < rows.length; i++) {
      const row = readLlama2cTensor(this.fd, this.path, this.header, { offset: offset + 4 * rows[i] * cols, shape: [cols] });
      out.set(row.data, i * cols);
    }
    this.bytesRead += out.byteLength;
    return checkFiniteWeights(name, { shape: [rows.length, cols], data: out });
  }

  readRaw(name: string): RawTensor {
    const { shape, data } = this.readFloat32(name);
    return { shape, dtype: 'F32', bytes: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
  }

  close(): void {
    closeSync(this.fd);
  }
}

/**
 * A GGUF file, one tensor at a time, dequantized to float32 as it is read (the embedding row by row);
 * `dtype` is the dtype its Hugging Face export is written in.
 */
class GgufWeightReader implements WeightReader {
  bytesRead = 0;
  readonly readsInto = false;
  private readonly gguf: GgufWeights;

  constructor(
    path: string,
    readonly dtype: StorageDtype,
  ) {
    this.gguf = GgufWeights.open(path);
  }

  has(name: string): boolean {
    return this.gguf.has(name);
  }

  shape(name: string): readonly number[] {
    return this.gguf.shape(name);
  }

  byteLength(name: string): number {
    return this.gguf.byteLength(name);
  }

  readFloat32(name: string): HostTensor {
    this.bytesRead += this.gguf.byteLength(name);
    return checkFiniteWeights(name, this.gguf.read(name));
  }

  readRows(name: string, rows: ArrayLike<number>): HostTensor {
    const tensor = this.gguf.readRows(name, rows);
    this.bytesRead += Math.round((this.gguf.byteLength(name) * rows.length) / this.gguf.shape(name)[0]);
    return checkFiniteWeights(name, tensor);
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
  readonly readsInto = false;

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

  get readsInto(): boolean {
    return this.base.readsInto;
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
    const bits = new Uint32Array(data.buffer, data.byteOffset, count);
    // As for BF16 below: an exponent of all ones (0x7f800000) plus 0x00800000 carries into the sign bit.
    let exponentAllOnes = 0;
    for (let i = 0; i < count; i++) exponentAllOnes |= (bits[i] & 0x7f800000) + 0x00800000;
    if (exponentAllOnes & 0x80000000) throw invalid();
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
