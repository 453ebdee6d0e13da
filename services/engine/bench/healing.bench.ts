/**
 * Healing by distillation on stories260K (issue 17's figures): layers 2–3 replaced by a LAYER trained on
 * hidden states (MSE), then healed — KL(original ‖ pruned) on the logits, gradients only into the
 * replacement. Calibration: the first 512 windows × 256 tokens of the TinyStories excerpt (400 healing
 * steps at lr 5e-4), then the first 32 windows with the default healing settings. Evaluation: every
 * 256-token window of the excerpt's text after JS string index 600,000 (written to a temporary file).
 * Targets: healed ≤ 1.32× the original's perplexity, MSE-only ≤ 1.54×; with 32 windows, healed ≤ unhealed.
 * Then healing on the random 8-layer d-512 Llama (vocabulary 32000; random weights, so only that it runs
 * and its time per step), and what healing would hold for Llama-2-7B shapes (healingMemoryBytes).
 *
 *   npm run bench:healing -w services/engine        (from the repository root)
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { familyFor } from '../src/models/families/index.js';
import { layerParameters } from '../src/pruning/block-choice.js';
import { DEFAULT_HEALING } from '../src/pruning/defaults.js';
import { healingMemoryBytes, type HealingSettings } from '../src/pruning/heal.js';
import { prune } from '../src/pruning/prune.js';
import { mulberry32 } from '../src/random.js';
import { llama2_7bShape, writeRandomLlama } from './random-llama.js';

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

/** Healing on the d-512 model: 16 random windows of 128 tokens, layers 3–4 replaced by a LAYER. */
async function d512() {
  const model = writeRandomLlama({ numLayers: 8, hiddenSize: 512, numAttentionHeads: 8, numKeyValueHeads: 4, intermediateSize: 1376, vocabSize: 32000, maxPositionEmbeddings: 2048 }, { dtype: 'F32', parent: work });
  const next = mulberry32(7);
  const data = join(work, 'd512.jsonl');
  writeFileSync(data, Array.from({ length: 16 }, () => JSON.stringify({ input_ids: Array.from({ length: 128 }, () => Math.floor(next() * 32000)) })).join('\n'));
  const stepTimes: number[] = [];
  let last = 0;
  const summary = await prune({
    modelPath: model,
    dataPath: data,
    workDir: join(work, 'work-d512'),
    outDir: join(work, 'out-d512'),
    layers: 2,
    start: 3,
    replacement: 'LAYER',
    samples: 16,
    seqLen: 128,
    batchSize: 4,
    training: { minSteps: 10 },
    healing: { steps: 20, learningRate: 2e-4, validationFraction: 0.25, patience: 20 },
    onProgress: (event) => {
      if (event.stage !== 'HEALING' || !event.training) return;
      const now = performance.now();
      if (event.training.step > 1) stepTimes.push(now - last); // step 1 includes session start-up
      last = now;
    },
  });
  const h = summary.healing!;
  const median = stepTimes.sort((a, b) => a - b)[Math.floor(stepTimes.length / 2)];
  console.log('random 8-layer Llama (d 512, FFN 1376, vocabulary 32000), layers 3–4 → LAYER, 16 windows × 128 tokens, batches of 4');
  console.log(`  healing: ${h.steps} steps, ${median.toFixed(0)} ms per step (median; validation runs included), validation KL ${h.validationKl.before?.toFixed(4)} → ${h.validationKl.after?.toFixed(4)}`);
}

/** What healing holds for Llama-2-7B shapes: the block's start decides how many frozen layers follow it. */
function sevenB() {
  const shape = llama2_7bShape(32);
  const family = familyFor('llama');
  const config = family.parseConfig({ model_type: 'llama', hidden_size: 4096, intermediate_size: 11008, num_attention_heads: 32, num_key_value_heads: 32, num_hidden_layers: 32, vocab_size: 32000, max_position_embeddings: 4096 }, 'BF16');
  console.log(`Llama-2-7B shape (${shape.numLayers} layers): what healing a LAYER replacement holds (frozen tail + head in float32, replacement with AdamW state, one batch's activations)`);
  for (const [start, batch, seqLen] of [[27, 8, 128], [22, 8, 128], [22, 1, 2048], [2, 8, 128]] as const) {
    const tail = shape.numLayers - (start + 2);
    const gb = healingMemoryBytes({ family, config }, tail, layerParameters(family, config), batch, seqLen) / 1e9;
    console.log(`  layers ${start}–${start + 1} replaced (${tail} layers after), batch ${batch} × ${seqLen} tokens: about ${gb.toFixed(1)} GB`);
  }
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
  await d512();
  sevenB();
} finally {
  rmSync(work, { recursive: true, force: true });
}
