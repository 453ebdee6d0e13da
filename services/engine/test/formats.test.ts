import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeToFloat32, encodeFromFloat32, float16ToFloat32, float32ToBfloat16, float32ToFloat16 } from '../src/formats/dtype.js';
import { SafetensorsFile, writeSafetensors } from '../src/formats/safetensors.js';
import { inspectModel, loadModel } from '../src/models/model.js';
import { writeTinyModel } from './fixtures/tiny-models.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'streamline-formats-'));
  dirs.push(dir);
  return dir;
};

describe('dtypes', () => {
  it('converts known float16 and bfloat16 bit patterns', () => {
    expect(float32ToFloat16(1)).toBe(0x3c00);
    expect(float32ToFloat16(-2)).toBe(0xc000);
    expect(float32ToFloat16(65504)).toBe(0x7bff);
    expect(float32ToFloat16(1e6)).toBe(0x7c00); // overflow → inf
    expect(float32ToFloat16(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(float32ToFloat16(1 + 2 ** -11)).toBe(0x3c00); // a tie rounds to even
    expect(float16ToFloat32(0x3555)).toBeCloseTo(0.333251953125, 12);
    expect(float16ToFloat32(0x0001)).toBe(2 ** -24);
    expect(float32ToBfloat16(1)).toBe(0x3f80);
    expect(float32ToBfloat16(-0.5)).toBe(0xbf00);
    expect(float32ToBfloat16(3.14159)).toBe(0x4049);
  });

  it('round-trips values through each storage dtype', () => {
    const values = new Float32Array([0, 1, -1.5, 0.1, 1234.5, -0.0001]);
    expect(Array.from(decodeToFloat32(encodeFromFloat32(values, 'F32'), 'F32'))).toEqual(Array.from(values));
    const half = decodeToFloat32(encodeFromFloat32(values, 'F16'), 'F16');
    const brain = decodeToFloat32(encodeFromFloat32(values, 'BF16'), 'BF16');
    values.forEach((v, i) => {
      expect(Math.abs(half[i] - v)).toBeLessThanOrEqual(Math.abs(v) * 2 ** -11 + 2 ** -25); // 10-bit mantissa
      expect(Math.abs(brain[i] - v)).toBeLessThanOrEqual(Math.abs(v) / 128);
    });
  });
});

describe('safetensors', () => {
  it('reads a file laid out by hand from the format description', () => {
    const header = JSON.stringify({ __metadata__: { format: 'pt' }, a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'BF16', shape: [1, 2], data_offsets: [8, 12] } });
    const data = Buffer.alloc(12);
    data.writeFloatLE(1.5, 0);
    data.writeFloatLE(-2, 4);
    data.writeUInt16LE(0x3f80, 8);
    data.writeUInt16LE(0xc040, 10);
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(header.length));
    const path = join(tempDir(), 'hand.safetensors');
    writeFileSync(path, Buffer.concat([length, Buffer.from(header), data]));
    const file = SafetensorsFile.open(path);
    try {
      expect(file.metadata).toEqual({ format: 'pt' });
      expect(Array.from(file.read('a').data)).toEqual([1.5, -2]);
      expect(file.read('b')).toEqual({ shape: [1, 2], data: new Float32Array([1, -3]) });
    } finally {
      file.close();
    }
  });

  it('writes what it reads, 8-byte aligned, in each dtype', () => {
    const dir = tempDir();
    const tensor = { shape: [3, 2], data: new Float32Array([1, 2, 3, 4, 5, -6]) };
    for (const dtype of ['F32', 'F16', 'BF16'] as const) {
      const path = join(dir, `${dtype}.safetensors`);
      writeSafetensors(path, [{ name: 'w', tensor }], dtype);
      expect(readFileSync(path).readBigUInt64LE(0) % 8n).toBe(0n);
      const file = SafetensorsFile.open(path);
      expect(file.entry('w').dtype).toBe(dtype);
      expect(file.read('w')).toEqual(tensor);
      file.close();
    }
  });

  it('names a truncated file, a header that does not fit, and a shape that disagrees with its bytes', () => {
    const dir = tempDir();
    const path = join(dir, 'model.safetensors');
    writeSafetensors(path, [{ name: 'w', tensor: { shape: [4, 4], data: new Float32Array(16) } }], 'F32');
    truncateSync(path, readFileSync(path).length - 10);
    expect(() => SafetensorsFile.open(path)).toThrow(/is truncated: tensor w needs bytes up to \d+ but the file has \d+/);

    const bad = join(dir, 'bad.safetensors');
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(10_000n);
    writeFileSync(bad, Buffer.concat([length, Buffer.from('{}')]));
    expect(() => SafetensorsFile.open(bad)).toThrow(/header length 10000 does not fit in a file of 10 bytes/);

    const header = JSON.stringify({ w: { dtype: 'F32', shape: [3, 3], data_offsets: [0, 16] } });
    length.writeBigUInt64LE(BigInt(header.length));
    writeFileSync(bad, Buffer.concat([length, Buffer.from(header), Buffer.alloc(16)]));
    expect(() => SafetensorsFile.open(bad)).toThrow(/tensor w has shape \[3, 3\] \(36 bytes of F32\) but data_offsets span 16 bytes/);

    writeFileSync(bad, Buffer.concat([length, Buffer.from('x'.repeat(header.length))]));
    expect(() => SafetensorsFile.open(bad)).toThrow(/unparsable safetensors header/);
    expect(() => SafetensorsFile.open(join(dir, 'absent.safetensors'))).toThrow(/safetensors file not found/);
  });
});

describe('Hugging Face folders', () => {
  it('loads tied and untied LM heads, sharded and single-file, with identical weights', () => {
    const single = writeTinyModel('llama', { seed: 3 });
    const sharded = writeTinyModel('llama', { seed: 3, maxShardBytes: 8 * 1024 });
    dirs.push(single, sharded);
    const a = loadModel(single);
    const b = loadModel(sharded);
    expect(JSON.parse(readFileSync(join(sharded, 'model.safetensors.index.json'), 'utf8')).weight_map['lm_head.weight']).toMatch(/^model-\d{5}-of-\d{5}\.safetensors$/);
    expect([...b.weights.keys()].sort()).toEqual([...a.weights.keys()].sort());
    for (const [name, tensor] of a.weights) expect(b.weights.get(name)).toEqual(tensor);
    expect(a.weights.has('lm_head.weight')).toBe(true);
    const tied = writeTinyModel('qwen2');
    dirs.push(tied);
    expect(loadModel(tied).weights.has('lm_head.weight')).toBe(false);
    expect(inspectModel(tied).numParameters).toBe([...loadModel(tied).weights.values()].reduce((n, t) => n + t.data.length, 0));
  });

  it('accepts OPT checkpoints saved without the leading "model." of weight names', () => {
    const dir = writeTinyModel('opt', {
      edit(weights) {
        for (const [name, tensor] of [...weights]) {
          weights.delete(name);
          weights.set(name.replace(/^model\./, ''), tensor);
        }
      },
    });
    dirs.push(dir);
    expect(loadModel(dir).weights.get('model.decoder.embed_tokens.weight')?.shape).toEqual([64, 32]);
  });

  it('refuses unknown architectures before reading weights, naming the supported ones', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'gpt2', n_layer: 2 }));
    expect(() => inspectModel(dir)).toThrow('model_type "gpt2" is not supported; supported model types: llama, mistral, qwen2, opt');
  });

  it('refuses unsupported variants of supported families', () => {
    const dir = writeTinyModel('opt');
    dirs.push(dir);
    patchConfig(dir, { do_layer_norm_before: false });
    expect(() => inspectModel(dir)).toThrow(/opt: do_layer_norm_before=false .* is not supported/);
    patchConfig(dir, { do_layer_norm_before: true, activation_function: 'gelu' });
    expect(() => inspectModel(dir)).toThrow(/opt: activation_function "gelu" \(only "relu"\) is not supported/);
    const scaled = writeTinyModel('llama');
    dirs.push(scaled);
    patchConfig(scaled, { rope_scaling: { rope_type: 'yarn', factor: 4 } });
    expect(() => inspectModel(scaled)).toThrow(/rope_scaling type "yarn" \(supported: default, linear, llama3\)/);
  });

  it('names a tensor whose shape disagrees with config.json, and a missing one', () => {
    const dir = writeTinyModel('mistral', { config: { intermediate_size: 40 } });
    dirs.push(dir);
    patchConfig(dir, { intermediate_size: 48 });
    expect(() => loadModel(dir)).toThrow(/tensor model.layers.0.mlp.gate_proj.weight has shape \[40, 32\] but config.json implies \[48, 32\]/);
    const missing = writeTinyModel('llama', { edit: (weights) => weights.delete('model.norm.weight') });
    dirs.push(missing);
    expect(() => loadModel(missing)).toThrow(/missing tensor model.norm.weight \(expected shape \[32\]\)/);
  });
});

function patchConfig(dir: string, patch: Record<string, unknown>): void {
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, ...patch }));
}
