/**
 * The LLM-Streamline recipe on stories260K, as the README states it: calibration on the first 32
 * windows of 256 tokens of the TinyStories excerpt, 2 layers pruned, AdamW at lr 2e-3 (cosine to 2e-4),
 * batches of 8 windows, 300 optimizer steps; perplexity on the next 64 windows (held out).
 *
 *   npm run bench:pruning -w services/engine        (from the repository root; about 5 minutes here)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { prune, type PruneOptions } from '../src/pruning/prune.js';

const shared = fileURLToPath(new URL('../../../../shared/', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'streamline-bench-pruning-'));
const runs: { label: string; options: Partial<PruneOptions> }[] = [
  { label: 'NONE, block chosen by importance', options: { replacement: 'NONE' } },
  { label: 'LINEAR (closed form)', options: { replacement: 'LINEAR' } },
  { label: 'FFN, 300 steps', options: { replacement: 'FFN' } },
  { label: 'SWIGLU, 300 steps', options: { replacement: 'SWIGLU' } },
  { label: 'LAYER, 300 steps', options: { replacement: 'LAYER' } },
  { label: 'NONE, layers 0–1 pinned', options: { replacement: 'NONE', start: 0 } },
];

console.log('stories260K, 2 layers pruned; calibration 32 × 256 tokens of TinyStories; perplexity on the next 64 windows of 256 tokens');
let original: number | null = null;
try {
  for (const [i, { label, options }] of runs.entries()) {
    const summary = await prune({
      modelPath: join(shared, 'models/stories260K/stories260K.bin'),
      dataPath: join(shared, 'data/text/tinystories_val_excerpt.txt'),
      workDir: join(work, `work-${i}`),
      outDir: join(work, `out-${i}`),
      layers: 2,
      replacement: 'NONE',
      samples: 32,
      seqLen: 256,
      batchSize: 8,
      evalWindows: 64,
      training: { learningRate: 2e-3, minLearningRate: 2e-4, minSteps: 300 },
      ...options,
    });
    if (original === null) {
      original = summary.evaluation!.perplexityOriginal;
      console.log(`  original                              perplexity ${original.toFixed(2)}`);
    }
    const cosine = summary.training?.epochs.at(-1)?.validationCosine;
    console.log(
      `  ${label.padEnd(36)}  layers ${summary.removedLayers.join('–')}  perplexity ${summary.evaluation!.perplexityPruned.toFixed(2)}` +
        `  parameters ${summary.numParameters.after}/${summary.numParameters.before}${cosine ? `  val cos ${cosine.toFixed(3)}` : ''}  ${summary.seconds.toFixed(0)} s`,
    );
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
