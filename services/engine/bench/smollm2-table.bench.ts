/**
 * The paper's table in small: SmolLM2-135M-Instruct (30 layers) with 7 layers (~25 %) pruned by NONE,
 * LINEAR, SWIGLU and LAYER, each against the original on held-out perplexity, seven multiple-choice tasks,
 * the share of the original's average accuracy kept, stability, parameters and latency.
 *
 *   npm run bench:smollm2 -w services/engine [-- --items 100|all] [--eval-windows 32] [--steps 300] [--calibration-windows 128]
 *       [--kinds none,linear,swiglu,layer] [--heal] [--sweep 2,4,6,8]
 *
 * --heal adds a LAYER row healed by distillation on the same block; --sweep adds a sweep's candidates (LAYER
 * at each size's most redundant start, and the same count removed one layer at a time), each exported from
 * its trained weights and evaluated like the other rows.
 *
 * Settings (the README's "SmolLM2-135M" section states them with the figures):
 * - calibration: 128 windows of 128 tokens from the start of WikiText-2 valid and 128 from the start of the
 *   TinyStories excerpt, interleaved (256 samples, 32,768 tokens; 10 % held out for validation);
 * - the block of 7 chosen by importance on that calibration (the NONE run), then pinned for the others so
 *   every kind replaces the same layers;
 * - SWIGLU and LAYER: AdamW, lr 2e-4 with cosine decay to 5e-5, batches of 8, 300 steps (the engine's
 *   defaults); LINEAR: least squares in closed form, ridge 1e-4;
 * - perplexity: 32 windows of 256 tokens of WikiText-2 *test* and of TinyStories after the windows
 *   calibration read (both files skip the first 64 windows of 256 tokens);
 * - tasks: the first `--items` items of each file (default 100; `all` scores every item; HellaSwag's file
 *   is the first 1000 of its validation set), scored by the lowest per-token perplexity of each choice;
 * - stability: the paper's (stability.ts), per task, then averaged; latency: the median of 5 forward
 *   passes of 4 × 128 tokens, every model timed one after another at the end (the pruned exports are
 *   kept until then), so that all see the same load.
 *
 * Needs `npm run fetch:test-models` (SmolLM2) and ../shared.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { testModelPath } from '@streamline/testing/test-models';
import { readDataSamples } from '../src/data/calibration.js';
import { evaluateModels, LATENCY_BATCH, timeForwardPass, type EvaluationReport } from '../src/evaluation/evaluate.js';
import { computeStability } from '../src/evaluation/stability.js';
import { loadModel, type LoadedModel } from '../src/models/model.js';
import { prune } from '../src/pruning/prune.js';
import { DEFAULT_HEALING } from '../src/pruning/defaults.js';
import { REPLACEMENT_KINDS, type ReplacementKind } from '../src/pruning/replacement-kinds.js';
import { loadTrainedCandidate, sweep } from '../src/pruning/sweep.js';
import { createRuntime } from '../src/runtime/create-runtime.js';
import { loadTokenizer, type Tokenizer } from '../src/tokenizers/tokenizer.js';

const LAYERS = 7;
const options = {
  items: argument('--items', '100', (value) => (value === 'all' ? undefined : positiveInteger('--items', value))),
  evalWindows: argument('--eval-windows', '32', (value) => positiveInteger('--eval-windows', value)),
  steps: argument('--steps', '300', (value) => positiveInteger('--steps', value)),
  calibrationWindows: argument('--calibration-windows', '128', (value) => positiveInteger('--calibration-windows', value)),
  kinds: argument('--kinds', 'none,linear,swiglu,layer', (value) => value.split(',').filter(Boolean).map((kind) => replacementKind(kind))),
  /** Adds a LAYER row healed by distillation (the engine's default healing settings) on the same block. */
  heal: process.argv.includes('--heal'),
  /** Adds a sweep's candidates: these block sizes with LAYER, contiguous and removed one layer at a time. */
  sweep: argument('--sweep', '', (value) => (value ? value.split(',').map((size) => positiveInteger('--sweep', size)) : null)),
};
const CALIBRATION = { windowsPerText: options.calibrationWindows, seqLen: 128 };
// Both texts skip the windows calibration read from TinyStories (WikiText-2 test was never read).
const EVALUATION = { seqLen: 256, windows: options.evalWindows, skipWindows: Math.ceil((CALIBRATION.windowsPerText * CALIBRATION.seqLen) / 256) };
const KINDS: readonly ReplacementKind[] = options.kinds;
const shared = fileURLToPath(new URL('../../../../shared/', import.meta.url));
const TEXTS = { 'Wiki2 ppl': join(shared, 'data/text/wikitext2_test.txt'), 'TinySt ppl': join(shared, 'data/text/tinystories_val_excerpt.txt') };
const TASKS = {
  'ARC-e': 'arc_easy',
  'ARC-c': 'arc_challenge',
  PIQA: 'piqa',
  HellaS: 'hellaswag_val_first1000',
  BoolQ: 'boolq',
  COPA: 'copa',
  OBQA: 'openbook_qa',
} as const;

function argument<T>(name: string, fallback: string, parse: (value: string) => T): T {
  const at = process.argv.indexOf(name);
  return parse(at < 0 ? fallback : (process.argv[at + 1] ?? ''));
}

function replacementKind(value: string): ReplacementKind {
  const kind = value.trim().toUpperCase() as ReplacementKind;
  if (!REPLACEMENT_KINDS.includes(kind)) throw new Error(`--kinds takes ${REPLACEMENT_KINDS.join(', ').toLowerCase()}, got ${JSON.stringify(value)}`);
  return kind;
}

function positiveInteger(name: string, value: string): number {
  const number = Number(value);
  if (!(Number.isInteger(number) && number >= 1)) throw new Error(`${name} must be a positive integer${name === '--items' ? ' or all' : ''}, got ${JSON.stringify(value)}`);
  return number;
}

/** WikiText-2 valid and TinyStories windows, interleaved, as a .jsonl of token ids (used as given). */
async function writeCalibration(path: string, tokenizer: Tokenizer, vocabSize: number): Promise<void> {
  const read = async (file: string) => (await readDataSamples(join(shared, 'data/text', file), tokenizer, { samples: CALIBRATION.windowsPerText, seqLen: CALIBRATION.seqLen, vocabSize })).samples;
  const wiki = await read('wikitext2_valid.txt');
  const stories = await read('tinystories_val_excerpt.txt');
  const lines = wiki.flatMap((window, i) => [window, stories[i]]).map((ids) => JSON.stringify({ input_ids: ids }));
  writeFileSync(path, `${lines.join('\n')}\n`);
}

interface Row {
  readonly label: string;
  /** The model's file or folder (kept until every model is timed). */
  readonly path: string;
  readonly layers: number;
  readonly parameters: number;
  readonly report: EvaluationReport;
  readonly stability?: number;
  /** Set at the end, when all models are timed back to back. */
  latencyMs?: number;
}

const HEADER = ['Method', 'Layers', 'Params', 'Ratio', ...Object.keys(TEXTS), ...Object.keys(TASKS), 'Avg.', 'RP', 'Stab.', 'Latency', 'Speedup'];

function rowCells(row: Row, original: Row): string[] {
  const average = (of: Row) => of.report.averages!.accuracyOriginal;
  return [
    row.label,
    String(row.layers),
    `${(row.parameters / 1e6).toFixed(1)}M`,
    `${((1 - row.parameters / original.parameters) * 100).toFixed(1)}%`,
    ...row.report.perplexity.map((p) => p.original.perplexity.toFixed(2)),
    ...row.report.tasks.map((task) => (100 * task.accuracyOriginal).toFixed(1)),
    (100 * average(row)).toFixed(1),
    `${((100 * average(row)) / average(original)).toFixed(1)}%`,
    row.stability === undefined ? '-' : row.stability.toFixed(3),
    row.latencyMs === undefined ? '-' : `${row.latencyMs.toFixed(0)} ms`,
    row === original || row.latencyMs === undefined || original.latencyMs === undefined ? '-' : `${(original.latencyMs / row.latencyMs).toFixed(2)}×`,
  ];
}

/** A finished row as a progress line (a run stopped early keeps its figures). */
function rowLine(row: Row, original: Row): string {
  return rowCells(row, original).map((cell, c) => (c === 0 ? cell : `${HEADER[c]} ${cell}`)).join(', ');
}

function evaluate(model: LoadedModel, tokenizer: Tokenizer, items: number | undefined): Promise<EvaluationReport> {
  return evaluateModels({
    original: model,
    tokenizer,
    texts: Object.values(TEXTS).map((path) => ({ path, samples: EVALUATION.windows, seqLen: EVALUATION.seqLen })),
    tasks: Object.values(TASKS).map((task) => join(shared, 'data/mc', `${task}.jsonl`)),
    limit: items,
    skipWindows: EVALUATION.skipWindows,
    latency: false,
  });
}

/**
 * Latency of every model, timed one after another at the end so that all see the same load (on a
 * shared machine, timing each after its evaluation measured the load more than the pruning).
 */
async function timeModels(rows: Row[]): Promise<void> {
  for (const row of rows) {
    const model = loadModel(row.path);
    const runtime = await createRuntime(model);
    try {
      row.latencyMs = await timeForwardPass(runtime, model.config.vocabSize, LATENCY_BATCH, () => {});
    } finally {
      await runtime.dispose();
    }
  }
}

/** The paper's stability per task (weights from the original's per-choice perplexities), averaged over tasks. */
function stability(original: EvaluationReport, pruned: EvaluationReport): number {
  const perTask = original.tasks.map((task, t) =>
    computeStability(task.items.map((item, i) => ({ gold: item.gold, predOriginal: item.predOriginal, predPruned: pruned.tasks[t].items[i].predOriginal, scoresOriginal: item.scoresOriginal }))),
  );
  return perTask.reduce((a, b) => a + b, 0) / perTask.length;
}

function printTable(rows: Row[], items: number | undefined): void {
  const original = rows[0];
  const header = HEADER;
  const lines = rows.map((row) => rowCells(row, original));
  const widths = header.map((name, c) => Math.max(name.length, ...lines.map((line) => line[c].length)));
  const format = (cells: string[]) => `| ${cells.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join(' | ')} |`;
  const counts = original.report.tasks.map((task, t) => `${Object.keys(TASKS)[t]} ${task.numItems}`).join(', ');
  console.log(`\nSmolLM2-135M-Instruct (GGUF Q4_1, computed in float32), ${LAYERS} of 30 layers pruned (sweep rows: their own); items per task: ${items ?? 'all'} (${counts})`);
  console.log(format(header));
  console.log(format(widths.map((w) => '-'.repeat(w))).replace(/ /g, '-').replace(/^\|-/, '| ').replace(/-\|$/, ' |'));
  for (const line of lines) console.log(format(line));
  console.log(`Ratio: parameters removed; perplexity on ${EVALUATION.windows} × ${EVALUATION.seqLen} held-out tokens; accuracy in %; RP: average accuracy kept, % of the original's;`);
  console.log('Stab.: the paper\'s stability averaged over the tasks; Latency: median forward pass of 4 × 128 tokens, all models timed one after another at the end; Speedup: original / pruned');
}

const started = performance.now();
const items = options.items;
const modelPath = testModelPath('smollm2');
if (!modelPath) process.exit(0);
const work = mkdtempSync(join(tmpdir(), 'streamline-bench-smollm2-'));
const elapsed = () => `${((performance.now() - started) / 60_000).toFixed(1)} min`;
try {
  const originalModel = loadModel(modelPath);
  const tokenizer = await loadTokenizer(originalModel.tokenizerPath!);
  const calibration = join(work, 'calibration.jsonl');
  await writeCalibration(calibration, tokenizer, originalModel.config.vocabSize);

  console.log(`evaluating the original (${items ?? 'all'} items per task) …`);
  const original = await evaluate(originalModel, tokenizer, items);
  const rows: Row[] = [{ label: 'Original', path: modelPath, layers: originalModel.config.numLayers, parameters: originalModel.numParameters, report: original }];
  console.log(`  done at ${elapsed()}: ${rowLine(rows[0], rows[0])}`);

  const common = { modelPath, dataPath: calibration, samples: 2 * CALIBRATION.windowsPerText, seqLen: CALIBRATION.seqLen, evalWindows: 0, training: { minSteps: options.steps } };
  /** One pruned model: exported by prune(), evaluated, added as a row. */
  const pruneRow = async (label: string, settings: Omit<Parameters<typeof prune>[0], keyof typeof common | 'workDir' | 'outDir'>) => {
    const outDir = join(work, `out-${rows.length}`);
    const summary = await prune({ ...common, ...settings, workDir: join(work, `work-${rows.length}`), outDir });
    const cosine = summary.hiddenStateCosine === null ? '' : `, validation cosine ${summary.hiddenStateCosine.toFixed(4)}`;
    console.log(`${label}: layers ${summary.removedLayers.join(',')} removed, ${summary.numLayers.after} layers${cosine}, pruned in ${summary.seconds.toFixed(0)} s; evaluating …`);
    const pruned = await evaluate(loadModel(outDir), tokenizer, items);
    const row: Row = { label, path: outDir, layers: summary.numLayers.after, parameters: summary.numParameters.after, report: pruned, stability: stability(original, pruned) };
    rows.push(row);
    console.log(`  done at ${elapsed()}: ${rowLine(row, rows[0])}`);
    return summary;
  };

  // The block: by importance in the first prune, then pinned so that every kind replaces the same layers.
  let start: number | undefined;
  for (const kind of KINDS) start = (await pruneRow(kind, { layers: LAYERS, start, replacement: kind })).block.start;
  if (options.heal) await pruneRow('LAYER+heal', { layers: LAYERS, start, replacement: 'LAYER', healing: DEFAULT_HEALING });
  if (options.sweep) {
    // One sweep (boundary states collected once), then each candidate exported from its trained weights.
    const candidatesDir = join(work, 'candidates');
    const summary = await sweep({ ...common, workDir: join(work, 'sweep'), candidatesDir, sweep: { blockSizes: options.sweep, topStarts: 1, replacements: ['LAYER'], iterative: true } });
    console.log(`sweep: ${summary.candidates.length} candidates in ${summary.seconds.toFixed(0)} s`);
    for (const candidate of summary.candidates) {
      const { trained } = loadTrainedCandidate(join(candidatesDir, candidate.id));
      const label = candidate.iterative ? `iter ${candidate.removedLayers.length}` : `sweep ${candidate.blockSize}`;
      await pruneRow(label, { layers: candidate.blockSize, start: candidate.start, replacement: candidate.replacement, trained });
    }
  }
  console.log('timing every model, one after another …');
  await timeModels(rows);
  printTable(rows, items);
  console.log(`total ${elapsed()}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
