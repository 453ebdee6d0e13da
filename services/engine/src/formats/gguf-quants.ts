/**
 * GGML tensor types as data — id, name, block of elements, bytes per block — and dequantization of the
 * types the engine reads (to float32, row-major: a GGUF tensor's blocks run along its innermost dimension).
 *
 * The block layouts and formulas are ggml's (ggml-quants.c `dequantize_row_*`); the arithmetic is done in
 * float32 in the same order as ggml and llama.cpp's gguf-py (`gguf.quants`), so that results are equal
 * bit for bit: every product and sum of two float32 values goes through Math.fround, and a double
 * product of two float32 values rounded once is the float32 product. Verified against gguf-py by
 * test/gguf.test.ts (fixture blocks of every supported type) and bench/gguf-reference.bench.ts (every
 * tensor of SmolLM2-135M's GGUF).
 */
import { EngineError } from '../errors.js';
import { float16ToFloat32 } from './dtype.js';

export interface GgmlType {
  readonly id: number;
  readonly name: string;
  /** Elements per block (1 for plain types). */
  readonly blockSize: number;
  /** Bytes per block. */
  readonly blockBytes: number;
}

/**
 * Every GGML type a GGUF file may name, as in gguf-py 0.19 (`GGML_QUANT_SIZES`): the container checks
 * each tensor's byte size with it, whether or not the engine can dequantize the type.
 */
export const GGML_TYPES: readonly GgmlType[] = (
  [
    [0, 'F32', 1, 4],
    [1, 'F16', 1, 2],
    [2, 'Q4_0', 32, 18],
    [3, 'Q4_1', 32, 20],
    [6, 'Q5_0', 32, 22],
    [7, 'Q5_1', 32, 24],
    [8, 'Q8_0', 32, 34],
    [9, 'Q8_1', 32, 40],
    [10, 'Q2_K', 256, 84],
    [11, 'Q3_K', 256, 110],
    [12, 'Q4_K', 256, 144],
    [13, 'Q5_K', 256, 176],
    [14, 'Q6_K', 256, 210],
    [15, 'Q8_K', 256, 292],
    [16, 'IQ2_XXS', 256, 66],
    [17, 'IQ2_XS', 256, 74],
    [18, 'IQ3_XXS', 256, 98],
    [19, 'IQ1_S', 256, 50],
    [20, 'IQ4_NL', 32, 18],
    [21, 'IQ3_S', 256, 110],
    [22, 'IQ2_S', 256, 82],
    [23, 'IQ4_XS', 256, 136],
    [24, 'I8', 1, 1],
    [25, 'I16', 1, 2],
    [26, 'I32', 1, 4],
    [27, 'I64', 1, 8],
    [28, 'F64', 1, 8],
    [29, 'IQ1_M', 256, 56],
    [30, 'BF16', 1, 2],
    [34, 'TQ1_0', 256, 54],
    [35, 'TQ2_0', 256, 66],
    [39, 'MXFP4', 32, 17],
    [40, 'NVFP4', 64, 36],
    [41, 'Q1_0', 128, 18],
  ] as const
).map(([id, name, blockSize, blockBytes]) => ({ id, name, blockSize, blockBytes }));

const TYPE_BY_ID = new Map(GGML_TYPES.map((type) => [type.id, type]));

export function ggmlType(id: number): GgmlType | undefined {
  return TYPE_BY_ID.get(id);
}

/** Dequantizes `blocks` whole blocks starting at byte `offset` of `view` into `out` from element `at`. */
type BlockDecoder = (view: DataView, offset: number, blocks: number, out: Float32Array, at: number) => void;

const f = Math.fround;
const half = (view: DataView, offset: number) => float16ToFloat32(view.getUint16(offset, true));

/** Q4_0: d (f16), 16 bytes of 4-bit quants; low nibbles are elements 0..15, high nibbles 16..31. y = d·(q − 8). */
function q4_0(view: DataView, offset: number, blocks: number, out: Float32Array, at: number): void {
  for (let b = 0; b < blocks; b++, offset += 18, at += 32) {
    const d = half(view, offset);
    for (let j = 0; j < 16; j++) {
      const q = view.getUint8(offset + 2 + j);
      out[at + j] = d * ((q & 0xf) - 8);
      out[at + j + 16] = d * ((q >> 4) - 8);
    }
  }
}

/** Q4_1: d, m (f16), 16 bytes of 4-bit quants. y = d·q + m. */
function q4_1(view: DataView, offset: number, blocks: number, out: Float32Array, at: number): void {
  for (let b = 0; b < blocks; b++, offset += 20, at += 32) {
    const d = half(view, offset);
    const m = half(view, offset + 2);
    for (let j = 0; j < 16; j++) {
      const q = view.getUint8(offset + 4 + j);
      out[at + j] = f(d * (q & 0xf)) + m;
      out[at + j + 16] = f(d * (q >> 4)) + m;
    }
  }
}

/** Q5_0: d (f16), qh (32 fifth bits, u32 LE), 16 bytes of low nibbles. y = d·(q − 16). */
function q5_0(view: DataView, offset: number, blocks: number, out: Float32Array, at: number): void {
  for (let b = 0; b < blocks; b++, offset += 22, at += 32) {
    const d = half(view, offset);
    const qh = view.getUint32(offset + 2, true);
    for (let j = 0; j < 16; j++) {
      const q = view.getUint8(offset + 6 + j);
      const high0 = ((qh >>> j) << 4) & 0x10;
      const high1 = (qh >>> (j + 12)) & 0x10;
      out[at + j] = d * (((q & 0xf) | high0) - 16);
      out[at + j + 16] = d * (((q >> 4) | high1) - 16);
    }
  }
}

/** Q5_1: d, m (f16), qh (u32), 16 bytes of low nibbles. y = d·q + m. */
function q5_1(view: DataView, offset: number, blocks: number, out: Float32Array, at: number): void {
  for (let b = 0; b < blocks; b++, offset += 24, at += 32) {
    const d = half(view, offset);
    const m = half(view, offset + 2);
    const qh = view.getUint32(offset + 4, true);
    for (let j = 0; j < 16; j++) {
      const q = view.getUint8(offset + 8 + j);
      const high0 = ((qh >>> j) << 4) & 0x10;
      const high1 = (qh >>> (j + 12)) & 0x10;
      out[at + j] = f(d * ((q & 0xf) | high0)) + m;
      out[at + j + 16] = f(d * ((q >> 4) | high1)) + m;
    }
  }
}

/** Q8_0: d (f16), 32 int8 quants. y = d·q. */
function q8_0(view: DataView, offset: number, blocks: number, out: Float32Array, at: number): void {
  for (let b = 0; b < blocks; b++, offset += 34, at += 32) {
    const d = half(view, offset);
    for (let j = 0; j < 32; j++) out[at + j] = d * view.getInt8(offset + 2 + j);
  }
}

/** The 6-bit scale and min `j` (0..7) packed in the 12 scale bytes of Q4_K and Q5_K (ggml's get_scale_min_k4). */
function scaleMinK4(view: DataView, scales: number, j: number): [number, number] {
  const byte = (i: number) => view.getUint8(scales + i);
  if (j < 4) return [byte(j) & 63, byte(j + 4) & 63];
  return [(byte(j + 4) & 0xf) | ((byte(j - 4) >> 6) << 4), (byte(j + 4) >> 4) | ((byte(j) >> 6) << 4)];
}

/** Q2_K (256): scales[16] (low nibble scale, high nibble min), qs[64] (2-bit), d, dmin (f16). y = d·sc·q − dmin·m. */
function q2_k(view: DataView, offset: number, blocks: number, out: Float32Array, at: number): void {
  for (let b = 0; b < blocks; b++, offset += 84) {
    const d = half(view, offset + 80);
    const dmin = half(view, offset + 82);
    let is = 0;
    for (let n = 0; n < 2; n++) {
      const qs = offset + 16 + 32 * n;
      for (let shift = 0; shift < 8; shift += 2) {
        for (let part = 0; part < 2; part++) {
          const sc = view.getUint8(offset + is++);
          const dl = f(d * (sc & 0xf));
          const ml = f(dmin * (sc >> 4));
          for (let l = 0; l < 16; l++) out[at++] = f(dl * ((view.getUint8(qs + 16 * part + l) >> shift) & 3)) - ml;
        }
      }
    }
  }
}

/** Q3_K (256): hmask[32], qs[64] (2 low bits), scales[12] (16 6-bit scales, offset 32), d (f16). */
function q3_k(view: DataView, offset: number, blocks: number, out: Float32Array, at: number): void {
  const scales = new Int8Array(16);
  for (let b = 0; b < blocks; b++, offset += 110) {
    const d = half(view, offset + 108);
    const raw = (i: number) => view.getUint8(offset + 96 + i);
    for (let i = 0; i < 16; i++) {
      const low = i < 8 ? raw(i) & 0xf : raw(i - 8) >> 4;
      const high = (raw(8 + (i % 4)) >> (2 * Math.floor(i / 4))) & 3;
      scales[i] = (low | (high << 4)) - 32;
    }
    let is = 0;
    let mask = 1;
    for (let n = 0; n < 2; n++) {
      const qs = offset + 32 + 32 * n;
      for (let shift = 0; shift < 8; shift += 2, mask <<= 1) {
        for (let part = 0; part < 2; part++) {
          const dl = f(d * scales[is++]);
          for (let l = 0; l < 16; l++) {
            const i = 16 * part + l;
            const q = ((view.getUint8(qs + i) >> shift) & 3) - (view.getUint8(offset + i) & mask ? 0 : 4);
            out[at++] = dl * q;
          }
        }
      }
    }
  }
}

/** Q4_K (256): d, dmin (f16), scales[12] (8 6-bit scale/min pairs), qs[128]. y = d·sc·q − dmin·m per 32. */
function q4_k(view: DataView, offset: number, blocks: number, out: Float32Array, at: number): void {
  for (let b = 0; b < blocks; b++, offset += 144) {
    const d = half(view, offset);
    const dmin = half(view, offset + 2);
    for (let j = 0; j < 4; j++) {
      const qs = offset + 16 + 32 * j;
      for (let part = 0; part < 2; part++) {
        const [sc, m] = scaleMinK4(view, offset + 4, 2 * j + part);
        const dl = f(d * sc);
        const ml = f(dmin * m);
        for (let l = 0; l < 32; l++) {
          const byte = view.getUint8(qs + l);
          out[at++] = f(dl * (part === 0 ? byte & 0xf : byte >> 4)) - ml;
        }
      }
    }
  }
}

/** Q5_K (256): d, dmin (f16), scales[12], qh[32] (fifth bits), qs[128]. */
function q5_k(view: DataView, offset: number, blocks: number, out: Float32Array, at: number): void {
  for (let b = 0; b < blocks; b++, offset += 176) {
    const d = half(view, offset);
    const dmin = half(view, offset + 2);
    for (let j = 0; j < 4; j++) {
      const qs = offset + 48 + 32 * j;
      for (let part = 0; part < 2; part++) {
        const [sc, m] = scaleMinK4(view, offset + 4, 2 * j + part);
        const dl = f(d * sc);
        const ml = f(dmin * m);
        const bit = 1 << (2 * j + part);
        for (let l = 0; l < 32; l++) {
          const byte = view.getUint8(qs + l);
          const q = (part === 0 ? byte & 0xf : byte >> 4) + (view.getUint8(offset + 16 + l) & bit ? 16 : 0);
          out[at++] = f(dl * q) - ml;
        }
      }
    }
  }
}

/** Q6_K (256): ql[128] (low 4 bits), qh[64] (high 2 bits), scales int8[16], d (f16). y = d·sc·(q − 32). */
function q6_k(view: DataView, offset: number, blocks: number, out: Float32Array, at: number): void {
  for (let b = 0; b < blocks; b++, offset += 210, at += 256) {
    const d = half(view, offset + 208);
    for (let n = 0; n < 2; n++) {
      const ql = offset + 64 * n;
      const qh = offset + 128 + 32 * n;
      const sc = offset + 192 + 8 * n;
      const y = at + 128 * n;
      for (let l = 0; l < 32; l++) {
        const is = l >> 4;
        const low0 = view.getUint8(ql + l);
        const low1 = view.getUint8(ql + l + 32);
        const high = view.getUint8(qh + l);
        const q1 = ((low0 & 0xf) | ((high & 3) << 4)) - 32;
        const q2 = ((low1 & 0xf) | (((high >> 2) & 3) << 4)) - 32;
        const q3 = ((low0 >> 4) | (((high >> 4) & 3) << 4)) - 32;
        const q4 = ((low1 >> 4) | (((high >> 6) & 3) << 4)) - 32;
        out[y + l] = f(d * view.getInt8(sc + is)) * q1;
        out[y + l + 32] = f(d * view.getInt8(sc + is + 2)) * q2;
        out[y + l + 64] = f(d * view.getInt8(sc + is + 4)) * q3;
        out[y + l + 96] = f(d * view.getInt8(sc + is + 6)) * q4;
      }
    }
  }
}

function f32(view: DataView, offset: number, count: number, out: Float32Array, at: number): void {
  for (let i = 0; i < count; i++) out[at + i] = view.getFloat32(offset + 4 * i, true);
}

function f16(view: DataView, offset: number, count: number, out: Float32Array, at: number): void {
  for (let i = 0; i < count; i++) out[at + i] = float16ToFloat32(view.getUint16(offset + 2 * i, true));
}

function bf16(view: DataView, offset: number, count: number, out: Float32Array, at: number): void {
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < count; i++) bits[at + i] = view.getUint16(offset + 2 * i, true) << 16;
}

/** The types the engine dequantizes, by name. Any other type is refused with its name. */
const DECODERS: Readonly<Record<string, BlockDecoder>> = {
  F32: f32,
  F16: f16,
  BF16: bf16,
  Q4_0: q4_0,
  Q4_1: q4_1,
  Q5_0: q5_0,
  Q5_1: q5_1,
  Q8_0: q8_0,
  Q2_K: q2_k,
  Q3_K: q3_k,
  Q4_K: q4_k,
  Q5_K: q5_k,
  Q6_K: q6_k,
};

export const DEQUANTIZABLE_TYPES: readonly string[] = Object.keys(DECODERS);

export function canDequantize(type: GgmlType): boolean {
  return type.name in DECODERS;
}

/** Refuses a type the engine cannot read, naming it and the supported ones; `what` names the tensor. */
export function checkDequantizable(type: GgmlType, what: string): void {
  if (!canDequantize(type)) {
    throw new EngineError('UNSUPPORTED_MODEL', `${what} is stored as GGML type ${type.name}; the engine reads ${DEQUANTIZABLE_TYPES.join(', ')}`);
  }
}

/**
 * `elements` values of `type` from `bytes` (exactly the tensor's bytes) as float32. `elements` must be a
 * whole number of blocks, which the container has checked.
 */
export function dequantize(type: GgmlType, bytes: Uint8Array, elements: number, what = 'tensor'): Float32Array {
  checkDequantizable(type, what);
  const blocks = elements / type.blockSize;
  if (!Number.isInteger(blocks) || blocks * type.blockBytes !== bytes.byteLength) {
    throw new EngineError('CORRUPT_FILE', `${what}: ${bytes.byteLength} bytes of ${type.name} do not hold ${elements} elements`);
  }
  const out = new Float32Array(elements);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  DECODERS[type.name](view, 0, blocks, out, 0);
  return out;
}
