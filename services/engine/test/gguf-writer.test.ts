/**
 * The GGUF writer: files it writes read back through the engine's reader — metadata of every type,
 * F32/F16/BF16 bit-exact to their encodings, Q8_0 within half a quantization step — with tensors read
 * one at a time, in order.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeToFloat32, encodeFromFloat32, float16ToFloat32 } from '../src/formats/dtype.js';
import { GgufFile, type GgufMetadataEntry } from '../src/formats/gguf.js';
import { writeGgufStreamed, type GgufTensorPlan } from '../src/formats/gguf-writer.js';

const scratch = mkdtempSync(join(tmpdir(), 'streamline-gguf-writer-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function values(n: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return (s / 2147483648 - 0.5) * 3;
  });
}

describe('GGUF writer', () => {
  const metadata: [string, GgufMetadataEntry][] = [
    ['general.architecture', { type: 'STRING', value: 'llama' }],
    ['u8', { type: 'UINT8', value: 200 }],
    ['i32', { type: 'INT32', value: -7 }],
    ['u32', { type: 'UINT32', value: 4_000_000_000 }],
    ['f32', { type: 'FLOAT32', value: 0.5 }],
    ['f64', { type: 'FLOAT64', value: 1e-300 }],
    ['b', { type: 'BOOL', value: true }],
    ['u64', { type: 'UINT64', value: 2n ** 60n }],
    ['strings', { type: 'ARRAY', itemType: 'STRING', value: ['a', 'é', ''] }],
    ['floats', { type: 'ARRAY', itemType: 'FLOAT32', value: Float32Array.from([1.5, -2]) }],
    ['ints', { type: 'ARRAY', itemType: 'INT32', value: [1, -2, 3] }],
  ];
  const tensors = new Map([
    ['a', values(7 * 64, 1)],
    ['b', values(64, 2)],
    ['c', values(3 * 96, 3)],
    ['d', values(5 * 32, 4)],
  ]);
  const plan: GgufTensorPlan[] = [
    { name: 'a', shape: [7, 64], type: 'F16' },
    { name: 'b', shape: [64], type: 'F32' },
    { name: 'c', shape: [3, 96], type: 'Q8_0' },
    { name: 'd', shape: [5, 32], type: 'BF16' },
  ];
  const path = join(scratch, 'w.gguf');
  const order: string[] = [];
  writeGgufStreamed(path, metadata, plan, (name) => (order.push(name), tensors.get(name)!));

  it('reads tensors one at a time, in order', () => expect(order).toEqual(['a', 'b', 'c', 'd']));

  it('reads back every metadata value', () => {
    const file = GgufFile.open(path);
    try {
      expect(file.version).toBe(3);
      expect(file.get('general.architecture')).toBe('llama');
      expect(file.get('u8')).toBe(200);
      expect(file.get('i32')).toBe(-7);
      expect(file.get('u32')).toBe(4_000_000_000);
      expect(file.get('f32')).toBe(0.5);
      expect(file.get('f64')).toBe(1e-300);
      expect(file.get('b')).toBe(true);
      expect(file.get('u64')).toBe(2n ** 60n);
      expect(file.get('strings')).toEqual(['a', 'é', '']);
      expect(Array.from(file.get('floats') as Float32Array)).toEqual([1.5, -2]);
      expect(Array.from(file.get('ints') as Int32Array)).toEqual([1, -2, 3]);
    } finally {
      file.close();
    }
  });

  it('F32, F16 and BF16 are bit-exact to their encodings; Q8_0 within half a step', () => {
    const file = GgufFile.open(path);
    try {
      expect(file.tensor('a').shape).toEqual([7, 64]);
      expect(file.tensor('a').type.name).toBe('F16');
      expect(Buffer.from(file.readRaw('a'))).toEqual(Buffer.from(encodeFromFloat32(tensors.get('a')!, 'F16')));
      expect(Array.from(file.read('a').data)).toEqual(Array.from(decodeToFloat32(encodeFromFloat32(tensors.get('a')!, 'F16'), 'F16')));
      expect(Array.from(file.read('b').data)).toEqual(Array.from(tensors.get('b')!));
      expect(Array.from(file.read('d').data)).toEqual(Array.from(decodeToFloat32(encodeFromFloat32(tensors.get('d')!, 'BF16'), 'BF16')));
      const q = file.read('c').data;
      const raw = file.readRaw('c');
      const original = tensors.get('c')!;
      for (let block = 0; block < original.length / 32; block++) {
        const d = float16ToFloat32(raw[34 * block] | (raw[34 * block + 1] << 8));
        let amax = 0;
        for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(original[32 * block + j]));
        expect(d).toBeCloseTo(amax / 127, 4);
        // half a step, plus what storing d as f16 moves q·d (|q| ≤ 127)
        const bound = d / 2 + 127 * Math.abs(d - Math.fround(amax / 127)) + 1e-7;
        for (let j = 0; j < 32; j++) expect(Math.abs(q[32 * block + j] - original[32 * block + j])).toBeLessThanOrEqual(bound);
      }
    } finally {
      file.close();
    }
  });
});
