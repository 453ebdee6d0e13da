/**
 * Hidden-state collection throughput on a random 8-layer Llama (hidden 512, 8 heads, 4 KV heads,
 * intermediate 1376, vocab 32000, float32), 32 sequences × 128 tokens, for both runtimes, side by side with
 * a plain PyTorch implementation of the same forward pass when python3 can import torch (Debian's
 * python3-torch). The engine's own figure is what `streamline-engine importance` reports in a fresh
 * process (the layer-streamed ONNX pass every plan uses: inspection, reading, session creation and
 * scoring included), best of three; the whole-model runtimes are measured in-process, steady state and
 * first pass. Then peak memory (max RSS of a fresh process) as the number of samples grows.
 *
 *   npm run bench -w services/engine            (from the repository root)
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { computeImportance } from '../src/importance.js';
import { loadModel } from '../src/models/model.js';
import { createRuntime } from '../src/runtime/create-runtime.js';
import { makeBatch, type RuntimeName } from '../src/runtime/runtime.js';
import { mulberry32 } from '../src/random.js';
import { d512Shape, writeRandomLlama } from './random-llama.js';

const LAYERS = d512Shape().numLayers;
const SEQUENCES = 32;
const SEQ_LEN = 128;
const BATCH_SIZE = 8;
const REPEATS = 3;

function random(seed: number): () => number {
  const uniform = mulberry32(seed);
  return () => 2 * uniform() - 1;
}

function randomIds(count: number, seed: number): number[][] {
  const next = random(seed);
  return Array.from({ length: count }, () => Array.from({ length: SEQ_LEN }, () => Math.floor((next() + 1) * 16000)));
}

async function measure(dir: string, ids: number[][], runtimeName: RuntimeName, workers?: number) {
  const model = loadModel(dir);
  const runtime = await createRuntime(model, { runtime: runtimeName, workers });
  try {
    // Whole pass: the importance figure a fresh run reports, graph build and session creation included.
    const whole = await computeImportance(runtime, LAYERS, ids, SEQ_LEN, { batchSize: BATCH_SIZE });
    let best = { seconds: Infinity, tokensPerSecond: 0, checksum: 0, wholeTokensPerSecond: whole.tokensPerSecond };
    for (let r = 0; r < REPEATS; r++) {
      const profile = await computeImportance(runtime, LAYERS, ids, SEQ_LEN, { batchSize: BATCH_SIZE });
      if (profile.seconds < best.seconds) best = { ...best, seconds: profile.seconds, tokensPerSecond: profile.tokensPerSecond };
    }
    const last = await runtime.forward(makeBatch(ids.slice(ids.length - BATCH_SIZE)), { hiddenStates: true });
    best.checksum = Array.from(last.hiddenStates![LAYERS].data.subarray(0, 4)).reduce((a, b) => a + b, 0);
    return { ...best, description: runtime.description };
  } finally {
    await runtime.dispose();
  }
}

/** `streamline-engine importance` in a fresh process, as a user runs it: its reported whole-pass tokens/s. */
function engineCli(dir: string, idsJsonl: string): { tokensPerSecond: number; seconds: number } {
  const bin = fileURLToPath(new URL('../bin/streamline-engine.js', import.meta.url));
  const args = [bin, 'importance', '--model', dir, '--data', idsJsonl, '--samples', String(SEQUENCES), '--seq-len', String(SEQ_LEN), '--block-sizes', 'all', '--batch-size', String(BATCH_SIZE), '--out', join(dir, 'importance.json')];
  const result = spawnSync(process.execPath, args, { encoding: 'utf8' });
  const reported = /(\d+) tokens in ([\d.]+) s \((\d+) tokens\/s\)/.exec(result.stdout + result.stderr);
  if (result.status !== 0 || !reported) throw new Error(`streamline-engine importance failed: ${result.stderr.trim().split('\n').pop()}`);
  return { seconds: Number(reported[2]), tokensPerSecond: Number(reported[3]) };
}

function torchReference(dir: string, idsPath: string): { tokensPerSecond: number; seconds: number; torch: string; threads: number; checksum: number } | string {
  const script = fileURLToPath(new URL('./torch_reference.py', import.meta.url));
  for (const python of ['/usr/bin/python3', 'python3']) {
    const result = spawnSync(python, [script, dir, idsPath, String(BATCH_SIZE), String(REPEATS)], { encoding: 'utf8' });
    if (result.status === 0) return JSON.parse(result.stdout.trim().split('\n').pop()!);
    if (result.stderr?.includes('No module named')) continue;
    if (result.error) continue;
    return `failed: ${result.stderr.trim().split('\n').pop()}`;
  }
  return 'not available (install Debian python3-torch to compare)';
}

/** Child mode: collect hidden states for N samples and print this process's peak RSS. */
async function memoryChild(dir: string, samples: number): Promise<void> {
  const model = loadModel(dir);
  const runtime = await createRuntime(model, { runtime: 'onnx' });
  await computeImportance(runtime, LAYERS, randomIds(samples, 9), SEQ_LEN, { batchSize: BATCH_SIZE });
  await runtime.dispose();
  process.stdout.write(JSON.stringify({ maxRssMiB: process.resourceUsage().maxRSS / 1024 }));
}

async function main(): Promise<void> {
  const [mode, dirArg, samplesArg] = process.argv.slice(2);
  if (mode === '--memory-child') return memoryChild(dirArg, Number(samplesArg));

  const root = mkdtempSync(join(tmpdir(), 'streamline-bench-'));
  try {
    const dir = writeRandomLlama(d512Shape(), { dtype: 'F32', parent: root });
    const ids = randomIds(SEQUENCES, 7);
    const idsPath = join(root, 'ids.json');
    writeFileSync(idsPath, JSON.stringify(ids));
    console.log(`hidden-state collection: random 8-layer Llama (d=512, 8 heads, 4 KV heads, ffn 1376, vocab 32000, float32), ${SEQUENCES} × ${SEQ_LEN} tokens, batch ${BATCH_SIZE}, best of ${REPEATS}`);

    const idsJsonl = join(root, 'ids.jsonl');
    writeFileSync(idsJsonl, ids.map((input_ids) => JSON.stringify({ input_ids })).join('\n') + '\n');
    const cliRuns = [0, 1, 2].map(() => engineCli(dir, idsJsonl));
    const cli = cliRuns.reduce((best, run) => (run.tokensPerSecond > best.tokensPerSecond ? run : best));
    console.log(`  engine cli  : ${Math.round(cli.tokensPerSecond)} tokens/s whole pass as \`streamline-engine importance\` reports it (layer-streamed, fresh process; runs: ${cliRuns.map((r) => Math.round(r.tokensPerSecond)).join(', ')})`);
    const onnx = await measure(dir, ids, 'onnx');
    console.log(`  engine onnx : ${Math.round(onnx.tokensPerSecond)} tokens/s steady (${onnx.seconds.toFixed(3)} s), ${Math.round(onnx.wholeTokensPerSecond)} tokens/s whole pass (session creation included) — ${onnx.description}`);
    const tfjs = await measure(dir, ids, 'tfjs', 2);
    console.log(`  engine tfjs : ${Math.round(tfjs.tokensPerSecond)} tokens/s steady (${tfjs.seconds.toFixed(3)} s), ${Math.round(tfjs.wholeTokensPerSecond)} tokens/s whole pass — ${tfjs.description}`);
    const torch = torchReference(dir, idsPath);
    if (typeof torch === 'string') {
      console.log(`  pytorch     : ${torch}`);
    } else {
      console.log(`  pytorch     : ${Math.round(torch.tokensPerSecond)} tokens/s (${torch.seconds.toFixed(3)} s) — torch ${torch.torch}, ${torch.threads} threads`);
      console.log(`  ratio engine / pytorch steady = ${(cli.tokensPerSecond / torch.tokensPerSecond).toFixed(2)} (importance as reported, whole pass; target ≥ 1.5), whole-model onnx ${(onnx.tokensPerSecond / torch.tokensPerSecond).toFixed(2)} steady, ${(onnx.wholeTokensPerSecond / torch.tokensPerSecond).toFixed(2)} first pass`);
      console.log(`  same forward pass: checksum of h[8] onnx ${onnx.checksum.toFixed(5)}, tfjs ${tfjs.checksum.toFixed(5)}, pytorch ${torch.checksum.toFixed(5)}`);
    }

    console.log('peak memory of a fresh process collecting hidden states (onnx):');
    const self = fileURLToPath(import.meta.url);
    for (const samples of [32, 128, 512]) {
      const out = execFileSync(process.execPath, ['--import', 'tsx', self, '--memory-child', dir, String(samples)], { encoding: 'utf8' });
      console.log(`  ${String(samples).padStart(4)} samples × ${SEQ_LEN} tokens: max RSS ${JSON.parse(out).maxRssMiB.toFixed(0)} MiB`);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
