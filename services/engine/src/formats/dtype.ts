/**
 * Storage dtypes of checkpoint tensors. Compute is always float32; F16 and BF16 are widened on read and
 * narrowed on write (round to nearest even), so a checkpoint is exported in the dtype it came in.
 */
export type StorageDtype = 'F32' | 'F16' | 'BF16';

export const BYTES_PER_ELEMENT: Record<StorageDtype, number> = { F32: 4, F16: 2, BF16: 2 };

export function isStorageDtype(value: string): value is StorageDtype {
  return value === 'F32' || value === 'F16' || value === 'BF16';
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function float16ToFloat32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24; // subnormal
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

export function float32ToFloat16(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  let mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0); // inf / nan
  let e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow → inf
  if (e <= 0) {
    if (e < -10) return sign; // underflow → ±0
    mantissa |= 0x800000; // make the implicit bit explicit, then shift into a subnormal
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rounded = mantissa + half - 1 + ((mantissa >> shift) & 1);
    return sign | (rounded >> shift);
  }
  const rounded = mantissa + 0xfff + ((mantissa >> 13) & 1); // round to nearest even
  if (rounded & 0x800000) {
    mantissa = 0;
    e += 1;
    if (e >= 0x1f) return sign | 0x7c00;
  } else {
    mantissa = rounded;
  }
  return sign | (e << 10) | (mantissa >> 13);
}

export function float32ToBfloat16(value: number): number {
  f32[0] = value;
  const x = u32[0];
  if ((x & 0x7fffffff) > 0x7f800000) return (x >>> 16) | 0x40; // keep NaN a NaN
  return (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
}

/** Widens raw little-endian bytes of `dtype` into a new Float32Array. */
export function decodeToFloat32(bytes: Uint8Array, dtype: StorageDtype): Float32Array {
  const count = bytes.byteLength / BYTES_PER_ELEMENT[dtype];
  if (dtype === 'F32') {
    if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, count);
    return new Float32Array(bytes.slice().buffer);
  }
  const out = new Float32Array(count);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dtype === 'BF16') {
    const outBits = new Uint32Array(out.buffer);
    for (let i = 0; i < count; i++) outBits[i] = view.getUint16(2 * i, true) << 16;
  } else {
    for (let i = 0; i < count; i++) out[i] = float16ToFloat32(view.getUint16(2 * i, true));
  }
  return out;
}

/** Narrows float32 values into little-endian bytes of `dtype`. */
export function encodeFromFloat32(values: Float32Array, dtype: StorageDtype): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const out = new Uint8Array(values.length * 2);
  const view = new DataView(out.buffer);
  const narrow = dtype === 'F16' ? float32ToFloat16 : float32ToBfloat16;
  for (let i = 0; i < values.length; i++) view.setUint16(2 * i, narrow(values[i]), true);
  return out;
}
