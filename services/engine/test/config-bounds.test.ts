/**
 * A model's config comes from whoever registers it: every size is bounded, integers only, before anything
 * is sized from it (a config with num_hidden_layers 1e9 once ran the gateway out of memory), the
 * parameter count is arithmetic, and weights holding NaN or infinities are refused as they are read.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EngineError } from '../src/errors.js';
import { GgufFile } from '../src/formats/gguf.js';
import { llama2cHfConfig, readLlama2cHeader } from '../src/formats/llama2c-checkpoint.js';
import { familyFor } from '../src/models/families/index.js';
import { countParameters, inspectModel, loadModel } from '../src/models/model.js';
import { expectedWeightShapes } from '../src/models/weight-shapes.js';
import { TINY_CONFIGS, writeTinyModel } from './fixtures/tiny-models.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

function parse(modelType: string, changes: Record<string, unknown>) {
  return familyFor(modelType).parseConfig({ ...TINY_CONFIGS[modelType], ...changes }, 'F32');
}

function refusal(run: () => unknown): EngineError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(EngineError);
    return error as EngineError;
  }
  throw new Error('expected a refusal');
}

describe('config bounds', () => {
  it.each([
    ['num_hidden_layers', 1e9, /num_hidden_layers is 1000000000, outside the accepted range 1 to 1024/],
    ['num_hidden_layers', 1e6, /num_hidden_layers is 1000000, outside the accepted range 1 to 1024/],
    ['num_hidden_layers', -1, /num_hidden_layers is -1, outside the accepted range 1 to 1024/],
    ['num_hidden_layers', 0, /num_hidden_layers is 0, outside/],
    ['num_hidden_layers', 2.5, /num_hidden_layers must be an integer from 1 to 1024, got 2.5/],
    ['num_hidden_layers', '12', /num_hidden_layers must be an integer from 1 to 1024, got "12"/],
    ['num_hidden_layers', null, /num_hidden_layers must be an integer from 1 to 1024, got null/],
    ['hidden_size', 131_072, /hidden_size is 131072, outside the accepted range 1 to 65536/],
    ['vocab_size', 2 ** 31, /vocab_size is 2147483648, outside the accepted range 1 to 1048576/],
    ['intermediate_size', 1e12, /intermediate_size is 1000000000000, outside the accepted range 1 to 1048576/],
    ['max_position_embeddings', 1e15, /max_position_embeddings is 1000000000000000, outside/],
    ['max_position_embeddings', 100.5, /max_position_embeddings must be an integer/],
    ['num_attention_heads', 64, /num_attention_heads is 64, outside the accepted range 1 to 32/],
    ['num_attention_heads', 6, /hidden_size 32 is not a multiple of num_attention_heads 6/],
    ['num_key_value_heads', 8, /num_key_value_heads is 8, outside the accepted range 1 to 4/],
    ['num_key_value_heads', 3, /num_attention_heads 4 is not a multiple of num_key_value_heads 3/],
    ['head_dim', 1e9, /head_dim is 1000000000, outside the accepted range 1 to 65536/],
    ['head_dim', 32_768, /num_attention_heads × head_dim is 131072, above the accepted 65536/],
  ])('llama: %s = %j is refused, naming the field, the value and the bound', (field, value, message) => {
    const error = refusal(() => parse('llama', { [field]: value }));
    expect(error.code).toBe('CORRUPT_FILE');
    expect(error.message).toMatch(message);
  });

  it.each([
    ['opt', 'ffn_dim', 2_000_000, /ffn_dim is 2000000, outside the accepted range 1 to 1048576/],
    ['opt', 'num_hidden_layers', 1e9, /num_hidden_layers is 1000000000/],
    ['opt', 'num_attention_heads', 5, /hidden_size 32 is not a multiple of num_attention_heads 5/],
    ['mistral', 'sliding_window', -4, /sliding_window is -4, outside/],
    ['qwen2', 'vocab_size', 1e7, /vocab_size is 10000000, outside the accepted range 1 to 1048576/],
  ])('%s: %s = %j is refused', (modelType, field, value, message) => {
    expect(refusal(() => parse(modelType, { [field]: value })).message).toMatch(message);
  });

  it('counts parameters by arithmetic: the largest bounded config, and 10 million layers without a shape per layer', () => {
    const llama = familyFor('llama');
    const huge = parse('llama', { num_hidden_layers: 1024, hidden_size: 65_536, num_attention_heads: 64, num_key_value_heads: 8, intermediate_size: 1_048_576, vocab_size: 1_048_576 });
    expect(Number.isSafeInteger(countParameters(llama, huge))).toBe(true);
    // countParameters is also called with configs built in code; a shape map of 10^7 layers would not fit in memory
    const tiny = parse('llama', {});
    const perLayer = countParameters(llama, { ...tiny, numLayers: 2 }) - countParameters(llama, { ...tiny, numLayers: 1 });
    expect(countParameters(llama, { ...tiny, numLayers: 10_000_000 })).toBe(countParameters(llama, { ...tiny, numLayers: 1 }) + (10_000_000 - 1) * perLayer);
    for (const modelType of Object.keys(TINY_CONFIGS)) {
      const family = familyFor(modelType);
      const config = parse(modelType, {});
      const fromShapes = [...expectedWeightShapes(family, config).values()].reduce((n, shape) => n + shape.reduce((a, b) => a * b, 1), 0);
      expect(countParameters(family, config)).toBe(fromShapes);
    }
  });

  it('refuses a model folder whose config.json is out of bounds before reading its weights', () => {
    const dir = writeTinyModel('llama');
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...TINY_CONFIGS.llama, num_hidden_layers: 1e9 }));
    const error = refusal(() => inspectModel(dir));
    expect(error.message).toMatch(/num_hidden_layers is 1000000000, outside the accepted range 1 to 1024/);
  });
});

describe('llama2.c header bounds', () => {
  function checkpoint(fields: number[]): string {
    const dir = mkdtempSync(join(tmpdir(), 'streamline-bounds-'));
    dirs.push(dir);
    const path = join(dir, 'model.bin');
    const bytes = Buffer.alloc(7 * 4 + 64);
    fields.forEach((value, i) => bytes.writeInt32LE(value, 4 * i));
    writeFileSync(path, bytes);
    return path;
  }

  it.each([
    [[64, 172, 1e9, 8, 4, 512, 512], /header field n_layers \(num_hidden_layers\) is 1000000000, outside the accepted range 1 to 1024/],
    [[64, 172, -5, 8, 4, 512, 512], /n_layers \(num_hidden_layers\) is -5, outside/],
    [[1 << 20, 172, 5, 8, 4, 512, 512], /dim \(hidden_size\) is 1048576, outside the accepted range 1 to 65536/],
    [[64, 172, 5, 8, 4, 1 << 24, 512], /vocab_size is 16777216, outside the accepted range 1 to 1048576/],
    [[64, 172, 5, 128, 4, 512, 512], /n_heads \(num_attention_heads\) is 128, outside the accepted range 1 to 64/],
    [[64, 172, 5, 8, 3, 512, 512], /n_heads 8 is not a multiple of n_kv_heads 3/],
  ])('header %j is refused with the field, its value and the bound', (fields, message) => {
    const path = checkpoint(fields);
    const error = refusal(() => readLlama2cHeader(path));
    expect(error.code).toBe('CORRUPT_FILE');
    expect(error.message).toMatch(message);
    expect(error.message).not.toMatch(/\{"dim"/); // the rest of the header is not quoted
  });

  it('keeps converting a valid header', () => {
    const config = llama2cHfConfig({ dim: 64, hiddenDim: 172, numLayers: 5, numHeads: 8, numKvHeads: 4, vocabSize: 512, maxSeqLen: 512, sharedClassifier: true });
    expect(familyFor('llama').parseConfig(config, 'F32').numLayers).toBe(5);
  });
});

describe('non-finite weights', () => {
  it.each([
    ['NaN', Number.NaN, 'F32'],
    ['+Infinity', Number.POSITIVE_INFINITY, 'F32'],
    ['-Infinity (bf16)', Number.NEGATIVE_INFINITY, 'BF16'],
    ['NaN (f16)', Number.NaN, 'F16'],
  ] as const)('a weight holding %s is refused as it is read, naming the tensor', (_label, value, dtype) => {
    const dir = writeTinyModel('llama', {
      dtype,
      edit: (weights) => {
        weights.get('model.layers.1.mlp.down_proj.weight')!.data[7] = value;
      },
    });
    expect(inspectModel(dir).config.numLayers).toBe(3); // headers only: registration still works
    const error = refusal(() => loadModel(dir));
    expect(error.code).toBe('INVALID_WEIGHTS');
    expect(error.message).toBe('tensor model.layers.1.mlp.down_proj.weight holds NaN/infinite values');
  });

  it('loads a model with finite weights as before', () => {
    expect(loadModel(writeTinyModel('qwen2')).weights.size).toBeGreaterThan(0);
  });
});

describe('files that are not what they claim', () => {
  it('refuses a config.json that is a FIFO instead of blocking on it, and one of more than 16 MB', async () => {
    const { execFileSync } = await import('node:child_process');
    const fifoModel = writeTinyModel('llama');
    rmSync(join(fifoModel, 'config.json'));
    execFileSync('mkfifo', [join(fifoModel, 'config.json')]);
    expect(refusal(() => inspectModel(fifoModel)).message).toMatch(/config\.json is not a regular file/);

    const fifoWeights = writeTinyModel('llama');
    rmSync(join(fifoWeights, 'model.safetensors'));
    execFileSync('mkfifo', [join(fifoWeights, 'model.safetensors')]);
    expect(refusal(() => inspectModel(fifoWeights)).message).toMatch(/model\.safetensors is not a regular file/);

    // the readers of a single-file model refuse one too (the file itself, not a folder holding it)
    const fifoFile = join(mkdtempSync(join(tmpdir(), 'streamline-fifo-')), 'model.bin');
    execFileSync('mkfifo', [fifoFile]);
    expect(refusal(() => readLlama2cHeader(fifoFile)).message).toMatch(/model\.bin is not a regular file/);
    expect(refusal(() => GgufFile.open(fifoFile)).message).toMatch(/model\.bin is not a regular file/);
    rmSync(dirname(fifoFile), { recursive: true });

    const big = writeTinyModel('llama');
    writeFileSync(join(big, 'config.json'), JSON.stringify({ ...TINY_CONFIGS.llama, padding: 'x'.repeat(17 * 1024 * 1024) }));
    expect(refusal(() => inspectModel(big)).message).toMatch(/config\.json is \d+ bytes, more than the 16777216 accepted/);
  });

  it("refuses shards whose headers together pass 100 MB, before parsing the one over the limit", () => {
    const dir = writeTinyModel('llama', { maxShardBytes: 16 * 1024 });
    const shards = readdirSync(dir).filter((name) => /^model-.*\.safetensors$/.test(name)).sort();
    expect(shards.length).toBeGreaterThan(2);
    // each header padded with 60 MB of spaces (valid JSON, quick to parse): two of them pass the budget
    for (const shard of shards.slice(0, 2)) {
      const bytes = readFileSync(join(dir, shard));
      const headerLength = Number(bytes.readBigUInt64LE(0));
      const header = Buffer.concat([bytes.subarray(8, 8 + headerLength), Buffer.alloc(60 * 1024 * 1024, 0x20)]);
      const length = Buffer.alloc(8);
      length.writeBigUInt64LE(BigInt(header.length));
      writeFileSync(join(dir, shard), Buffer.concat([length, header, bytes.subarray(8 + headerLength)]));
    }
    const error = refusal(() => inspectModel(dir));
    expect(error.code).toBe('CORRUPT_FILE');
    expect(error.message).toMatch(new RegExp(`${shards[1]}: its safetensors header of \\d+ bytes is more than the \\d+ bytes left for the model's headers \\(at most 104857600 in all\\)`));
  });
});
