/**
 * One healed LAYER prune of a random Llama-2-7B-shaped model for bench/scale.bench.ts (--heal), in its own
 * process so that its peak RSS is its own: the block of two layers before the last (one layer after it),
 * a few training and healing steps on 8 × 128 tokens — enough to reach healing's steady state, whose memory
 * is the question. Prints one JSON line: the peak RSS of each stage and healing's own estimate
 * (healingMemoryBytes, what the memory-budget check compares).
 *
 *   node --import tsx bench/scale-heal-child.ts MODEL TOKENIZER DATA WORK OUT
 */
import { inspectModel } from '../src/models/model.js';
import { replacementParameters } from '../src/pruning/block-choice.js';
import { healingMemoryBytes } from '../src/pruning/heal.js';
import { prune } from '../src/pruning/prune.js';
import { stagePeaks } from './stage-peaks.js';

const [model, tokenizer, data, workDir, outDir] = process.argv.slice(2);
const info = inspectModel(model);
const layers = info.config.numLayers;
const BATCH = 8;
const SEQ_LEN = 128;
const estimate = healingMemoryBytes(info, 1, replacementParameters('LAYER', info.family, info.config), BATCH, SEQ_LEN);

const peaks = stagePeaks();
const summary = await prune({
  modelPath: model,
  tokenizerPath: tokenizer,
  dataPath: data,
  workDir,
  outDir,
  layers: 2,
  start: layers - 3,
  replacement: 'LAYER',
  samples: 12,
  seqLen: SEQ_LEN,
  batchSize: BATCH,
  valFraction: 0.34,
  pairsDtype: 'BF16',
  evalWindows: 0,
  memoryBudget: process.env.STREAMLINE_MEMORY_BUDGET ?? '20GiB',
  training: { minSteps: 2, checkpointEvery: 1000 },
  healing: { steps: 3, learningRate: 1e-5, validationFraction: 0.34, patience: 10 },
  onProgress: peaks.event,
});
const stagePeakRssGiB = peaks.stop();
process.stdout.write(
  `${JSON.stringify({ seconds: (performance.now() - peaks.started) / 1000, removedLayers: summary.removedLayers, healing: summary.healing, estimateGiB: +(estimate / 1024 ** 3).toFixed(2), stagePeakRssGiB })}\n`,
);
