/**
 * safetensors: an 8-byte little-endian header length, a JSON header
 * `{name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?: {...}}`, then the raw data.
 *
 * Tensors are read one at a time with positioned reads straight into their own buffer, so a multi-GB
 * shard is never held whole, never turned into a string, and never copied twice.
 */
import { closeSync, fstatSync, openSync, readSync, renameSync, statSync, fsyncSync, unlinkSync } from 'node:fs';
import { writeFully } from './file-writes.js';
import { EngineError } from '../errors.js';
import { openRegularFile, readFully } from './file-reads.js';
import { BYTES_PER_ELEMENT, decodeToFloat32, encodeFromFloat32, isStorageDtype, type StorageDtype } from './dtype.js';
import { elementCount, type HostTensor } from './host-tensor.js';

/** A tensor's bytes in its stored dtype (little-endian), not yet widened. */
export interface RawTensor {
  readonly shape: readonly number[];
  readonly dtype: StorageDtype;
  readonly bytes: Uint8Array;
}

export interface SafetensorsEntry {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  /** Absolute byte offsets in the file. */
  readonly begin: number;
  readonly end: number;
}

/** The safetensors format's own limit on a header; the engine also applies it to all shards of a model together. */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export class SafetensorsFile {
  private constructor(
    readonly path: string,
    private readonly fd: number,
    readonly entries: ReadonlyMap<string, SafetensorsEntry>,
    readonly metadata: Readonly<Record<string, string>>,
    /** Length of the JSON header in bytes. */
    readonly headerBytes: number,
  ) {}

  /** `maxHeaderBytes` (default and at most 100 MB) refuses a longer header before reading it. */
  static open(path: string, maxHeaderBytes = MAX_HEADER_BYTES): SafetensorsFile {
    const fd = openRegularFile(path, 'safetensors file');
    try {
      const { entries, metadata, headerBytes } = readHeader(fd, path, Math.min(maxHeaderBytes, MAX_HEADER_BYTES));
      return new SafetensorsFile(path, fd, entries, metadata, headerBytes);
    } catch (error) {
      closeSync(fd);
      throw error;
    }
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  entry(name: string): SafetensorsEntry {
    const entry = this.entries.get(name);
    if (!entry) throw new EngineError('NOT_FOUND', `tensor ${name} is not in ${this.path}`);
    return entry;
  }

  /** Reads one tensor, widened to float32. */
  read(name: string): HostTensor {
    const { shape, dtype, bytes } = this.readRaw(name);
    return { shape, data: decodeToFloat32(bytes, dtype) };
  }

  /**
   * Reads one tensor's bytes in its stored dtype (narrow), with one positioned read — into `scratch` when it
   * is large enough (the bytes are then only valid until the next read into it).
   */
  readRaw(name: string, scratch?: Uint8Array): RawTensor {
    const entry = this.entry(name);
    if (!isStorageDtype(entry.dtype)) {
      throw new EngineError('UNSUPPORTED_MODEL', `tensor ${name} in ${this.path} has dtype ${entry.dtype}; supported: F32, F16, BF16`);
    }
    const length = entry.end - entry.begin;
    const into = scratch && scratch.byteLength >= length ? scratch.subarray(0, length) : undefined;
    return { shape: entry.shape, dtype: entry.dtype, bytes: this.readBytes(name, entry.begin, length, into) };
  }

  /**
   * Rows `rows` of a 2-D tensor ([rows.length, cols]) in its stored dtype: what an embedding lookup
   * needs, without reading the whole table. Each distinct row is one positioned read.
   */
  readRows(name: string, rows: ArrayLike<number>): RawTensor {
    const entry = this.entry(name);
    if (!isStorageDtype(entry.dtype) || entry.shape.length !== 2) {
      throw new EngineError('UNSUPPORTED_MODEL', `tensor ${name} in ${this.path}: row reads need a 2-D F32/F16/BF16 tensor, got ${entry.dtype} [${entry.shape.join(', ')}]`);
    }
    const [count, cols] = entry.shape;
    const rowBytes = cols * BYTES_PER_ELEMENT[entry.dtype];
    const out = new Uint8Array(rows.length * rowBytes);
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i];
      if (!(row >= 0 && row < count)) throw new EngineError('BAD_INPUT', `row ${row} of ${name} is outside [0, ${count})`);
      out.set(this.readBytes(name, entry.begin + row * rowBytes, rowBytes), i * rowBytes);
    }
    return { shape: [rows.length, cols], dtype: entry.dtype, bytes: out };
  }

  private readBytes(name: string, begin: number, length: number, into?: Uint8Array): Uint8Array {
    // Read into a buffer of its own, so that an F32 tensor's bytes become the Float32Array itself: one copy, from disk.
    const bytes = into ?? new Uint8Array(new ArrayBuffer(length));
    return readFully(this.fd, bytes, begin, this.path, `tensor ${name} needs bytes ${begin}..${begin + length}`);
  }

  close(): void {
    closeSync(this.fd);
  }
}

function readHeader(fd: number, path: string, maxHeaderBytes: number): { entries: Map<string, SafetensorsEntry>; metadata: Record<string, string>; headerBytes: number } {
  const fileSize = fstatSync(fd).size;
  if (fileSize < 8) throw new EngineError('CORRUPT_FILE', `${path} is not a safetensors file: ${fileSize} bytes, fewer than the 8-byte header length`);
  const lengthBytes = Buffer.alloc(8);
  readSync(fd, lengthBytes, 0, 8, 0);
  const headerLength = Number(lengthBytes.readBigUInt64LE(0));
  if (headerLength > maxHeaderBytes && 8 + headerLength <= fileSize) {
    throw new EngineError('CORRUPT_FILE', `${path}: its safetensors header of ${headerLength} bytes is more than the ${maxHeaderBytes} bytes left for the model's headers (at most ${MAX_HEADER_BYTES} in all)`);
  }
  if (headerLength > MAX_HEADER_BYTES || 8 + headerLength > fileSize) {
    throw new EngineError('CORRUPT_FILE', `${path} is not a valid safetensors file: header length ${headerLength} does not fit in a file of ${fileSize} bytes`);
  }
  const headerBytes = Buffer.alloc(headerLength);
  readSync(fd, headerBytes, 0, headerLength, 8);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(headerBytes.toString('utf8'));
  } catch {
    throw new EngineError('CORRUPT_FILE', `${path} has an unparsable safetensors header (not JSON)`); // the parser's message quotes the file
  }
  const dataStart = 8 + headerLength;
  const entries = new Map<string, SafetensorsEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = (value ?? {}) as Record<string, string>;
      continue;
    }
    const { dtype, shape, data_offsets: offsets } = (value ?? {}) as { dtype?: string; shape?: number[]; data_offsets?: number[] };
    if (typeof dtype !== 'string' || !Array.isArray(shape) || !Array.isArray(offsets) || offsets.length !== 2) {
      throw new EngineError('CORRUPT_FILE', `${path}: header entry ${name} lacks dtype, shape or data_offsets`);
    }
    const [begin, end] = offsets;
    if (!(begin >= 0 && end >= begin)) throw new EngineError('CORRUPT_FILE', `${path}: tensor ${name} has data_offsets [${begin}, ${end}]`);
    if (dataStart + end > fileSize) {
      throw new EngineError('CORRUPT_FILE', `${path} is truncated: tensor ${name} needs bytes up to ${dataStart + end} but the file has ${fileSize}`);
    }
    const elementBytes = isStorageDtype(dtype) ? BYTES_PER_ELEMENT[dtype] : null;
    if (elementBytes !== null && elementCount(shape) * elementBytes !== end - begin) {
      throw new EngineError(
        'CORRUPT_FILE',
        `${path}: tensor ${name} has shape [${shape.join(', ')}] (${elementCount(shape) * elementBytes} bytes of ${dtype}) but data_offsets span ${end - begin} bytes`,
      );
    }
    entries.set(name, { name, dtype, shape, begin: dataStart + begin, end: dataStart + end });
  }
  return { entries, metadata, headerBytes: headerLength };
}

export interface TensorToWrite {
  readonly name: string;
  readonly tensor: HostTensor;
}

/**
 * Writes tensors in `dtype`. The header is computed first from the shapes, then each tensor is narrowed and
 * written in turn, into `path.tmp-…`, renamed over `path` only when complete — a reader never sees half a file.
 */
export function writeSafetensors(
  path: string,
  tensors: readonly TensorToWrite[],
  dtype: StorageDtype,
  metadata: Record<string, string> = {},
): void {
  const byName = new Map(tensors.map(({ name, tensor }) => [name, tensor]));
  writeSafetensorsStreamed(
    path,
    tensors.map(({ name, tensor }) => ({ name, shape: tensor.shape, dtype })),
    (name) => encodeFromFloat32(byName.get(name)!.data, dtype),
    metadata,
  );
}

export interface TensorToStream {
  readonly name: string;
  readonly shape: readonly number[];
  readonly dtype: StorageDtype;
}

/**
 * Writes tensors whose bytes come one at a time from `bytesOf` (a tensor copied from a source shard in its
 * stored dtype, say): the header from the shapes first, then each tensor's bytes as they are read, so at
 * most one tensor is in memory. Into `path.tmp-…`, renamed over `path` when complete.
 */
export function writeSafetensorsStreamed(path: string, tensors: readonly TensorToStream[], bytesOf: (name: string) => Uint8Array, metadata: Record<string, string> = {}): void {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const { name, shape, dtype } of tensors) {
    const bytes = elementCount(shape) * BYTES_PER_ELEMENT[dtype];
    header[name] = { dtype, shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let headerJson = JSON.stringify(header);
  headerJson += ' '.repeat((8 - ((8 + Buffer.byteLength(headerJson)) % 8)) % 8);
  const headerBytes = Buffer.from(headerJson, 'utf8');
  const lengthBytes = Buffer.alloc(8);
  lengthBytes.writeBigUInt64LE(BigInt(headerBytes.length));
  const tmpPath = `${path}.tmp-${process.pid}-${Date.now()}`;
  const fd = openSync(tmpPath, 'w');
  try {
    writeFully(fd, lengthBytes);
    writeFully(fd, headerBytes);
    for (const { name, shape, dtype } of tensors) {
      const bytes = bytesOf(name);
      if (bytes.byteLength !== elementCount(shape) * BYTES_PER_ELEMENT[dtype]) throw new Error(`tensor ${name}: ${bytes.byteLength} bytes, expected ${elementCount(shape) * BYTES_PER_ELEMENT[dtype]}`);
      writeFully(fd, bytes);
    }
    fsyncSync(fd);
    closeSync(fd);
  } catch (error) {
    closeSync(fd);
    unlinkSync(tmpPath);
    throw error;
  }
  renameSync(tmpPath, path);
}

