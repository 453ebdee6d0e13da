/**
 * One `prune --replacement linear` of a random Llama-shaped model for bench/scale.bench.ts, in its own
 * process so that its peak RSS is its own. Before export it computes the pruned model's logits on a few
 * prompts; after, it reloads the exported checkpoint and computes them again; it prints one JSON line.
 *
 *   node --import tsx bench/scale-prune-child.ts MODEL TOKENIZER DATA WORK OUT SAMPLES SEQ_LEN
 */
import { inspectModel } from '../src/models/model.js';
import { prune } from '../src/pruning/prune.js';
import { openRuntime } from '../src/runtime/open-runtime.js';
import { makeBatch, type ForwardRuntime } from '../src/runtime/runtime.js';
import { stagePeaks } from './stage-peaks.js';

const [model, tokenizer, data, workDir, outDir, samples, seqLen] = process.argv.slice(2);
const prompts = [
  [1, 450, 4996, 17354, 1701, 29916, 432, 17204, 975, 278, 17366, 11203],
  [1, 9038, 2501, 263, 931, 29892, 727, 471],
  [1, 3118, 2462, 29892, 263, 2217, 7826, 4257, 365, 2354],
];
const logitsOf = async (runtime: ForwardRuntime) => {
  const { logits } = await runtime.forward(makeBatch(prompts), { logits: true });
  return logits!.data.slice();
};

let before: Float32Array | null = null;
const peaks = stagePeaks();
const summary = await prune({
  modelPath: model,
  tokenizerPath: tokenizer,
  dataPath: data,
  workDir,
  outDir,
  layers: 2,
  replacement: 'LINEAR',
  samples: Number(samples),
  seqLen: Number(seqLen),
  batchSize: 8,
  pairsDtype: 'BF16',
  evalWindows: 4,
  onAssembled: async (pruned) => void (before = await logitsOf(pruned)),
  onProgress: peaks.event,
});
peaks.enter('reload');
const pruneSeconds = (performance.now() - peaks.started) / 1000;
const reloaded = await openRuntime(inspectModel(outDir));
const after = await logitsOf(reloaded);
await reloaded.dispose();
const stagePeakRssGiB = peaks.stop();
let maxAbs = 0;
for (let i = 0; i < after.length; i++) maxAbs = Math.max(maxAbs, Math.abs(after[i] - before![i]));
process.stdout.write(
  `${JSON.stringify({ pruneSeconds, removedLayers: summary.removedLayers, perplexity: summary.evaluation, hiddenStateCosine: summary.hiddenStateCosine, maxAbsLogitDifference: maxAbs, logits: after.length, stagePeakRssGiB })}\n`,
);
