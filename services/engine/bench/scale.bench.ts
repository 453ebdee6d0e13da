/**
 * The engine at real scale: random models of Llama-2-7B's shape (hidden 4096, 32 heads, FFN 11008, vocab
 * 32000, bf16, sharded safetensors), generated one at a time — 4, 8, then 32 layers (2.1, 3.8, 13.5 GB) —
 * in the system's temporary directory, and deleted after (a crashed run's leftovers are removed first).
 * For each, `importance --block-sizes all` on 4 × 64 and 32 × 256 tokens of TinyStories (Llama-2
 * tokenizer), each run in its own process: peak RSS (the kernel's maxrss of that process), wall time, time
 * to the first decoder layer, tokens/s. The whole-model path (`--streaming off`) runs only where its
 * estimated peak (2 × the float32 weights, as measured) fits the memory budget; other rows say so.
 * With --prune, `prune --replacement linear` (2 layers) on the 8-layer model with 32 × 256 calibration
 * tokens: peak RSS, and the exported bf16 checkpoint's logits against the pruned model's before export.
 * With --heal, a LAYER prune healed by distillation on the 8-layer model (the block before the last
 * layer, 8 × 128 tokens, a few steps; bench/scale-heal-child.ts): peak RSS by stage against healing's own
 * memory estimate.
 *
 *   npm run bench:scale -w services/engine [-- --layers 4,8,32] [--tokens 4x64,32x256] [--streaming on|off|both]
 *       [--prune] [--heal] [--big-tokens]   (32 × 256 on the 32-layer model takes ~20 minutes here: off unless --big-tokens)
 *
 * Not a test, not in CI. Takes about 10 minutes here with the defaults (2 cores; more with --prune).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { memoryBudget } from '../src/runtime/memory-budget.js';
import { cleanStaleRandomModels, freeDiskBytes, llama2_7bShape, randomLlamaBytes, removeRandomModel, writeRandomLlama } from './random-llama.js';

const { values } = parseArgs({
  options: {
    layers: { type: 'string', default: '4,8,32' },
    tokens: { type: 'string', default: '4x64,32x256' },
    streaming: { type: 'string', default: 'both' },
    prune: { type: 'boolean', default: false },
    heal: { type: 'boolean', default: false },
    'big-tokens': { type: 'boolean', default: false },
  },
});
const engineDir = fileURLToPath(new URL('..', import.meta.url));
const shared = fileURLToPath(new URL('../../../../shared/', import.meta.url));
const tokenizer = join(shared, 'models/llama2-tokenizer/tokenizer.bin');
const data = join(shared, 'data/text/tinystories_val_excerpt.txt');
const layerCounts = values.layers.split(',').map(Number);
const tokenSets = values.tokens.split(',').map((s) => s.split('x').map(Number) as [number, number]);
const budget = memoryBudget();
const parent = tmpdir();

for (const dir of cleanStaleRandomModels(parent)) console.log(`removed a stale random model: ${dir}`);
const largest = Math.max(...layerCounts.map((n) => randomLlamaBytes(llama2_7bShape(n))));
const free = freeDiskBytes(parent);
if (free < largest * 1.3 + 2e9) {
  console.error(`not enough disk in ${parent}: the largest model needs ${(largest / 1e9).toFixed(1)} GB (+ spill and 2 GB to spare), ${(free / 1e9).toFixed(1)} GB free`);
  process.exit(1);
}
console.log(`$ npm run bench:scale -w services/engine -- ${process.argv.slice(2).join(' ')}`);
console.log(`bench:scale — random Llama-2-7B-shaped bf16 models in ${parent}; memory budget ${(budget / 1024 ** 3).toFixed(1)} GiB (default: half the available memory); ${availableParallelism()} cores; load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);

interface Run {
  peakRssBytes: number;
  wallSeconds: number;
  firstLayerSeconds: number | null;
  tokensPerSecond: number | null;
  ok: boolean;
  tail: string;
}

/** Runs a command under /usr/bin/time, timing its first "layer 1/" progress line. */
function measure(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run & { stdout: string }> {
  return new Promise((resolve) => {
    const started = performance.now();
    const child = spawn('/usr/bin/time', ['-f', 'MAXRSS %M', ...args], { cwd: engineDir, env: { ...process.env, ...env } });
    let stderr = '';
    let stdout = '';
    let firstLayer: number | null = null;
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
      if (firstLayer === null && /layer (1\/|0\/)/.test(stderr)) firstLayer = (performance.now() - started) / 1000;
    });
    child.on('close', (code) => {
      const rss = Number(/MAXRSS (\d+)/.exec(stderr)?.[1] ?? 0) * 1024;
      const tps = /\((\d+) tokens\/s\)/.exec(stderr);
      resolve({ peakRssBytes: rss, wallSeconds: (performance.now() - started) / 1000, firstLayerSeconds: firstLayer, tokensPerSecond: tps ? Number(tps[1]) : null, ok: code === 0, tail: stderr.split('\n').slice(-4).join('\n'), stdout });
    });
  });
}

const gib = (bytes: number) => `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
const rows: string[] = ['| layers | bf16 on disk | tokens | path | peak RSS | wall | first layer | tokens/s |', '|---|---|---|---|---|---|---|---|'];
const print = (row: string) => {
  rows.push(row);
  console.log(row);
};

for (const layers of layerCounts) {
  const shape = llama2_7bShape(layers);
  const generated = performance.now();
  const model = writeRandomLlama(shape, { parent, maxShardBytes: 1024 ** 3 });
  const diskBytes = randomLlamaBytes(shape);
  console.log(`generated ${model} (${(diskBytes / 1e9).toFixed(1)} GB) in ${((performance.now() - generated) / 1000).toFixed(0)} s`);
  try {
    const parameters = diskBytes / 2;
    for (const [samples, seqLen] of tokenSets) {
      if (layers >= 32 && samples * seqLen > 4096 && !values['big-tokens']) {
        print(`| ${layers} | ${(diskBytes / 1e9).toFixed(1)} GB | ${samples}×${seqLen} | streamed | skipped (about 20 minutes here; --big-tokens runs it) | | | |`);
        continue;
      }
      const paths = values.streaming === 'both' ? ['on', 'off'] : [values.streaming];
      for (const streaming of paths) {
        const label = streaming === 'on' ? 'streamed' : 'whole model';
        // The whole-model path holds every weight as float32 about twice (measured: 7.95 GB for 1.07 B parameters).
        const wholeEstimate = parameters * 4 * 2;
        if (streaming === 'off' && wholeEstimate > budget) {
          print(`| ${layers} | ${(diskBytes / 1e9).toFixed(1)} GB | ${samples}×${seqLen} | ${label} | does not fit the budget (≈ ${gib(wholeEstimate)} > ${gib(budget)}) | | | |`);
          continue;
        }
        const out = join(mkdtempSync(join(parent, 'streamline-bench-scale-')), 'importance.json');
        const run = await measure(['node', 'bin/streamline-engine.js', 'importance', '--model', model, '--tokenizer', tokenizer, '--data', data, '--samples', String(samples), '--seq-len', String(seqLen), '--block-sizes', 'all', '--streaming', streaming, '--out', out]);
        rmSync(join(out, '..'), { recursive: true, force: true });
        if (!run.ok) {
          print(`| ${layers} | ${(diskBytes / 1e9).toFixed(1)} GB | ${samples}×${seqLen} | ${label} | failed: ${run.tail.replace(/\n/g, ' ')} | | | |`);
          continue;
        }
        print(`| ${layers} | ${(diskBytes / 1e9).toFixed(1)} GB | ${samples}×${seqLen} | ${label} | ${gib(run.peakRssBytes)} | ${run.wallSeconds.toFixed(1)} s | ${run.firstLayerSeconds?.toFixed(1) ?? '—'} s | ${run.tokensPerSecond ?? '—'} |`);
      }
    }
    if (values.prune && layers === 8) {
      const work = mkdtempSync(join(parent, 'streamline-bench-scale-prune-'));
      try {
        const run = await measure(['node', '--import', 'tsx', 'bench/scale-prune-child.ts', model, tokenizer, data, join(work, 'work'), join(work, 'out'), '32', '256']);
        const result = run.ok ? JSON.parse(run.stdout.trim().split('\n').pop()!) : null;
        console.log(
          run.ok
            ? `prune --replacement linear, 8 layers, 32×256 calibration tokens: peak RSS ${gib(run.peakRssBytes)}, wall ${run.wallSeconds.toFixed(0)} s; removed ${result.removedLayers}; exported bf16 checkpoint reloaded: max |Δlogit| ${result.maxAbsLogitDifference.toExponential(2)} over ${result.logits} logits; peak RSS by stage (GiB) ${JSON.stringify(result.stagePeakRssGiB)}`
            : `prune failed: ${run.tail}`,
        );
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    }
    if (values.heal && layers === 8) {
      const work = mkdtempSync(join(parent, 'streamline-bench-scale-heal-'));
      try {
        const run = await measure(['node', '--import', 'tsx', 'bench/scale-heal-child.ts', model, tokenizer, data, join(work, 'work'), join(work, 'out')]);
        const result = run.ok ? JSON.parse(run.stdout.trim().split('\n').pop()!) : null;
        console.log(
          run.ok
            ? `prune --replacement layer --heal, 8 layers, block ${result.removedLayers}, 8×128 tokens, ${result.healing?.steps ?? '?'} healing steps: peak RSS ${gib(run.peakRssBytes)} (healing's estimate ${result.estimateGiB} GiB), wall ${run.wallSeconds.toFixed(0)} s; peak RSS by stage (GiB) ${JSON.stringify(result.stagePeakRssGiB)}`
            : `healed prune failed: ${run.tail}`,
        );
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    }
  } finally {
    removeRandomModel(model);
  }
}
console.log(`\n${rows.join('\n')}`);
