/**
 * The engine's GGUF import against references it did not write, on SmolLM2-135M-Instruct (GGUF Q4_1,
 * fetched by `npm run fetch:test-models`):
 *   1. dequantization of every tensor against llama.cpp's gguf-py (`gguf.quants.dequantize`);
 *   2. tokenization against llama.cpp itself (llama-cpp-python, special tokens parsed) and against a
 *      Hugging Face `tokenizers` BPE built from the same vocabulary and merges; the same vocabulary under
 *      each other pre-tokenizer the engine implements, against llama.cpp; and the Llama-2 SentencePiece
 *      vocabulary (../shared) as a GGUF `llama` vocabulary, against llama.cpp;
 *   3. next-token logits at every position of a few prompts against llama.cpp's CPU backend, on the
 *      original Q4_1 file and on an F32 copy (every tensor dequantized by gguf-py), where llama.cpp
 *      computes in float32 as the engine does.
 *
 *   npm run bench:gguf -w services/engine
 *
 * The Python side (bench/gguf_reference.py) runs in a virtual environment outside the repository:
 * `$STREAMLINE_GGUF_PYTHON`, else ~/.cache/streamline/pyref/bin/python, created on first use with
 * gguf, numpy, tokenizers and llama-cpp-python (which compiles llama.cpp: ~5 minutes on 2 cores).
 *
 * Tolerances for 3. F32 copy: the same float32 weights on both sides (llama.cpp with a float32 KV
 * cache), only the order of accumulation differs: top-1 equal at every position and |Δlogit| ≤ 0.001.
 * Q4_1 file: llama.cpp multiplies the Q4_1 weights with activations it quantizes to 8 bits per block
 * (Q8_1), the engine multiplies float32 activations with the dequantized weights — not the same
 * arithmetic, so near-ties may flip: top-1 equal at ≥ 95 % of positions and |Δlogit| ≤ 2 (logits span
 * ≈ 30). The bench prints the measured maximum and mean differences.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, closeSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { testModelPath } from '@streamline/testing/test-models';
import { GgufFile } from '../src/formats/gguf.js';
import { ggufBytes, type GgufKv } from '../test/fixtures/gguf-writer.js';
import { Llama2cTokenizer } from '../src/tokenizers/llama2c-tokenizer.js';
import { loadModel } from '../src/models/model.js';
import { createRuntime } from '../src/runtime/create-runtime.js';
import { makeBatch } from '../src/runtime/runtime.js';
import { loadTokenizer } from '../src/tokenizers/tokenizer.js';

const SCRIPT = fileURLToPath(new URL('./gguf_reference.py', import.meta.url));
const PYTHON_PACKAGES = ['gguf==0.19.0', 'numpy', 'tokenizers', 'llama-cpp-python==0.3.36'];
/** [top-1 agreement required, max |Δlogit|] for llama.cpp running the F32 copy and the original Q4_1 file. */
const TOLERANCE = { f32: { top1: 1, maxAbs: 1e-3 }, q4_1: { top1: 0.95, maxAbs: 2 } } as const;

const TEXTS = [
  'The capital of France is',
  'Hello world! 12345 numbers and   spaces\n\nnew lines\ttabs',
  '<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n',
  'Ünïcödé façade — naïve café 日本語のテキスト 🚀🔥 emoji',
  'def f(x):\n    return x**2  # comment',
  "I'm sure they'll've done it, we're 'quoted' don't",
  '',
  ' leading space and trailing ',
  '<|endoftext|>after',
  "IT'S 1234567 O'Neil's   \n \n\tX YOU'LL",
  'Wow!!! ... ?? (a+b)*c = 42;\r\n next\u00a0line',
];

/** Pre-tokenizers of the table in src/tokenizers/gguf-tokenizer.ts, each checked against llama.cpp on SmolLM2's vocabulary. */
const PRE_VARIANTS = ['default', 'gpt-2', 'starcoder', 'llama-bpe', 'dbrx', 'qwen2'];

const PROMPTS = [
  'The capital of France is',
  '<|im_start|>user\nWhat is the tallest mountain in the world?<|im_end|>\n<|im_start|>assistant\n',
  'Once upon a time, there was a little girl named Lily. She loved to play outside in the sunshine. One day,',
  'def fibonacci(n):\n    if n < 2:\n        return n\n    return',
  'Photosynthesis is the process by which green plants',
];

function python(): string {
  const configured = process.env.STREAMLINE_GGUF_PYTHON ?? join(homedir(), '.cache', 'streamline', 'pyref', 'bin', 'python');
  if (existsSync(configured)) return configured;
  if (process.env.STREAMLINE_GGUF_PYTHON) throw new Error(`STREAMLINE_GGUF_PYTHON=${configured} does not exist`);
  const venv = dirname(dirname(configured));
  console.log(`creating ${venv} with ${PYTHON_PACKAGES.join(', ')} (llama-cpp-python compiles llama.cpp: minutes)`);
  mkdirSync(dirname(venv), { recursive: true });
  run('python3', ['-m', 'venv', venv]);
  run(configured, ['-m', 'pip', 'install', '--quiet', ...PYTHON_PACKAGES], { CMAKE_ARGS: '-DGGML_NATIVE=ON' });
  return configured;
}

function run(command: string, args: string[], env: Record<string, string> = {}): void {
  const result = spawnSync(command, args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', env: { ...process.env, ...env } });
  if (result.status !== 0) throw new Error(`${command} ${args.slice(0, 2).join(' ')} failed: ${(result.stderr ?? String(result.error)).trim().split('\n').slice(-3).join(' | ')}`);
}

function dequantization(py: string, gguf: string, scratch: string): void {
  run(py, [SCRIPT, 'dequant', gguf, scratch]);
  const index: { tensors: { name: string; type: string; shape: number[]; offset: number; count: number }[] } = JSON.parse(readFileSync(join(scratch, 'dequant.json'), 'utf8'));
  const file = GgufFile.open(gguf);
  const fd = openSync(join(scratch, 'dequant.f32'), 'r');
  const byType = new Map<string, { tensors: number; values: number; maxAbsDiff: number; unequal: number }>();
  try {
    for (const t of index.tensors) {
      const engine = file.read(t.name);
      if (engine.shape.join() !== t.shape.join()) throw new Error(`${t.name}: engine shape [${engine.shape}] but gguf-py [${t.shape}]`);
      const reference = new Float32Array(t.count);
      readSync(fd, new Uint8Array(reference.buffer), 0, 4 * t.count, 4 * t.offset);
      const stats = byType.get(t.type) ?? { tensors: 0, values: 0, maxAbsDiff: 0, unequal: 0 };
      stats.tensors++;
      stats.values += t.count;
      for (let i = 0; i < t.count; i++) {
        if (engine.data[i] === reference[i]) continue;
        stats.unequal++;
        stats.maxAbsDiff = Math.max(stats.maxAbsDiff, Math.abs(engine.data[i] - reference[i]));
      }
      byType.set(t.type, stats);
    }
  } finally {
    closeSync(fd);
    file.close();
    rmSync(join(scratch, 'dequant.f32'), { force: true });
  }
  console.log(`1. dequantization, all ${index.tensors.length} tensors, engine vs gguf-py:`);
  for (const [type, s] of byType) {
    console.log(`   ${type.padEnd(5)} ${String(s.tensors).padStart(4)} tensors ${String(s.values).padStart(10)} values: max |diff| ${s.maxAbsDiff}, ${s.unequal} values not bit-equal`);
  }
  if ([...byType.values()].some((s) => s.unequal > 0)) process.exitCode = 1;
}

type TokenReference = { llama_cpp: number[][] | null; hf_tokenizers: number[][] | null };

function referenceTokens(py: string, gguf: string, texts: string[], scratch: string): TokenReference {
  writeFileSync(join(scratch, 'texts.json'), JSON.stringify(texts));
  run(py, [SCRIPT, 'tokenize', gguf, join(scratch, 'texts.json'), join(scratch, 'tokens.json')]);
  return JSON.parse(readFileSync(join(scratch, 'tokens.json'), 'utf8'));
}

function compareTokens(label: string, engine: number[][], reference: number[][] | null): void {
  if (reference === null) {
    console.log(`   ${label}: not available`);
    return;
  }
  const same = engine.filter((e, i) => JSON.stringify(e) === JSON.stringify(reference[i])).length;
  console.log(`   ${label}: ${same}/${engine.length} texts identical (${engine.flat().length} tokens)`);
  engine.forEach((e, i) => {
    if (JSON.stringify(e) !== JSON.stringify(reference[i])) console.log(`     text ${i}: engine ${JSON.stringify(e)} reference ${JSON.stringify(reference[i])}`);
  });
  if (same !== engine.length) process.exitCode = 1;
}

async function tokenization(py: string, gguf: string, scratch: string): Promise<void> {
  const tokenizer = await loadTokenizer(gguf);
  const engine = TEXTS.map((text) => tokenizer.encode(text, { bos: false }));
  console.log(`2. tokenization of ${TEXTS.length} texts (special tokens, digits, contractions, Unicode, emoji, code, \\r\\n, NBSP):`);
  const reference = referenceTokens(py, gguf, TEXTS, scratch);
  compareTokens('SmolLM2 (gpt2, pre smollm) vs llama.cpp (llama-cpp-python)', engine, reference.llama_cpp);
  compareTokens('SmolLM2 (gpt2, pre smollm) vs HF tokenizers (same vocab/merges)', engine, reference.hf_tokenizers);

  for (const pre of PRE_VARIANTS) {
    const variant = join(scratch, `pre-${pre}.gguf`);
    run(py, [SCRIPT, 'pre-variant', gguf, pre, variant]);
    const variantTokenizer = await loadTokenizer(variant);
    compareTokens(`SmolLM2's vocabulary with pre ${pre} vs llama.cpp`, TEXTS.map((text) => variantTokenizer.encode(text, { bos: false })), referenceTokens(py, variant, TEXTS, scratch).llama_cpp);
  }

  // The Llama-2 SentencePiece vocabulary (../shared) as a GGUF llama vocabulary
  const sharedBin = fileURLToPath(new URL('../../../../shared/models/llama2-tokenizer/tokenizer.bin', import.meta.url));
  if (!existsSync(sharedBin)) {
    console.log('   Llama-2 SentencePiece vocabulary: ../shared absent, not checked');
    return;
  }
  const llama2 = Llama2cTokenizer.fromBytes(readFileSync(sharedBin), sharedBin);
  const tokens = llama2.pieces.map((piece) => Buffer.from(piece, 'latin1').toString('utf8').replaceAll(' ', '\u2581'));
  const kvs: GgufKv[] = [
    ['general.architecture', 'STRING', 'llama'],
    ['llama.block_count', 'UINT32', 1],
    ['llama.context_length', 'UINT32', 4096],
    ['llama.embedding_length', 'UINT32', 64],
    ['llama.feed_forward_length', 'UINT32', 128],
    ['llama.attention.head_count', 'UINT32', 8],
    ['llama.attention.layer_norm_rms_epsilon', 'FLOAT32', 1e-5],
    ['tokenizer.ggml.model', 'STRING', 'llama'],
    ['tokenizer.ggml.tokens', 'ARRAY', tokens, 'STRING'],
    ['tokenizer.ggml.scores', 'ARRAY', Array.from(llama2.scores), 'FLOAT32'],
    ['tokenizer.ggml.token_type', 'ARRAY', tokens.map((_, id) => (id === 0 ? 2 : id <= 2 ? 3 : id < 259 ? 6 : 1)), 'INT32'],
    ['tokenizer.ggml.bos_token_id', 'UINT32', 1],
    ['tokenizer.ggml.eos_token_id', 'UINT32', 2],
    ['tokenizer.ggml.unknown_token_id', 'UINT32', 0],
  ];
  const spm = join(scratch, 'llama2-vocab.gguf');
  writeFileSync(spm, ggufBytes(kvs, []));
  const spmTokenizer = await loadTokenizer(spm);
  const story = fileURLToPath(new URL('../../../../shared/data/text/tinystories_val_excerpt.txt', import.meta.url));
  const spmTexts = [...TEXTS.filter((text) => !text.includes('<|')), readFileSync(story, 'utf8').slice(0, 4000)];
  compareTokens('Llama-2 SentencePiece vocabulary (llama) vs llama.cpp', spmTexts.map((text) => spmTokenizer.encode(text, { bos: false })), referenceTokens(py, spm, spmTexts, scratch).llama_cpp);
}

async function logits(py: string, gguf: string, scratch: string): Promise<void> {
  const tokenizer = await loadTokenizer(gguf);
  const sequences = PROMPTS.map((prompt) => tokenizer.encode(prompt, { bos: false }));
  writeFileSync(join(scratch, 'ids.json'), JSON.stringify(sequences));
  const f32Copy = join(scratch, 'f32-copy.gguf');
  run(py, [SCRIPT, 'f32-copy', gguf, f32Copy]);
  const model = loadModel(gguf);
  const runtime = await createRuntime(model, { runtime: 'onnx' });
  try {
    const engine: Float32Array[] = [];
    for (const ids of sequences) engine.push((await runtime.forward(makeBatch([ids]), { logits: true })).logits!.data);
    console.log(`3. next-token logits at every position, engine (${runtime.description}, float32 on the dequantized weights) vs llama.cpp (CPU):`);
    for (const [label, file, tolerance] of [
      ['llama.cpp on the F32 copy (float32 matmuls, float32 KV cache)', f32Copy, TOLERANCE.f32],
      ['llama.cpp on the Q4_1 file (Q4_1 × Q8_1 matmuls)', gguf, TOLERANCE.q4_1],
    ] as const) {
      run(py, [SCRIPT, 'logits', file, join(scratch, 'ids.json'), join(scratch, 'logits.f32')]);
      const bytes = readFileSync(join(scratch, 'logits.f32'));
      compareLogits(label, sequences, engine, new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4), model.config.vocabSize, tolerance);
    }
  } finally {
    await runtime.dispose();
    rmSync(f32Copy, { force: true });
  }
}

function compareLogits(label: string, sequences: number[][], engineLogits: Float32Array[], reference: Float32Array, vocab: number, tolerance: { top1: number; maxAbs: number }): void {
  console.log(`   ${label}:`);
  let offset = 0;
  let worst = 0;
  let top1Agree = 0;
  let positions = 0;
  for (const [p, ids] of sequences.entries()) {
      const engine = engineLogits[p];
      let maxDiff = 0;
      let sumDiff = 0;
      let agree = 0;
      for (let t = 0; t < ids.length; t++) {
        const e = engine.subarray(t * vocab, (t + 1) * vocab);
        const r = reference.subarray(offset + t * vocab, offset + (t + 1) * vocab);
        let eBest = 0;
        let rBest = 0;
        for (let v = 0; v < vocab; v++) {
          const diff = Math.abs(e[v] - r[v]);
          maxDiff = Math.max(maxDiff, diff);
          sumDiff += diff;
          if (e[v] > e[eBest]) eBest = v;
          if (r[v] > r[rBest]) rBest = v;
        }
        if (eBest === rBest) agree++;
      }
      offset += ids.length * vocab;
      worst = Math.max(worst, maxDiff);
      top1Agree += agree;
      positions += ids.length;
      console.log(`     prompt ${p} (${String(ids.length).padStart(2)} tokens): top-1 equal at ${agree}/${ids.length} positions, max |Δlogit| ${maxDiff.toFixed(4)}, mean |Δlogit| ${(sumDiff / (ids.length * vocab)).toFixed(4)}`);
  }
  const pass = top1Agree >= tolerance.top1 * positions && worst <= tolerance.maxAbs;
  console.log(`     ${pass ? 'PASS' : 'FAIL'}: top-1 equal at ${top1Agree}/${positions} positions (required ${Math.round(tolerance.top1 * 100)} %); max |Δlogit| ${worst.toFixed(4)} (tolerance ${tolerance.maxAbs})`);
  if (!pass) process.exitCode = 1;
}

async function main(): Promise<void> {
  const gguf = testModelPath('smollm2');
  if (gguf === null) return;
  const py = python();
  const scratch = mkdtempSync(join(tmpdir(), 'streamline-gguf-bench-'));
  try {
    console.log(`GGUF import vs llama.cpp's references: ${gguf}`);
    dequantization(py, gguf, scratch);
    await tokenization(py, gguf, scratch);
    await logits(py, gguf, scratch);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

await main();
