/**
 * The engine's GGUF export against readers it did not write, on SmolLM2-135M-Instruct pruned with NONE
 * (layers 12..18 removed: 30 → 23), exported as Q8_0 and F16 with the source GGUF's tokenizer, and as
 * Q8_0 with the tokenizer metadata written from the export's tokenizer.json:
 *   1. llama.cpp's gguf-py reads every tensor (`gguf.quants.dequantize`) to the values the engine's reader
 *      gives (bit-exact expected: both compute d·q in float32, or widen f16);
 *   2. llama.cpp (llama-cpp-python) loads the file and tokenizes a few texts as the engine does from the
 *      same file's tokenizer metadata;
 *   3. llama.cpp's next-token top-1 at every position of a few prompts equals the engine's on the same
 *      file. llama.cpp quantizes activations to 8 bits for Q8_0 (and to f16 for F16) matrix products,
 *      the engine multiplies float32 activations with the dequantized weights: near-ties may flip, so
 *      top-1 equal at ≥ 95 % of positions is required; the maximum |Δlogit| is printed.
 *
 *   npm run bench:gguf-export -w services/engine
 *
 * Needs the Python environment bench/gguf-reference.bench.ts creates (`npm run bench:gguf`):
 * `$STREAMLINE_GGUF_PYTHON`, else ~/.cache/streamline/pyref/bin/python; and the fetched SmolLM2.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { testModelPath } from '@streamline/testing/test-models';
import { GgufFile } from '../src/formats/gguf.js';
import { exportGguf, type GgufExportType } from '../src/formats/gguf-export.js';
import { writeHfFolder } from '../src/formats/hf-folder.js';
import type { HostTensor } from '../src/formats/host-tensor.js';
import { loadModel } from '../src/models/model.js';
import { createRuntime } from '../src/runtime/create-runtime.js';
import { makeBatch } from '../src/runtime/runtime.js';
import { ggufTokenizerFiles } from '../src/tokenizers/gguf-tokenizer.js';
import { loadTokenizer } from '../src/tokenizers/tokenizer.js';

const SCRIPT = fileURLToPath(new URL('./gguf_reference.py', import.meta.url));
const DROPPED = { start: 12, count: 7 };
const TOP1_REQUIRED = 0.95;
const PROMPTS = [
  'The capital of France is',
  '<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n',
  'def fibonacci(n):\n    if n < 2:\n        return n\n    return',
  'Photosynthesis is the process by which green plants',
];

function python(): string {
  const path = process.env.STREAMLINE_GGUF_PYTHON ?? join(homedir(), '.cache', 'streamline', 'pyref', 'bin', 'python');
  if (!existsSync(path)) throw new Error(`${path} does not exist: run npm run bench:gguf -w services/engine first (it creates the environment)`);
  return path;
}

function run(command: string, args: string[]): void {
  const result = spawnSync(command, args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${command} ${args.slice(0, 2).join(' ')} failed: ${(result.stderr ?? String(result.error)).trim().split('\n').slice(-3).join(' | ')}`);
}

function prunedHfFolder(source: string, dir: string): void {
  const model = loadModel(source);
  const weights = new Map<string, HostTensor>();
  for (const [name, tensor] of model.weights) {
    const layer = /^model\.layers\.(\d+)\.(.*)$/.exec(name);
    if (!layer || Number(layer[1]) < DROPPED.start) weights.set(name, tensor);
    else if (Number(layer[1]) >= DROPPED.start + DROPPED.count) weights.set(`model.layers.${Number(layer[1]) - DROPPED.count}.${layer[2]}`, tensor);
  }
  writeHfFolder(dir, { config: { ...model.hfConfig, num_hidden_layers: model.config.numLayers - DROPPED.count }, weights, dtype: 'F32' });
  for (const [name, bytes] of Object.entries(ggufTokenizerFiles(source))) writeFileSync(join(dir, name), bytes);
}

function ggufPyReads(py: string, gguf: string, scratch: string): boolean {
  run(py, [SCRIPT, 'dequant', gguf, scratch]);
  const index: { tensors: { name: string; type: string; shape: number[]; offset: number; count: number }[] } = JSON.parse(readFileSync(join(scratch, 'dequant.json'), 'utf8'));
  const file = GgufFile.open(gguf);
  const fd = openSync(join(scratch, 'dequant.f32'), 'r');
  let unequal = 0;
  let maxAbs = 0;
  try {
    if (index.tensors.length !== file.tensors.size) throw new Error(`gguf-py reads ${index.tensors.length} tensors, the engine ${file.tensors.size}`);
    for (const t of index.tensors) {
      const engine = file.read(t.name);
      if (engine.shape.join() !== t.shape.join()) throw new Error(`${t.name}: engine shape [${engine.shape}] but gguf-py [${t.shape}]`);
      const reference = new Float32Array(t.count);
      readSync(fd, new Uint8Array(reference.buffer), 0, 4 * t.count, 4 * t.offset);
      for (let i = 0; i < t.count; i++) {
        const d = Math.abs(reference[i] - engine.data[i]);
        if (d !== 0) unequal++;
        maxAbs = Math.max(maxAbs, d);
      }
    }
  } finally {
    closeSync(fd);
    file.close();
  }
  console.log(`  gguf-py reads ${index.tensors.length} tensors: ${unequal} values differ from the engine's reader (max |Δ| ${maxAbs})`);
  return unequal === 0;
}

async function llamaCppAgrees(py: string, gguf: string, scratch: string): Promise<boolean> {
  const tokenizer = await loadTokenizer(gguf);
  const ids = PROMPTS.map((text) => tokenizer.encode(text, { bos: false }));
  writeFileSync(join(scratch, 'texts.json'), JSON.stringify(PROMPTS));
  run(py, [SCRIPT, 'tokenize', gguf, join(scratch, 'texts.json'), join(scratch, 'tokens.json')]);
  const llamaTokens: number[][] = JSON.parse(readFileSync(join(scratch, 'tokens.json'), 'utf8')).llama_cpp;
  const sameTokens = PROMPTS.filter((_, i) => llamaTokens[i].join() === ids[i].join()).length;
  console.log(`  llama.cpp tokenizes ${sameTokens}/${PROMPTS.length} prompts as the engine does from the file's tokenizer metadata`);

  writeFileSync(join(scratch, 'ids.json'), JSON.stringify(ids));
  run(py, [SCRIPT, 'logits', gguf, join(scratch, 'ids.json'), join(scratch, 'logits.f32')]);
  const reference = new Float32Array(readFileSync(join(scratch, 'logits.f32')).buffer.slice(0));
  const runtime = await createRuntime(loadModel(gguf), { runtime: 'onnx' });
  let positions = 0;
  let agree = 0;
  let maxAbs = 0;
  let offset = 0;
  try {
    for (const sequence of ids) {
      const logits = (await runtime.forward(makeBatch([sequence]), { logits: true })).logits!;
      const vocab = logits.shape[logits.shape.length - 1];
      for (let p = 0; p < sequence.length; p++) {
        let [bestEngine, bestLlama] = [0, 0];
        for (let v = 0; v < vocab; v++) {
          const e = logits.data[p * vocab + v];
          const l = reference[offset + p * vocab + v];
          maxAbs = Math.max(maxAbs, Math.abs(e - l));
          if (e > logits.data[p * vocab + bestEngine]) bestEngine = v;
          if (l > reference[offset + p * vocab + bestLlama]) bestLlama = v;
        }
        positions++;
        if (bestEngine === bestLlama) agree++;
      }
      offset += sequence.length * vocab;
    }
  } finally {
    await runtime.dispose();
  }
  console.log(`  llama.cpp next-token top-1 equals the engine's at ${agree}/${positions} positions (required ${TOP1_REQUIRED * 100} %); max |Δlogit| ${maxAbs.toFixed(3)}`);
  return sameTokens === PROMPTS.length && agree / positions >= TOP1_REQUIRED;
}

async function main(): Promise<void> {
  const source = testModelPath('smollm2');
  if (!source) throw new Error('SmolLM2 is not fetched: npm run fetch:test-models');
  const py = python();
  const scratch = mkdtempSync(join(tmpdir(), 'streamline-gguf-export-bench-'));
  let ok = true;
  try {
    const hfDir = join(scratch, 'pruned');
    prunedHfFolder(source, hfDir);
    // the tokenizer copied from the source GGUF, and (last) written from the exported tokenizer.json
    const variants: [GgufExportType, string | undefined][] = [['Q8_0', source], ['F16', source], ['Q8_0', undefined]];
    for (const [type, tokenizerGguf] of variants) {
      const gguf = join(scratch, `pruned.${type}.gguf`);
      const summary = exportGguf(hfDir, gguf, { type, tokenizerGguf });
      console.log(`SmolLM2-135M pruned (NONE, layers ${DROPPED.start}..${DROPPED.start + DROPPED.count - 1} removed) → ${type} GGUF, ${summary.layers} layers, ${summary.tensors} tensors, tokenizer from ${summary.tokenizer === 'gguf' ? 'the source GGUF' : summary.tokenizer}`);
      ok = ggufPyReads(py, gguf, scratch) && ok;
      ok = (await llamaCppAgrees(py, gguf, scratch)) && ok;
      rmSync(gguf);
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  console.log(ok ? 'PASS' : 'FAIL');
  if (!ok) process.exitCode = 1;
}

await main();
