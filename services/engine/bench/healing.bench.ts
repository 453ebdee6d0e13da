/**
 * Healing by distillation on stories260K (issue 17's figures): layers 2–3 replaced by a LAYER trained on
 * hidden states (MSE), then healed — KL(original ‖ pruned) on the logits, gradients only into the
 * replacement. Calibration: the first 512 windows × 256 tokens of the TinyStories excerpt (400 healing
 * steps at lr 5e-4), then the first 32 windows with the default healing settings. Evaluation: every
 * 256-token window of the excerpt's text after JS string index 600,000 (written to a temporary file).
 * Targets: healed ≤ 1.32× the original's perplexity, MSE-only ≤ 1.54×; with 32 windows, healed ≤ unhealed.
 *
 *   npm run bench:healing -w services/engine        (from the repository root)
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_HEALING } from '../src/pruning/defaults.js';
import type { HealingSettings } from '../src/pruning/heal.js';
import { prune } from '../src/pruning/prune.js';

const shared = fileURLToPath(new URL('../../../../shared/', import.meta.url));
const excerpt = join(shared, 'data/text/tinystories_val_excerpt.txt');
const work = mkdtempSync(join(tmpdir(), 'streamline-bench-healing-'));
const heldOut = join(work, 'held-out.txt');
writeFileSync(heldOut, readFileSync(excerpt, 'utf8').slice(600_000));

async function run(label: string, samples: number, healing: HealingSettings) {
  const summary = await prune({
    modelPath: join(shared, 'models/stories260K/stories260K.bin'),
    tokenizerPath: join(shared, 'models/stories260K/tok512.bin'),
    dataPath: excerpt,
    workDir: join(work, `work-${samples}`),
    outDir: join(work, `out-${samples}`),
    layers: 2,
    start: 2,
    replacement: 'LAYER',
    samples,
    seqLen: 256,
    batchSize: 8,
    training: { learningRate: 2e-3, minLearningRate: 2e-4, minSteps: 300 },
    healing,
    evalWindows: 0,
    evaluation: { texts: [{ path: heldOut, samples: 100_000, seqLen: 256 }] },
  });
  const text = summary.report!.perplexity[0];
  const original = text.original.perplexity;
  const mse = text.prunedBeforeHealing!.perplexity;
  const healed = text.pruned!.perplexity;
  const h = summary.healing!;
  console.log(`${label}: ${text.windows} held-out windows × 256 tokens (${text.tokens} predicted tokens)`);
  console.log(`  original            perplexity ${original.toFixed(3)}`);
  console.log(`  LAYER, MSE only     perplexity ${mse.toFixed(3)}  (${(mse / original).toFixed(3)}× original)`);
  console.log(`  LAYER, healed       perplexity ${healed.toFixed(3)}  (${(healed / original).toFixed(3)}× original)`);
  console.log(
    `  healing: ${h.steps} steps${h.stoppedEarly ? ' (stopped early)' : ''}, kept step ${h.bestStep}, validation KL ${h.validationKl.before?.toFixed(4)} → ${h.validationKl.after?.toFixed(4)}; ${summary.seconds.toFixed(0)} s in all`,
  );
  return { original, mse, healed };
}

try {
  const large = await run('512 calibration windows, healing 400 steps at lr 5e-4', 512, { steps: 400, learningRate: 5e-4, validationFraction: 0.1, patience: 5 });
  const small = await run('32 calibration windows, default healing settings', 32, DEFAULT_HEALING);
  const checks = [
    [`healed ≤ 1.32× original (512 windows)`, large.healed <= 1.32 * large.original],
    [`MSE-only ≤ 1.54× original (512 windows)`, large.mse <= 1.54 * large.original],
    [`healed ≤ unhealed (32 windows, defaults)`, small.healed <= small.mse],
  ] as const;
  for (const [what, ok] of checks) console.log(`  ${ok ? 'met    ' : 'MISSED '} ${what}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
