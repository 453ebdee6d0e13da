/**
 * GGUF (llama.cpp's model container, versions 2 and 3; https://github.com/ggml-org/ggml/blob/master/docs/gguf.md):
 *
 *   magic "GGUF", u32 version, u64 tensor_count, u64 metadata_kv_count,
 *   metadata: (string key, u32 value type, value)*, tensor infos: (string name, u32 n_dims, u64 ne[n_dims],
 *   u32 ggml type, u64 offset)*, padding to `general.alignment` (default 32), then the tensor data.
 *
 * Strings are a u64 byte length and UTF-8 bytes. `ne[0]` is the innermost dimension, so a tensor's
 * row-major shape is `ne` reversed: a linear weight [out, in], as Hugging Face keeps it.
 *
 * Reading is safe on hostile files: the header is read in bounded chunks (at most `maxHeaderBytes`,
 * default 64 MiB — a 128k-token vocabulary with its merges takes a few MB), at most 65,536 tensors and
 * 65,536 metadata keys, arrays of numbers as typed arrays, at most 2,097,152 strings in an array, no
 * arrays of arrays, every count and length is
 * checked against the bytes left before anything is allocated from it, and every tensor's extent against
 * the file. Errors name the offending field and value, never other content of the file. Opening reads only
 * the header; tensors are read one at a time, on demand, with positioned reads (`readRaw`, `read`).
 *
 * Not @huggingface/gguf: its parser is asynchronous (built on fetch, for remote files), while the engine's
 * inspection is synchronous and runs in the gateway's inspection thread; and it does not bound counts and
 * lengths the way the engine's readers must.
 */
import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { EngineError } from '../errors.js';
import { openRegularFile, readFully } from './file-reads.js';
import { dequantize, ggmlType, type GgmlType } from './gguf-quants.js';
import type { HostTensor } from './host-tensor.js';

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const MAX_GGUF_HEADER_BYTES = 64 * 1024 * 1024;
const DEFAULT_ALIGNMENT = 32;
/** ggml's GGML_MAX_DIMS. */
const MAX_DIMS = 4;
/**
 * Arrays of arrays are allowed by the format but written by no converter (llama.cpp's own reader refuses
 * them), and millions of empty inner arrays would each be an object: refused.
 */
const MAX_ARRAY_DEPTH = 1;
/** Strings in one array: a vocabulary's tokens or merges (a 262k vocabulary, a few 100k merges); each string is an object. */
export const MAX_GGUF_STRING_ARRAY = 2_097_152;
const READ_CHUNK = 1 << 20;
/** The format's limit on a key; tensor names are far shorter (ggml's GGML_MAX_NAME is 64). */
const MAX_KEY_BYTES = 65535;
const MAX_TENSOR_NAME_BYTES = 255;
/**
 * Real files have tens of metadata keys and at most a few thousand tensors (Llama-3.1-405B: 1,138); a
 * header of millions of tiny entries would take seconds and gigabytes to hold, so both counts are capped.
 */
export const MAX_GGUF_TENSORS = 65_536;
export const MAX_GGUF_METADATA_KEYS = 65_536;

/** GGUF metadata value types (gguf_type). */
export const GGUF_VALUE_TYPES = ['UINT8', 'INT8', 'UINT16', 'INT16', 'UINT32', 'INT32', 'FLOAT32', 'BOOL', 'STRING', 'ARRAY', 'UINT64', 'INT64', 'FLOAT64'] as const;
export type GgufValueType = (typeof GGUF_VALUE_TYPES)[number];
const FIXED_SIZE: Partial<Record<GgufValueType, number>> = { UINT8: 1, INT8: 1, UINT16: 2, INT16: 2, UINT32: 4, INT32: 4, FLOAT32: 4, BOOL: 1, UINT64: 8, INT64: 8, FLOAT64: 8 };

/** An array of fixed-size numbers, read in one copy (BOOL arrays as 0/1 bytes). */
export type GgufNumericArray = Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array | Float32Array | Float64Array | BigUint64Array | BigInt64Array;

/**
 * A metadata value: 64-bit integers beyond 2^53 stay bigint; arrays of numbers are typed arrays (a
 * 64 MiB header of one-byte numbers would otherwise become 64 million boxed JavaScript values); arrays
 * of strings and of arrays are plain arrays.
 */
export type GgufValue = number | bigint | boolean | string | GgufNumericArray | GgufValue[];

const TYPED_ARRAY: Partial<Record<GgufValueType, new (length: number) => GgufNumericArray>> = {
  UINT8: Uint8Array,
  INT8: Int8Array,
  UINT16: Uint16Array,
  INT16: Int16Array,
  UINT32: Uint32Array,
  INT32: Int32Array,
  FLOAT32: Float32Array,
  BOOL: Uint8Array,
  UINT64: BigUint64Array,
  INT64: BigInt64Array,
  FLOAT64: Float64Array,
};

export interface GgufMetadataEntry {
  readonly type: GgufValueType;
  /** For arrays: the element type. */
  readonly itemType?: GgufValueType;
  readonly value: GgufValue;
}

export interface GgufTensorInfo {
  readonly name: string;
  /** Row-major (ne reversed). */
  readonly shape: readonly number[];
  readonly type: GgmlType;
  readonly elements: number;
  readonly bytes: number;
  /** Absolute offset in the file. */
  readonly begin: number;
}

export interface GgufOpenOptions {
  readonly maxHeaderBytes?: number;
  /**
   * The whole file's size when the local file holds only its first bytes (a remote file's header,
   * fetched by ranged reads): extents are checked against it, and needing a byte past the local ones is
   * a GgufHeaderEndedError, so a header that opens was read from real bytes only.
   */
  readonly size?: number;
}

/**
 * The local bytes ended inside the header: CORRUPT_FILE for a whole file; for the first bytes of a remote
 * one (GgufOpenOptions.size), the sign to fetch more.
 */
export class GgufHeaderEndedError extends EngineError {
  constructor(message: string) {
    super('CORRUPT_FILE', message);
  }
}

/** A bounded, chunked reader of the header bytes. */
class HeaderCursor {
  private buffer = Buffer.alloc(0);
  private bufferStart = 0;
  position = 0;

  constructor(
    private readonly fd: number,
    readonly path: string,
    readonly fileSize: number,
    readonly limit: number,
  ) {}

  /** Bytes the header may still take. */
  get remaining(): number {
    return Math.min(this.limit, this.fileSize) - this.position;
  }

  corrupt(what: string): EngineError {
    return new EngineError('CORRUPT_FILE', `${this.path} is not a valid GGUF file: ${what}`);
  }

  private take(length: number, what: string): number {
    if (length > this.remaining) {
      if (this.position + length > this.fileSize) throw this.corrupt(`${what} at byte ${this.position} runs past the end of the file (${this.fileSize} bytes)`);
      throw this.corrupt(`${what} at byte ${this.position} ends beyond the ${this.limit} bytes accepted for a GGUF header`);
    }
    const end = this.position + length;
    if (end > this.bufferStart + this.buffer.length) {
      // keep what is not yet consumed, read at least a chunk more (never past the limit or the file)
      const keep = this.buffer.subarray(this.position - this.bufferStart);
      const want = Math.min(Math.max(length, READ_CHUNK), Math.min(this.limit, this.fileSize) - this.position);
      const next = Buffer.alloc(want);
      keep.copy(next, 0);
      let filled = keep.length;
      while (filled < want) {
        const n = readSync(this.fd, next, filled, want - filled, this.position + filled);
        if (n === 0) break; // the local bytes end before `fileSize` (see GgufOpenOptions.size)
        filled += n;
      }
      if (filled < length) throw new GgufHeaderEndedError(this.corrupt(`the file ended while reading ${what}`).message);
      this.buffer = filled === want ? next : next.subarray(0, filled);
      this.bufferStart = this.position;
    }
    const at = this.position - this.bufferStart;
    this.position = end;
    return at;
  }

  u8(what: string): number {
    const at = this.take(1, what); // (take() may replace the buffer: call it before reading this.buffer)
    return this.buffer.readUInt8(at);
  }
  u32(what: string): number {
    const at = this.take(4, what);
    return this.buffer.readUInt32LE(at);
  }
  /** A u64 as a number; a value beyond 2^53 is refused with `what`. */
  u64(what: string): number {
    const at = this.take(8, what);
    const value = this.buffer.readBigUInt64LE(at);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw this.corrupt(`${what} is ${value}, beyond any size this reader accepts`);
    return Number(value);
  }

  string(what: string, maxBytes = Infinity): string {
    const length = this.u64(`the length of ${what}`);
    if (length > maxBytes) throw this.corrupt(`${what} is ${length} bytes long, more than the ${maxBytes} accepted`);
    if (length > this.remaining) throw this.corrupt(`${what} claims ${length} bytes, more than the ${this.remaining} left in the header`);
    const at = this.take(length, what);
    return this.buffer.toString('utf8', at, at + length);
  }

  value(type: GgufValueType, what: string, depth: number): GgufValue {
    const size = FIXED_SIZE[type];
    if (size !== undefined) {
      const at = this.take(size, what);
      const b = this.buffer;
      switch (type) {
        case 'UINT8':
          return b.readUInt8(at);
        case 'INT8':
          return b.readInt8(at);
        case 'UINT16':
          return b.readUInt16LE(at);
        case 'INT16':
          return b.readInt16LE(at);
        case 'UINT32':
          return b.readUInt32LE(at);
        case 'INT32':
          return b.readInt32LE(at);
        case 'FLOAT32':
          return b.readFloatLE(at);
        case 'BOOL': {
          const byte = b.readUInt8(at);
          if (byte > 1) throw this.corrupt(`${what} is a bool holding ${byte}`);
          return byte === 1;
        }
        case 'UINT64':
          return narrow(b.readBigUInt64LE(at));
        case 'INT64':
          return narrow(b.readBigInt64LE(at));
        default:
          return b.readDoubleLE(at);
      }
    }
    if (type === 'STRING') return this.string(what);
    // ARRAY: element type, u64 count, elements
    if (depth >= MAX_ARRAY_DEPTH) throw this.corrupt(`${what} is an array of arrays, which is not accepted`);
    const itemType = this.valueType(`the element type of ${what}`);
    const count = this.u64(`the element count of ${what}`);
    if (itemType === 'STRING' && count > MAX_GGUF_STRING_ARRAY) throw this.corrupt(`${what} holds ${count} strings, more than the ${MAX_GGUF_STRING_ARRAY} accepted in one array`);
    const minItemBytes = FIXED_SIZE[itemType] ?? (itemType === 'STRING' ? 8 : 12);
    if (count * minItemBytes > this.remaining) {
      throw this.corrupt(`${what} claims ${count} elements of ${itemType}, more than the ${this.remaining} bytes left in the header can hold`);
    }
    const Typed = TYPED_ARRAY[itemType];
    if (Typed) {
      // one copy of the little-endian bytes (the platforms Node runs on are little-endian)
      const bytes = count * minItemBytes;
      const at = this.take(bytes, what);
      const array = new Typed(count);
      new Uint8Array(array.buffer).set(this.buffer.subarray(at, at + bytes));
      if (itemType === 'BOOL' && (array as Uint8Array).some((b) => b > 1)) throw this.corrupt(`${what} is an array of bools holding a value other than 0 and 1`);
      return array;
    }
    const items: GgufValue[] = new Array(count);
    for (let i = 0; i < count; i++) items[i] = this.value(itemType, what, depth + 1);
    return items;
  }

  valueType(what: string): GgufValueType {
    const id = this.u32(what);
    const type = GGUF_VALUE_TYPES[id];
    if (type === undefined) throw this.corrupt(`${what} is ${id}; GGUF value types are 0 to ${GGUF_VALUE_TYPES.length - 1}`);
    return type;
  }
}

/** A key or name for an error message: JSON-quoted, cut at 80 characters (a key may be 64 KiB). */
function quote(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);
}

function narrow(value: bigint): number | bigint {
  return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(value) : value;
}

export class GgufFile {
  private constructor(
    readonly path: string,
    private readonly fd: number,
    readonly version: number,
    readonly metadata: ReadonlyMap<string, GgufMetadataEntry>,
    readonly tensors: ReadonlyMap<string, GgufTensorInfo>,
    /** Bytes of the header (metadata and tensor infos, before the alignment padding). */
    readonly headerBytes: number,
    readonly dataStart: number,
  ) {}

  /** True when the file starts with the GGUF magic (false for a missing or short file). */
  static isGguf(path: string): boolean {
    let fd: number | undefined;
    try {
      if (!statSync(path).isFile()) return false;
      fd = openSync(path, 'r');
      const magic = Buffer.alloc(4);
      return readSync(fd, magic, 0, 4, 0) === 4 && magic.readUInt32LE(0) === GGUF_MAGIC;
    } catch {
      return false;
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }

  /** Opens a GGUF file and parses its header; no tensor data is read. */
  static open(path: string, options: GgufOpenOptions = {}): GgufFile {
    const fd = openRegularFile(path, 'GGUF file');
    try {
      const limit = Math.min(options.maxHeaderBytes ?? MAX_GGUF_HEADER_BYTES, MAX_GGUF_HEADER_BYTES);
      const cursor = new HeaderCursor(fd, path, options.size ?? fstatSync(fd).size, limit);
      const { version, metadata, tensors, dataStart } = readHeader(cursor);
      return new GgufFile(path, fd, version, metadata, tensors, cursor.position, dataStart);
    } catch (error) {
      closeSync(fd);
      throw error;
    }
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  tensor(name: string): GgufTensorInfo {
    const info = this.tensors.get(name);
    if (!info) throw new EngineError('NOT_FOUND', `tensor ${name} is not in ${this.path}`);
    return info;
  }

  /** A metadata value, or undefined when the key is absent. */
  get(key: string): GgufValue | undefined {
    return this.metadata.get(key)?.value;
  }

  /** The tensor's stored bytes (its GGML type's blocks), read with positioned reads. */
  readRaw(name: string): Uint8Array {
    return this.readRange(name, 0, this.tensor(name).bytes);
  }

  /** `length` stored bytes of the tensor from byte `start` of its data (whole rows of blocks, say). */
  readRange(name: string, start: number, length: number): Uint8Array {
    const info = this.tensor(name);
    if (start < 0 || start + length > info.bytes) throw new EngineError('BAD_INPUT', `bytes ${start}..${start + length} are outside tensor ${name} (${info.bytes} bytes)`);
    const bytes = new Uint8Array(new ArrayBuffer(length));
    return readFully(this.fd, bytes, info.begin + start, this.path, `tensor ${name} ends at byte ${info.begin + info.bytes}`);
  }

  /** One tensor dequantized to float32, row-major (UNSUPPORTED_MODEL, naming the type, for a type the engine cannot read). */
  read(name: string): HostTensor {
    const info = this.tensor(name);
    const what = `tensor ${name} of ${this.path}`;
    return { shape: info.shape, data: dequantize(info.type, this.readRaw(name), info.elements, what) };
  }

  close(): void {
    closeSync(this.fd);
  }
}

function readHeader(cursor: HeaderCursor): { version: number; metadata: Map<string, GgufMetadataEntry>; tensors: Map<string, GgufTensorInfo>; dataStart: number } {
  if (cursor.fileSize < 24) throw cursor.corrupt(`the file is ${cursor.fileSize} bytes, shorter than the 24-byte GGUF preamble`);
  const magic = cursor.u32('the magic');
  if (magic !== GGUF_MAGIC) throw cursor.corrupt('it does not start with the magic "GGUF"');
  const version = cursor.u32('the version');
  if (version !== 2 && version !== 3) {
    throw new EngineError('UNSUPPORTED_MODEL', `${cursor.path} is GGUF version ${version}; the engine reads versions 2 and 3`);
  }
  const tensorCount = cursor.u64('tensor_count');
  const kvCount = cursor.u64('metadata_kv_count');
  if (kvCount > MAX_GGUF_METADATA_KEYS) throw cursor.corrupt(`metadata_kv_count ${kvCount} is more than the ${MAX_GGUF_METADATA_KEYS} metadata keys accepted`);
  if (tensorCount > MAX_GGUF_TENSORS) throw cursor.corrupt(`tensor_count ${tensorCount} is more than the ${MAX_GGUF_TENSORS} tensors accepted`);
  // the smallest metadata entry is 8 (key length) + 4 (type) + 1 bytes; the smallest tensor info 8 + 4 + 8 + 4 + 8
  if (kvCount * 13 > cursor.remaining) throw cursor.corrupt(`metadata_kv_count ${kvCount} cannot fit in the ${cursor.remaining} bytes left for the header`);
  if (tensorCount * 32 > cursor.remaining) throw cursor.corrupt(`tensor_count ${tensorCount} cannot fit in the ${cursor.remaining} bytes left for the header`);

  const metadata = new Map<string, GgufMetadataEntry>();
  for (let i = 0; i < kvCount; i++) {
    const key = cursor.string(`metadata key ${i}`, MAX_KEY_BYTES);
    if (metadata.has(key)) throw cursor.corrupt(`metadata key ${quote(key)} appears twice`);
    const type = cursor.valueType(`the value type of metadata ${quote(key)}`);
    if (type === 'ARRAY') {
      const start = cursor.position;
      const itemType = cursor.valueType(`the element type of metadata ${quote(key)}`);
      cursor.position = start; // value() reads the element type again
      metadata.set(key, { type, itemType, value: cursor.value(type, `metadata ${quote(key)}`, 0) });
    } else {
      metadata.set(key, { type, value: cursor.value(type, `metadata ${quote(key)}`, 0) });
    }
  }

  const alignmentEntry = metadata.get('general.alignment');
  let alignment = DEFAULT_ALIGNMENT;
  if (alignmentEntry !== undefined) {
    const value = alignmentEntry.value;
    if (alignmentEntry.type !== 'UINT32' || typeof value !== 'number' || value === 0 || (value & (value - 1)) !== 0 || value > 1 << 20) {
      throw cursor.corrupt(`general.alignment must be a UINT32 power of two up to ${1 << 20}, got ${alignmentEntry.type} ${String(value)}`);
    }
    alignment = value;
  }

  const infos: { name: string; ne: number[]; type: GgmlType; offset: number }[] = [];
  const names = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    const name = cursor.string(`the name of tensor ${i}`, MAX_TENSOR_NAME_BYTES);
    if (names.has(name)) throw cursor.corrupt(`tensor ${quote(name)} appears twice`);
    names.add(name);
    const nDims = cursor.u32(`n_dims of tensor ${quote(name)}`);
    if (nDims < 1 || nDims > MAX_DIMS) throw cursor.corrupt(`tensor ${quote(name)} has n_dims ${nDims}, outside 1 to ${MAX_DIMS}`);
    const ne: number[] = [];
    for (let d = 0; d < nDims; d++) ne.push(cursor.u64(`dimension ${d} of tensor ${quote(name)}`));
    const typeId = cursor.u32(`the type of tensor ${quote(name)}`);
    const type = ggmlType(typeId);
    if (!type) throw cursor.corrupt(`tensor ${quote(name)} has type id ${typeId}, which is no GGML type`);
    const offset = cursor.u64(`the data offset of tensor ${quote(name)}`);
    infos.push({ name, ne, type, offset });
  }

  const dataStart = Math.ceil(cursor.position / alignment) * alignment;
  const tensors = new Map<string, GgufTensorInfo>();
  for (const { name, ne, type, offset } of infos) {
    const label = `tensor ${quote(name)}`;
    let elements = 1;
    for (const n of ne) {
      if (n < 1) throw cursor.corrupt(`${label} has a dimension of ${n}`);
      elements *= n;
      if (elements > Number.MAX_SAFE_INTEGER) throw cursor.corrupt(`${label} has dimensions [${ne.join(', ')}], too many elements`);
    }
    if (ne[0] % type.blockSize !== 0) {
      throw cursor.corrupt(`${label} is ${type.name}, whose blocks hold ${type.blockSize} elements, but its innermost dimension is ${ne[0]}`);
    }
    if (offset % alignment !== 0) throw cursor.corrupt(`${label} starts at data offset ${offset}, not a multiple of the alignment ${alignment}`);
    const bytes = (elements / type.blockSize) * type.blockBytes;
    const begin = dataStart + offset;
    if (begin + bytes > cursor.fileSize) {
      throw cursor.corrupt(`${label} (${type.name}, ${bytes} bytes at ${begin}) ends beyond the end of the file (${cursor.fileSize} bytes)`);
    }
    tensors.set(name, { name, shape: [...ne].reverse(), type, elements, bytes, begin });
  }
  const sorted = [...tensors.values()].sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < sorted.length; i++) {
    const previous = sorted[i - 1];
    if (sorted[i].begin < previous.begin + previous.bytes) {
      throw cursor.corrupt(`tensors ${quote(previous.name)} and ${quote(sorted[i].name)} overlap`);
    }
  }
  return { version, metadata, tensors, dataStart };
}
