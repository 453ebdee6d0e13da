/**
 * The engine's Hugging Face export of a pruned SmolLM2-135M-Instruct, loaded by Hugging Face
 * `transformers` (a reader the engine did not write): 7 layers pruned with NONE (30 → 23 layers) and with
 * SWIGLU (30 → 24: the replacement written as a decoder layer whose attention output is zero), each
 * exported in float32 with the tokenizer built from the GGUF metadata. Checked, on a few prompts:
 *   1. transformers' tokenizer (tokenizer.json + tokenizer_config.json) gives the engine's token ids;
 *   2. transformers' next-token logits at every position match the engine's on the same folder: top-1
 *      equal everywhere, max |Δlogit| within 1e-3 (both compute in float32; only the order of operations
 *      differs).
 *
 *   npm run bench:transformers -w services/engine
 *
 * Needs the fetched SmolLM2 (`npm run fetch:test-models`), ../shared, and a Python where `import
 * transformers, torch` works: `$STREAMLINE_TRANSFORMERS_PYTHON`, else /usr/bin/python3 (here: Debian's
 * python3-torch 1.13 and `pip install --user 'transformers<4.40'`). Skipped with one line otherwise.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { testModelPath } from '@streamline/testing/test-models';
import { loadModel } from '../src/models/model.js';
import { prune } from '../src/pruning/prune.js';
import type { ReplacementKind } from '../src/pruning/replacement-kinds.js';
import { createRuntime } from '../src/runtime/create-runtime.js';
import { makeBatch } from '../src/runtime/runtime.js';
import { loadTokenizer } from '../src/tokenizers/tokenizer.js';

const SCRIPT = fileURLToPath(new URL('./transformers_reference.py', import.meta.url));
const TOLERANCE = 1e-3;
const KINDS: ReplacementKind[] = ['NONE', 'SWIGLU'];
const PROMPTS = [
  'The capital of France is',
  '<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n',
  'def fibonacci(n):\n    if n < 2:\n        return n\n    return',
  'Photosynthesis is the process by which green plants',
];

const python = process.env.STREAMLINE_TRANSFORMERS_PYTHON ?? '/usr/bin/python3';
const probe = spawnSync(python, ['-c', 'import transformers, torch; print(transformers.__version__)'], { encoding: 'utf8' });
const modelPath = testModelPath('smollm2');
if (probe.status !== 0) {
  console.log(`bench:transformers skipped: ${python} cannot import transformers and torch (set STREAMLINE_TRANSFORMERS_PYTHON)`);
  process.exit(0);
}
if (!modelPath) process.exit(0);

const shared = fileURLToPath(new URL('../../../../shared/', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'streamline-bench-transformers-'));
let failed = false;
try {
  let start: number | undefined;
  for (const kind of KINDS) {
    const outDir = join(work, `out-${kind}`);
    const summary = await prune({
      modelPath,
      dataPath: join(shared, 'data/text/wikitext2_valid.txt'),
      workDir: join(work, `work-${kind}`),
      outDir,
      layers: 7,
      start,
      replacement: kind,
      samples: 16,
      seqLen: 128,
      evalWindows: 0,
      training: { minSteps: 20 },
    });
    start = summary.block.start;

    const model = loadModel(outDir);
    const tokenizer = await loadTokenizer(model.tokenizerPath!);
    const ids = PROMPTS.map((prompt) => tokenizer.encode(prompt));
    const vocab = model.config.vocabSize;
    const runtime = await createRuntime(model);
    const engineLogits: Float32Array[] = [];
    try {
      for (const sequence of ids) engineLogits.push((await runtime.forward(makeBatch([sequence]), { logits: true })).logits!.data.slice());
    } finally {
      await runtime.dispose();
    }

    const scratch = join(work, `reference-${kind}`);
    rmSync(scratch, { recursive: true, force: true });
    mkdirSync(scratch);
    writeFileSync(join(scratch, 'request.json'), JSON.stringify({ prompts: PROMPTS, ids }));
    const run = spawnSync(python, [SCRIPT, outDir, join(scratch, 'request.json'), scratch], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
    if (run.status !== 0) throw new Error(`transformers_reference.py failed: ${run.stderr.trim().split('\n').slice(-3).join(' | ')}`);
    const result: { tokens: number[][]; layers: number; transformers: string } = JSON.parse(readFileSync(join(scratch, 'result.json'), 'utf8'));
    const reference = new Float32Array(readFileSync(join(scratch, 'logits.f32')).buffer.slice(0));

    const sameTokens = PROMPTS.filter((prompt, i) => JSON.stringify(tokenizer.encode(prompt, { bos: false })) === JSON.stringify(result.tokens[i])).length;
    let positions = 0;
    let top1 = 0;
    let maxDiff = 0;
    let offset = 0;
    for (const logits of engineLogits) {
      for (let row = 0; row < logits.length / vocab; row++, positions++) {
        let [engineBest, referenceBest] = [0, 0];
        for (let v = 0; v < vocab; v++) {
          const [e, r] = [logits[row * vocab + v], reference[offset + row * vocab + v]];
          maxDiff = Math.max(maxDiff, Math.abs(e - r));
          if (e > logits[row * vocab + engineBest]) engineBest = v;
          if (r > reference[offset + row * vocab + referenceBest]) referenceBest = v;
        }
        if (engineBest === referenceBest) top1++;
      }
      offset += logits.length;
    }
    const ok = result.layers === model.config.numLayers && sameTokens === PROMPTS.length && top1 === positions && maxDiff <= TOLERANCE;
    failed ||= !ok;
    console.log(
      `${kind} (layers ${summary.removedLayers[0]}..${summary.removedLayers.at(-1)} removed): transformers ${result.transformers} loads ${result.layers} layers; ` +
        `tokens equal for ${sameTokens}/${PROMPTS.length} prompts; top-1 equal at ${top1}/${positions} positions; max |Δlogit| ${maxDiff.toExponential(2)} (tolerance ${TOLERANCE}) ${ok ? 'ok' : 'FAILED'}`,
    );
    rmSync(outDir, { recursive: true, force: true });
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
if (failed) process.exit(1);
