/**
 * Replacement-training throughput, side by side in one run: the engine's trainers (onnx: forward, backward
 * and AdamW as ONNX Runtime graphs; tfjs: TensorFlow.js autodiff) and plain PyTorch
 * (bench/torch_training_reference.py, best of 1 and 2 threads) on the same replacement, the same
 * hidden-state pairs, batch 8, AdamW — steady state: 3 warm-up steps, then timed steps with no validation
 * or checkpoints. LINEAR's row is the whole closed-form fit (normal equations, float64 Cholesky solve,
 * loss pass) over the 32 windows — the engine's figure is the best of three warm fits in the same process, the first
 * (runtime load and sessions included) printed beneath — and its "first loss" is the fit's training MSE. Each measurement runs in a
 * fresh process, whose peak RSS is reported.
 *
 *   stories260K (d 64, 8 heads, 4 KV heads), 256-token windows of TinyStories, block 2–3
 *   random 8-layer Llama (d 512, 8 heads, 4 KV heads, FFN 1376) — the shape bench/hidden-states.bench.ts
 *   generates — 128-token windows of random ids, block 3–4
 *   random 8-layer Llama-2-7B-shaped bf16 model (d 4096, 32 heads, FFN 11008; bench/random-llama.ts, 3.8 GB,
 *   generated in the temporary directory and deleted after), LAYER only, 8 windows × 128 tokens, block 1–2,
 *   1 warm-up and 3 timed steps, PyTorch at 2 threads only, one round (about 10 minutes here); the tfjs
 *   column says "does not fit" (a 202 M-parameter layer with its gradients and AdamW moments is 3.2 GB of
 *   float32, beyond wasm's 4 GiB heap once activations are added). SEVEN_B=off skips it.
 *
 *   npm run bench:training -w services/engine      (from the repository root; not part of CI)
 *
 * Engine and PyTorch rows alternate, and the whole table is measured ROUNDS times (best kept): the cores
 * here are shared, so note `uptime` beside the figures.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { transpose2d, type HostTensor } from '../src/formats/host-tensor.js';
import { SafetensorsFile, writeSafetensors } from '../src/formats/safetensors.js';
import { inspectModel, type ModelInfo } from '../src/models/model.js';
import { openWeightReader } from '../src/models/weight-reader.js';
import { memoryBudget } from '../src/runtime/memory-budget.js';
import { StreamedOnnxForward } from '../src/runtime/onnx/streamed-forward.js';
import { d512Shape, llama2_7bShape, writeRandomLlama as writeRandomLlamaModel } from './random-llama.js';
import { loadTextWindows } from '../src/evaluation/perplexity.js';
import type { HiddenStatePairs } from '../src/pruning/hidden-state-pairs.js';
import { fitLinearReplacement } from '../src/pruning/linear-fit.js';
import { initialParameters, type ReplacementSource, type TrainedKind } from '../src/pruning/replacement.js';
import { makeBatch } from '../src/runtime/runtime.js';
import { loadTokenizer } from '../src/tokenizers/tokenizer.js';
import { createTrainer, type HostBatch, type TrainerName } from '../src/training/trainer.js';
import { mulberry32 } from '../src/random.js';

const shared = fileURLToPath(new URL('../../../../shared/', import.meta.url));
const BATCH = 8;
const WINDOWS = 32;
const WARMUP = 3;
const STEPS = { onnx: 10, tfjs: 3, torch: 10 } as const;
const ROUNDS = Number(process.env.ROUNDS ?? 2);
/** The 7B-shaped row's schedule: one layer step is ~1 TFLOP here, so few steps, one round, 2 threads. */
const SEVEN_B_SCHEDULE = { windows: 8, warmup: 1, steps: 3, rounds: 1, torchThreads: ['2'] } as const;
const OPTIMIZER = { learningRate: 2e-4, weightDecay: 1e-3, gradClip: 5 };
type BenchKind = TrainedKind | 'LINEAR';
const KINDS: BenchKind[] = (process.env.KINDS?.split(',') as BenchKind[] | undefined) ?? ['LINEAR', 'FFN', 'SWIGLU', 'LAYER'];

interface Workload {
  readonly label: string;
  readonly modelPath: string;
  readonly seqLen: number;
  readonly start: number;
  readonly size: number;
  readonly windows: (info: ModelInfo, count: number) => Promise<number[][]>;
  readonly kinds: readonly BenchKind[];
  readonly schedule: { readonly windows: number; readonly warmup: number; readonly steps: number; readonly rounds: number; readonly torchThreads: readonly string[] };
  /** Too large for TensorFlow.js's wasm heap: the tfjs column says so instead of running. */
  readonly tfjsFits: boolean;
}

const DEFAULT_SCHEDULE = { windows: WINDOWS, warmup: WARMUP, steps: STEPS.onnx, rounds: ROUNDS, torchThreads: ['1', '2'] } as const;

function uniform(seed: number): () => number {
  const next = mulberry32(seed);
  return () => 2 * next() - 1;
}

function randomWindows(count: number): number[][] {
  const next = uniform(7);
  return Array.from({ length: count }, () => Array.from({ length: 128 }, () => Math.floor((next() + 1) * 16000)));
}

/** The large-models bench's generator: 8 layers of Llama-2-7B's shape, bf16, sharded, under `parent`. */
function writeRandomLlama7B(parent: string): string {
  return writeRandomLlamaModel(llama2_7bShape(8), { dtype: 'BF16', parent });
}

/** Pairs (h[s], h[s+n]) of every window, [N, T, d] each, written for both sides. */
async function preparePairs(work: Workload, dir: string): Promise<void> {
  // The layer-streamed pass every plan uses: a 7B-shaped model is read a layer at a time.
  const info = inspectModel(work.modelPath);
  const windows = work.schedule.windows;
  const ids = await work.windows(info, windows);
  const runtime = new StreamedOnnxForward({ family: info.family, config: info.config, weights: openWeightReader(info) }, { memoryBudget: memoryBudget(), ownsWeights: true });
  const d = info.config.hiddenSize;
  const inputs = new Float32Array(windows * work.seqLen * d);
  const targets = new Float32Array(windows * work.seqLen * d);
  for (let first = 0; first < windows; first += BATCH) {
    const result = await runtime.forward(makeBatch(ids.slice(first, first + BATCH)), { hiddenStates: true });
    inputs.set(result.hiddenStates![work.start].data, first * work.seqLen * d);
    targets.set(result.hiddenStates![work.start + work.size].data, first * work.seqLen * d);
  }
  await runtime.dispose();
  const weights = openWeightReader(info);
  const model: ReplacementSource = { family: info.family, config: info.config, read: (name) => weights.readFloat32(name) };
  writeFileSync(join(dir, 'inputs.f32'), new Uint8Array(inputs.buffer));
  writeFileSync(join(dir, 'targets.f32'), new Uint8Array(targets.buffer));
  const { config } = model;
  const meta = {
    windows,
    warmup: work.schedule.warmup,
    steps: work.schedule.steps,
    seqLen: work.seqLen,
    hiddenSize: d,
    batchSize: BATCH,
    heads: config.numAttentionHeads,
    kvHeads: config.numKeyValueHeads,
    headDim: config.headDim,
    normEps: config.normEps,
    ropeTheta: config.ropeTheta,
    ...OPTIMIZER,
  };
  writeFileSync(join(dir, 'meta.json'), JSON.stringify(meta));
  for (const kind of work.kinds) {
    if (kind === 'LINEAR') continue;
    const initial = initialParameters(kind, model, work.start, 1);
    writeSafetensors(join(dir, `init-${kind}.safetensors`), [...initial].map(([name, tensor]) => ({ name, tensor })), 'F32');
  }
  weights.close();
}

interface Measurement {
  tokensPerSecond: number;
  /** LINEAR: the first fit in a fresh process (ONNX Runtime's load and sessions included). */
  wholeTokensPerSecond?: number;
  maxRssMiB: number;
  firstLoss: number;
  description: string;
}

/** Child mode: train `kind` with `trainer` on the prepared pairs; print one JSON line. */
async function child(dir: string, modelPath: string, kind: BenchKind, trainer: TrainerName): Promise<void> {
  const info = inspectModel(modelPath); // the header only: a 7B-shaped model's weights are not loaded
  const model = { family: info.family, config: info.config };
  const meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8'));
  if (kind === 'LINEAR') return linearChild(dir, meta, trainer);
  const read = (name: string) => new Float32Array(readFileSync(join(dir, name)).buffer.slice(0));
  const inputs = read('inputs.f32');
  const targets = read('targets.f32');
  const { seqLen: T, hiddenSize: d, windows, warmup } = meta;
  const batches: HostBatch[] = [];
  for (let first = 0; first + BATCH <= windows; first += BATCH) {
    const range = [first * T * d, (first + BATCH) * T * d] as const;
    batches.push({ inputs: inputs.slice(...range), targets: targets.slice(...range), attentionMask: new Uint8Array(BATCH * T).fill(1), batchSize: BATCH, seqLen: T, tokens: BATCH * T });
  }
  // Made inline, so that nothing here holds the 0.8 GB of a 7B-shaped layer once the trainer has its copy.
  const engine = await createTrainer({ kind, model, initial: readInitial(dir, kind), optimizer: OPTIMIZER, trainer });
  const steps = trainer === 'tfjs' ? STEPS.tfjs : meta.steps;
  let firstLoss = NaN;
  let started = 0;
  for (let step = 0; step < warmup + steps; step++) {
    if (step === warmup) started = performance.now();
    const loss = await engine.accumulate(batches[step % batches.length]);
    if (step === 0) firstLoss = loss;
    await engine.step(1, OPTIMIZER.learningRate);
  }
  const seconds = (performance.now() - started) / 1000;
  await engine.dispose();
  const result: Measurement = { tokensPerSecond: (steps * BATCH * T) / seconds, maxRssMiB: process.resourceUsage().maxRSS / 1024, firstLoss, description: engine.description };
  process.stdout.write(JSON.stringify(result));
}

/** The replacement's initial parameters as written by preparePairs, matrices [in, out] as trainers hold them. */
function readInitial(dir: string, kind: BenchKind): Map<string, HostTensor> {
  const file = SafetensorsFile.open(join(dir, `init-${kind}.safetensors`));
  try {
    const initial = new Map<string, HostTensor>();
    for (const name of file.entries.keys()) {
      const t = file.read(name);
      initial.set(name, t.shape.length === 2 ? transpose2d(t) : t);
    }
    return initial;
  } finally {
    file.close();
  }
}

/** LINEAR: the whole closed-form fit (products, float64 solve, loss pass) over every window; no warm-up. */
async function linearChild(dir: string, meta: { seqLen: number; hiddenSize: number }, trainer: TrainerName): Promise<void> {
  const { seqLen: T, hiddenSize: d } = meta;
  const inputs = new Float32Array(readFileSync(join(dir, 'inputs.f32')).buffer.slice(0));
  const targets = new Float32Array(readFileSync(join(dir, 'targets.f32')).buffer.slice(0));
  const pairs: HiddenStatePairs = {
    hiddenSize: d,
    indices: (split) => (split === 'train' ? Array.from({ length: WINDOWS }, (_, i) => i) : []),
    read: (i) => ({ inputs: inputs.subarray(i * T * d, (i + 1) * T * d), targets: targets.subarray(i * T * d, (i + 1) * T * d), length: T }),
    close: () => {},
  };
  let description = '';
  // First fit: the whole cost a prune pays (runtime load, sessions); then the fit itself, warm, best of 3
  // (a fit is a fraction of a second here, so one descheduling on the shared cores would decide a single one).
  const seconds: number[] = [];
  let trainLoss = NaN;
  for (let round = 0; round < 4; round++) {
    const started = performance.now();
    trainLoss = (await fitLinearReplacement(pairs, 1e-4, undefined, { trainer, onStart: (text) => (description = text) })).trainLoss;
    seconds.push((performance.now() - started) / 1000);
  }
  const result: Measurement = { tokensPerSecond: (WINDOWS * T) / Math.min(...seconds.slice(1)), wholeTokensPerSecond: (WINDOWS * T) / seconds[0], maxRssMiB: process.resourceUsage().maxRSS / 1024, firstLoss: trainLoss, description };
  process.stdout.write(JSON.stringify(result));
}

function engine(dir: string, modelPath: string, kind: BenchKind, trainer: TrainerName): Measurement | string {
  const self = fileURLToPath(import.meta.url);
  const result = spawnSync(process.execPath, ['--import', 'tsx', self, '--child', dir, modelPath, kind, trainer], { encoding: 'utf8' });
  if (result.status !== 0) return `failed: ${(result.stderr || '').trim().split('\n').slice(-3).join(' ')}`;
  return JSON.parse(result.stdout.trim().split('\n').pop()!);
}

function torch(dir: string, kind: BenchKind, work: Workload): Measurement | string {
  const script = fileURLToPath(new URL('./torch_training_reference.py', import.meta.url));
  // Debian's python3-torch installs for /usr/bin/python3, which may not be the python3 first on PATH.
  for (const python of ['/usr/bin/python3', 'python3']) {
    const linked = join(dir, `init.safetensors`);
    rmSync(linked, { force: true });
    if (kind !== 'LINEAR') writeFileSync(linked, readFileSync(join(dir, `init-${kind}.safetensors`)));
    const result = spawnSync(python, [script, dir, kind, String(work.schedule.steps), String(work.schedule.warmup), ...work.schedule.torchThreads], { encoding: 'utf8' });
    if (result.error || result.stderr?.includes('No module named')) continue;
    if (result.status !== 0) return `failed: ${result.stderr.trim().split('\n').pop()}`;
    const out = JSON.parse(result.stdout.trim().split('\n').pop()!);
    return { tokensPerSecond: out.best.tokensPerSecond, maxRssMiB: out.maxRssMiB, firstLoss: out.best.losses[0], description: `torch ${out.torch}, ${out.best.threads} thread${out.best.threads === 1 ? '' : 's'}` };
  }
  return 'not available (install Debian python3-torch)';
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === '--child') return child(args[1], args[2], args[3] as BenchKind, args[4] as TrainerName);

  const root = mkdtempSync(join(tmpdir(), 'streamline-bench-training-'));
  const randomDir = writeRandomLlamaModel(d512Shape(), { dtype: 'F32', parent: root });
  const stories = join(shared, 'models/stories260K/stories260K.bin');
  const workloads: Workload[] = [];
  if (existsSync(stories)) {
    workloads.push({
      label: 'stories260K (d 64), 256-token windows',
      modelPath: stories,
      seqLen: 256,
      start: 2,
      size: 2,
      windows: async (info, count) => {
        const tokenizer = await loadTokenizer(join(shared, 'models/stories260K/tok512.bin'));
        return loadTextWindows(join(shared, 'data/text/tinystories_val_excerpt.txt'), tokenizer, { seqLen: 256, windows: count, skipWindows: 0, vocabSize: info.config.vocabSize });
      },
      kinds: KINDS,
      schedule: DEFAULT_SCHEDULE,
      tfjsFits: true,
    });
  } else {
    console.log(`(stories260K rows skipped: ${stories} not found)`);
  }
  workloads.push({
    label: 'random 8-layer Llama (d 512, FFN 1376), 128-token windows',
    modelPath: randomDir,
    seqLen: 128,
    start: 3,
    size: 2,
    windows: async (_info, count) => randomWindows(count),
    kinds: KINDS,
    schedule: DEFAULT_SCHEDULE,
    tfjsFits: true,
  });
  if (process.env.SEVEN_B !== 'off' && KINDS.includes('LAYER')) {
    console.log('generating the random 8-layer Llama-2-7B-shaped bf16 model (3.8 GB)…');
    workloads.push({
      label: 'random 8-layer Llama-2-7B-shaped (d 4096, FFN 11008, bf16), 128-token windows',
      modelPath: writeRandomLlama7B(root),
      seqLen: 128,
      start: 1,
      size: 2,
      windows: async (_info, count) => randomWindows(count),
      kinds: ['LAYER'],
      schedule: SEVEN_B_SCHEDULE,
      tfjsFits: false,
    });
  }

  const git = (() => {
    try {
      return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    } catch {
      return '?';
    }
  })();
  console.log(`replacement training, steady state (${WARMUP} warm-up steps, then ${STEPS.onnx} timed steps; tfjs ${STEPS.tfjs}; the 7B-shaped row ${SEVEN_B_SCHEDULE.warmup} and ${SEVEN_B_SCHEDULE.steps}), batch ${BATCH}, AdamW lr ${OPTIMIZER.learningRate}`);
  console.log(`commit ${git}; load average at start ${loadavg().map((l) => l.toFixed(2)).join(' ')}; best of ${ROUNDS} rounds (tfjs: 1)`);
  try {
    for (const work of workloads) {
      const dir = join(root, work.label.replace(/[^a-z0-9]+/gi, '-'));
      mkdirSync(dir);
      await preparePairs(work, dir);
      console.log(`\n${work.label}, block ${work.start}–${work.start + work.size - 1}`);
      const descriptions = new Set<string>();
      console.log(`  ${'kind'.padEnd(7)} ${'engine onnx'.padStart(14)} ${'engine tfjs'.padStart(14)} ${'pytorch'.padStart(14)} ${'onnx/pytorch'.padStart(13)}   peak RSS onnx / tfjs / pytorch   first loss onnx / pytorch`);
      for (const kind of work.kinds) {
        const best: Record<'onnx' | 'tfjs' | 'torch', Measurement | string | null> = { onnx: null, tfjs: null, torch: null };
        const keep = (key: keyof typeof best, m: Measurement | string) => {
          const previous = best[key];
          if (typeof m === 'string') best[key] = previous ?? m;
          else if (!previous || typeof previous === 'string' || m.tokensPerSecond > previous.tokensPerSecond) best[key] = m;
        };
        for (let round = 0; round < work.schedule.rounds; round++) {
          keep('onnx', engine(dir, work.modelPath, kind, 'onnx'));
          keep('torch', torch(dir, kind, work));
          if (round === 0) keep('tfjs', work.tfjsFits ? engine(dir, work.modelPath, kind, 'tfjs') : 'does not fit');
        }
        const rate = (m: Measurement | string | null) => (m && typeof m !== 'string' ? `${Math.round(m.tokensPerSecond)} tok/s` : (m ?? '—'));
        const rss = (m: Measurement | string | null) => (m && typeof m !== 'string' ? `${Math.round(m.maxRssMiB)}` : '—');
        const ratio = typeof best.onnx === 'object' && typeof best.torch === 'object' && best.onnx && best.torch ? (best.onnx.tokensPerSecond / best.torch.tokensPerSecond).toFixed(2) : '—';
        const loss = (m: Measurement | string | null) => (m && typeof m !== 'string' ? m.firstLoss.toExponential(4) : '—');
        console.log(
          `  ${kind.padEnd(7)} ${rate(best.onnx).padStart(14)} ${rate(best.tfjs).padStart(14)} ${rate(best.torch).padStart(14)} ${ratio.padStart(13)}   ${`${rss(best.onnx)} / ${rss(best.tfjs)} / ${rss(best.torch)} MiB`.padEnd(30)}   ${loss(best.onnx)} / ${loss(best.torch)}`,
        );
        for (const m of Object.values(best)) if (typeof m === 'string') console.log(`          ${m}`);
        if (kind === 'LINEAR') {
          const whole = (m: Measurement | string | null) => (m && typeof m !== 'string' && m.wholeTokensPerSecond ? `${Math.round(m.wholeTokensPerSecond)} tok/s` : '—');
          console.log(`          LINEAR: engine figures are the best of three warm fits; the first fit in a fresh process: onnx ${whole(best.onnx)}, tfjs ${whole(best.tfjs)}`);
        }
        for (const m of Object.values(best)) if (m && typeof m !== 'string') descriptions.add(m.description);
      }
      console.log(`  (${[...descriptions].join('; ')})`);
    }
    console.log(`\nload average at end ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
