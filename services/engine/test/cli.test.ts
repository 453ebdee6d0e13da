/** The engine CLI as a user runs it: real processes, exit codes, stdout, and one-line errors on stderr. */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { STORIES_BIN, STORIES_TOKENIZER, runWithShared, sharedPath } from '@streamline/testing/shared-data';
import { TINY_CONFIGS, writeTinyModel } from './fixtures/tiny-models.js';

const BIN = fileURLToPath(new URL('../bin/streamline-engine.js', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'streamline-cli-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return cliWithEnv({}, ...args);
}

function cliWithEnv(env: Record<string, string>, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, ...env } }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

/** A failure is exit status 1 and exactly one line on stderr, matching `pattern`. */
async function expectFailure(args: string[], pattern: RegExp): Promise<void> {
  const { code, stdout, stderr } = await cli(...args);
  expect(code).toBe(1);
  expect(stdout).toBe('');
  expect(stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(stderr).toMatch(pattern);
}

describe.skipIf(!runWithShared)('on stories260K', () => {
  it('inspects the model', async () => {
    const { code, stdout } = await cli('inspect', '--model', STORIES_BIN);
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({
      architecture: 'llama',
      numLayers: 5,
      hiddenSize: 64,
      numAttentionHeads: 8,
      numKeyValueHeads: 4,
      intermediateSize: 172,
      vocabSize: 512,
      numParameters: 260032,
      dtype: 'F32',
      tokenizer: { kind: 'llama2c', vocabSize: 512 },
    });
  });

  it('converts to a Hugging Face folder that generates the same text', async () => {
    const out = join(work, 'stories260K-hf');
    expect((await cli('convert', '--model', STORIES_BIN, '--tokenizer', STORIES_TOKENIZER, '--out', out)).code).toBe(0);
    for (const file of ['config.json', 'model.safetensors', 'tokenizer.bin']) expect(existsSync(join(out, file))).toBe(true);
    const reference = JSON.parse(readFileSync(sharedPath('refs/stories260K_real_references.json'), 'utf8')).references[0].text;
    const { code, stdout } = await cli('generate', '--model', out, '--prompt', '', '--max-tokens', '200', '--temperature', '0');
    expect(code).toBe(0);
    expect(stdout).toBe(`${reference}\n`);
    // Layer-streamed (what a model beyond the memory budget gets): the same greedy text.
    const streamed = await cli('generate', '--model', out, '--prompt', '', '--max-tokens', '48', '--temperature', '0', '--streaming', 'on');
    expect(streamed.code).toBe(0);
    expect(streamed.stdout.length).toBeGreaterThan(100);
    expect(reference.startsWith(streamed.stdout.trimEnd())).toBe(true);
  });

  it('writes an importance profile with progress on stderr', async () => {
    const out = join(work, 'importance.json');
    const { code, stderr } = await cli(
      'importance', '--model', STORIES_BIN, '--data', sharedPath('data/text/tinystories_val_excerpt.txt'),
      '--samples', '6', '--seq-len', '64', '--block-sizes', '1,2', '--batch-size', '4', '--out', out,
    );
    expect(code).toBe(0);
    // Layer-streamed (the default): one pass, progress per layer.
    expect(stderr).toMatch(/importance: layer 1\/5, .* read/);
    expect(stderr).toMatch(/importance: layer 5\/5, .* read/);
    expect(stderr).toMatch(/tokens\/s/);
    const profile = JSON.parse(readFileSync(out, 'utf8'));
    expect(profile).toMatchObject({ metric: 'cosine', samples: 6, seqLen: 64, tokens: 384, numLayers: 5 });
    expect(profile.backend).toMatch(/onnxruntime-node/);
    expect(profile.blocks.map((b: { blockSize: number; scores: number[] }) => [b.blockSize, b.scores.length])).toEqual([[1, 5], [2, 4]]);
    expect(profile.angularDistance).toHaveLength(2);
    expect(profile.blockInfluence).toHaveLength(5);
    expect(profile.tokensPerSecond).toBeGreaterThan(0);

    // The whole-model path, batch by batch, gives the same scores.
    const whole = join(work, 'importance-whole.json');
    const wholeRun = await cli(
      'importance', '--model', STORIES_BIN, '--data', sharedPath('data/text/tinystories_val_excerpt.txt'),
      '--samples', '6', '--seq-len', '64', '--block-sizes', '1,2', '--batch-size', '4', '--streaming', 'off', '--out', whole,
    );
    expect(wholeRun.code).toBe(0);
    expect(wholeRun.stderr).toMatch(/importance: 4\/6 samples/);
    const wholeProfile = JSON.parse(readFileSync(whole, 'utf8'));
    wholeProfile.blocks.forEach((block: { scores: number[] }, i: number) =>
      block.scores.forEach((score, s) => expect(Math.abs(score - profile.blocks[i].scores[s])).toBeLessThan(1e-5)),
    );
  });

  it('runs on the TensorFlow.js runtime and its pure-JS cpu backend when told to', async () => {
    const reference = JSON.parse(readFileSync(sharedPath('refs/stories260K_real_references.json'), 'utf8')).references[3].text as string;
    const { code, stdout } = await cliWithEnv(
      { STREAMLINE_RUNTIME: 'tfjs', STREAMLINE_BACKEND: 'cpu' },
      'generate', '--model', STORIES_BIN, '--prompt', 'Once upon a time', '--max-tokens', '12', '--temperature', '0',
    );
    expect(code).toBe(0);
    expect(reference.startsWith(stdout.trimEnd())).toBe(true);
    expect(stdout.length).toBeGreaterThan('Once upon a time'.length + 20);
  });

  it('names a runtime or backend that cannot be had', async () => {
    await expect(cliWithEnv({ STREAMLINE_RUNTIME: 'pytorch' }, 'generate', '--model', STORIES_BIN, '--max-tokens', '1')).resolves.toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/runtime "pytorch" is not supported; accepted: onnx, tfjs/),
    });
    await expect(
      cliWithEnv({ STREAMLINE_RUNTIME: 'tfjs', STREAMLINE_BACKEND: 'tensorflow' }, 'generate', '--model', STORIES_BIN, '--max-tokens', '1'),
    ).resolves.toMatchObject({ code: 1, stderr: expect.stringMatching(/no TensorFlow.js backend could start \(tensorflow: neither @tensorflow\/tfjs-node-gpu nor @tensorflow\/tfjs-node is installed\)/) });
  });

  it('refuses data with no usable sample and a seq-len beyond the context', async () => {
    const empty = join(work, 'empty.jsonl');
    writeFileSync(empty, '\n');
    await expectFailure(['importance', '--model', STORIES_BIN, '--data', empty, '--out', join(work, 'x.json')], /data file .*empty.jsonl has no text samples: .*has no usable sample/);
    await expectFailure(
      ['importance', '--model', STORIES_BIN, '--data', sharedPath('data/text/tinystories_val_excerpt.txt'), '--seq-len', '4096', '--out', join(work, 'x.json')],
      /--seq-len 4096 is beyond the model's context of 512 positions/,
    );
  });
});

describe('errors', () => {
  it('names a missing model file', async () => {
    await expectFailure(['inspect', '--model', join(work, 'nope')], /model not found: .*nope/);
  });

  it('names a truncated safetensors file', async () => {
    const dir = writeTinyModel('llama');
    const file = join(dir, 'model.safetensors');
    truncateSync(file, readFileSync(file).length - 100);
    await expectFailure(['importance', '--model', dir, '--data', join(dir, 'none.jsonl'), '--out', join(work, 'x.json')], /model.safetensors is truncated/);
    rmSync(dir, { recursive: true });
  });

  it('names a tensor whose shape does not match the config', async () => {
    const dir = writeTinyModel('qwen2');
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, vocab_size: 100 }));
    const data = join(dir, 'ids.jsonl');
    writeFileSync(data, '{"input_ids":[1,2,3]}\n');
    await expectFailure(['importance', '--model', dir, '--data', data, '--samples', '1', '--seq-len', '8', '--out', join(work, 'x.json')], /tensor model.embed_tokens.weight has shape \[64, 32\] but config.json implies \[100, 32\]/);
    rmSync(dir, { recursive: true });
  });

  it('refuses an unknown architecture, naming the supported ones', async () => {
    const dir = join(work, 'falcon');
    rmSync(dir, { recursive: true, force: true });
    await import('node:fs').then((fs) => fs.mkdirSync(dir));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'falcon' }));
    await expectFailure(['inspect', '--model', dir], /model_type "falcon" is not supported; supported model types: llama, mistral, qwen2, opt/);
  });

  it('refuses unknown commands and options', async () => {
    await expectFailure(['prune-everything'], /unknown command "prune-everything"/);
    await expectFailure(['inspect', '--modle', 'x'], /Unknown option '--modle'/);
    await expectFailure(['inspect'], /--model is required/);
    await expectFailure(['generate', '--model', 'x', '--max-tokens', 'lots'], /--max-tokens must be an integer, got "lots"/);
  });

  it('prune --heal heals the replacement after training, printing the healing steps; healing options need --heal', async () => {
    const dir = writeTinyModel('llama');
    const data = join(dir, 'ids.jsonl');
    writeFileSync(data, Array.from({ length: 8 }, (_, i) => JSON.stringify({ input_ids: Array.from({ length: 9 }, (_, j) => (i * 7 + j * 3) % 64) })).join('\n'));
    const common = ['prune', '--model', dir, '--data', data, '--layers', '1', '--start', '1', '--replacement', 'layer', '--samples', '8', '--seq-len', '8', '--batch-size', '2', '--min-steps', '4'];
    const { code, stdout, stderr } = await cli(...common, '--heal', '--heal-steps', '10', '--heal-lr', '1e-3', '--heal-patience', '20', '--val-fraction', '0.25', '--out', join(work, 'healed'));
    expect(stderr).not.toMatch(/streamline-engine prune:/);
    expect(code).toBe(0);
    expect(stderr).toMatch(/healing: step 10\/10 KL /);
    const summary = JSON.parse(stdout);
    expect(summary.healing).toMatchObject({ settings: { steps: 10, learningRate: 1e-3, validationFraction: 0.25, patience: 20 }, steps: 10, stoppedEarly: false });
    await expectFailure([...common, '--heal-lr', '1e-3', '--out', join(work, 'not-healed')], /--heal-lr needs --heal/);
  });
});

describe('GGUF export', () => {
  // llama.cpp's llama metadata carries no llama3 rope scaling without a rope_freqs tensor: the fixture's is dropped
  const tinyLlama = () => writeTinyModel('llama', { config: { ...TINY_CONFIGS.llama, rope_scaling: null } });

  it('export-gguf writes a GGUF the engine inspects, and refuses an unknown type', async () => {
    const dir = tinyLlama();
    await expectFailure(['export-gguf', '--model', writeTinyModel('llama'), '--out', join(work, 'x.gguf')], /rope scaling llama3 is not supported/);
    const out = join(work, 'tiny.q8_0.gguf');
    const { code, stdout, stderr } = await cli('export-gguf', '--model', dir, '--out', out, '--type', 'q8_0');
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ path: out, type: 'Q8_0', layers: 3 });
    const inspected = await cli('inspect', '--model', out);
    expect(JSON.parse(inspected.stdout)).toMatchObject({ architecture: 'llama', numLayers: 3 });
    await expectFailure(['export-gguf', '--model', dir, '--out', out, '--type', 'q4_k'], /--type must be f16, bf16 or q8_0, got "q4_k"/);
    await expectFailure(['export-gguf', '--model', writeTinyModel('qwen2'), '--out', out], /model_type "qwen2" is not supported/);
  });

  it('prune --gguf writes model.gguf beside the Hugging Face export, with the pruned layer count', async () => {
    const dir = tinyLlama();
    const data = join(dir, 'ids.jsonl');
    writeFileSync(data, Array.from({ length: 4 }, (_, i) => JSON.stringify({ input_ids: Array.from({ length: 9 }, (_, j) => (i * 7 + j * 3) % 64) })).join('\n'));
    const out = join(work, 'pruned-gguf');
    const { code, stdout, stderr } = await cli('prune', '--model', dir, '--data', data, '--layers', '1', '--replacement', 'none', '--samples', '4', '--seq-len', '8', '--gguf', 'bf16', '--out', out);
    expect(stderr).not.toMatch(/streamline-engine prune:/);
    expect(code).toBe(0);
    expect(JSON.parse(stdout).gguf).toMatchObject({ type: 'BF16', layers: 2 });
    const inspected = await cli('inspect', '--model', join(out, 'model.gguf'));
    expect(JSON.parse(inspected.stdout)).toMatchObject({ numLayers: 2 });
    await expectFailure(['prune', '--model', dir, '--data', data, '--layers', '1', '--replacement', 'linear', '--gguf', 'f16', '--out', out], /a LINEAR replacement cannot be expressed in llama.cpp/);
  });
});
