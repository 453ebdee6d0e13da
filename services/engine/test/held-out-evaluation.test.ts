/**
 * Held-out evaluation: a perplexity text that is a different file from the calibration text is evaluated
 * from its first window, at its own seq-len and window count; only the calibration file itself — the same
 * bytes, whatever the path — skips the calibration windows. Counting windows (what the gateway does at
 * plan creation) agrees with what the evaluation reads.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCalibrationSamples } from '../src/data/calibration.js';
import { calibrationWindowsToSkip, countHeldOutWindows, isCalibrationSource } from '../src/data/held-out.js';
import { evaluateModels } from '../src/evaluation/evaluate.js';
import { loadModel } from '../src/models/model.js';
import type { TrainingSpec } from '../src/contract/index.js';
import { runPlan } from '../src/plan-runner.js';
import { loadTokenizer } from '../src/tokenizers/tokenizer.js';
import { charTokenizer } from './fixtures/char-tokenizer.js';
import { testLocalPlan } from './fixtures/plan-spec.js';
import { STORIES_BIN, STORIES_TOKENIZER, runWithShared, sharedPath } from '@streamline/testing/shared-data';
import { writeTinyModel } from './fixtures/tiny-models.js';

const work = mkdtempSync(join(tmpdir(), 'streamline-held-out-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function writeFile(name: string, text: string): string {
  const path = join(work, name);
  writeFileSync(path, text);
  return path;
}


describe('which windows of a text are held out', () => {
  const calibrationText = 'the quick brown fox jumps over the lazy dog. '.repeat(40); // 1801 tokens with BOS
  const calibration = writeFile('calibration.txt', calibrationText);
  const copy = writeFile('copy-of-calibration.txt', calibrationText);
  // 1 + 47 characters: exactly 3 windows of 16 tokens, far fewer than the 32 calibration windows.
  const heldOut = writeFile('held-out.txt', 'a different text, short: three windows of it!!!');
  const sameSizeOther = writeFile('same-size.txt', calibrationText.replace('quick', 'QUICK'));

  it('decides by content: a copy under another path is the calibration source, a same-size different file is not', async () => {
    const source = { path: calibration, windows: 32, seqLen: 16 };
    expect(await isCalibrationSource(copy, source)).toBe(true);
    expect(await isCalibrationSource(calibration, source)).toBe(true);
    expect(await isCalibrationSource(heldOut, source)).toBe(false);
    expect(await isCalibrationSource(sameSizeOther, source)).toBe(false);
  });

  it('skips the tokens calibration used: a .txt stream by tokens, a .jsonl by records', () => {
    expect(calibrationWindowsToSkip('a.txt', { windows: 32, seqLen: 16 }, 16)).toBe(32);
    expect(calibrationWindowsToSkip('a.txt', { windows: 32, seqLen: 16 }, 8)).toBe(64);
    expect(calibrationWindowsToSkip('a.txt', { windows: 3, seqLen: 16 }, 32)).toBe(2);
    expect(calibrationWindowsToSkip('a.jsonl', { windows: 3, seqLen: 16 }, 32)).toBe(3);
  });

  it('counts the windows the evaluation will read', async () => {
    const source = { path: calibration, windows: 32, seqLen: 16 };
    expect(await countHeldOutWindows(heldOut, charTokenizer, { seqLen: 16, wanted: 10, vocabSize: 64, calibration: source })).toEqual({ windows: 3, skipped: 0, available: 3 });
    expect(await countHeldOutWindows(copy, charTokenizer, { seqLen: 16, wanted: 10, vocabSize: 64, calibration: source })).toEqual({ windows: 42, skipped: 32, available: 10 });
    expect(await countHeldOutWindows(copy, charTokenizer, { seqLen: 16, wanted: 1000, vocabSize: 64, calibration: source })).toEqual({ windows: 112, skipped: 32, available: 80 });
    expect(await countHeldOutWindows(writeFile('blank.txt', '\n\n'), charTokenizer, { seqLen: 16, wanted: 1, vocabSize: 64 })).toEqual({ windows: 0, skipped: 0, available: 0 });
  });

  describe('evaluateModels on a tiny random model', () => {
    const model = loadModel(writeTinyModel('llama', { seed: 1 }));
    const base = { original: model, tokenizer: charTokenizer, tasks: [], runtime: { runtime: 'onnx' as const } };

    it('evaluates a distinct held-out file from its first window, at the seq-len and window count asked', async () => {
      const report = await evaluateModels({ ...base, texts: [{ path: heldOut, samples: 3, seqLen: 16 }], calibration: { path: calibration, windows: 32, seqLen: 16 } });
      expect(report.perplexity[0]).toMatchObject({ file: heldOut, windows: 3, seqLen: 16, tokens: 3 * 15, skippedCalibrationWindows: 0 });
      // The same figure as the file's first three windows read directly.
      const direct = await evaluateModels({ ...base, texts: [{ path: heldOut, samples: 3, seqLen: 16 }], skipWindows: 0 });
      expect(report.perplexity[0].original.perplexity).toBe(direct.perplexity[0].original.perplexity);
      expect(await loadCalibrationSamples(heldOut, charTokenizer, { samples: 3, seqLen: 16, vocabSize: 64 })).toHaveLength(3);
    });

    it('skips the calibration windows of the calibration file, even as a copy under another path', async () => {
      const report = await evaluateModels({
        ...base,
        texts: [
          { path: copy, samples: 4, seqLen: 8 },
          { path: heldOut, samples: 2, seqLen: 8 },
        ],
        calibration: { path: calibration, windows: 5, seqLen: 16 },
      });
      // 5 windows of 16 tokens are 10 windows of 8.
      expect(report.perplexity.map((p) => [p.windows, p.seqLen, p.skippedCalibrationWindows])).toEqual([
        [4, 8, 10],
        [2, 8, 0],
      ]);
      const direct = await evaluateModels({ ...base, texts: [{ path: copy, samples: 4, seqLen: 8 }], skipWindows: 10 });
      expect(report.perplexity[0].original.perplexity).toBe(direct.perplexity[0].original.perplexity);
    });

    it('refuses, before any model runs, a calibration file with nothing left after its calibration windows', async () => {
      await expect(evaluateModels({ ...base, texts: [{ path: copy, samples: 4, seqLen: 16 }], calibration: { path: calibration, windows: 112, seqLen: 16 } })).rejects.toMatchObject({
        code: 'BAD_INPUT',
        message: expect.stringMatching(/yields only 112 windows of 16 tokens, none left after skipping the first 112/),
      });
    });
  });
});

describe.skipIf(!runWithShared)('a plan on stories260K with a held-out evaluation file', () => {
  const tinyStories = sharedPath('data/text/tinystories_val_excerpt.txt');
  const text = readFileSync(tinyStories, 'utf8');
  // A few hundred characters from the excerpt's second half: a handful of 32-token windows, fewer than
  // the calibration's 8, so skipping the calibration windows in it (the bug) leaves none.
  const secondHalf = text.slice(Math.floor(text.length / 2));
  const heldOut = writeFile('held-out-stories.txt', secondHalf.slice(secondHalf.indexOf('\n') + 1).slice(0, 250));
  const copy = join(work, 'tinystories-copy.txt');
  copyFileSync(tinyStories, copy);
  const training: Partial<TrainingSpec> = { batchSize: 4, learningRate: 1e-3, minLearningRate: 1e-4, weightDecay: 0, gradientAccumulation: 1, maxGradNorm: 5, validationFraction: 0, seed: 0 };

  it('succeeds and reports perplexity on the held-out file at the seq-len and window count asked; the copy skips the calibration windows', async () => {
    const tokenizer = await loadTokenizer(STORIES_TOKENIZER);
    const windows = (await countHeldOutWindows(heldOut, tokenizer, { seqLen: 32, wanted: 100, vocabSize: 512 })).available;
    expect(windows).toBeGreaterThanOrEqual(2);
    expect(windows).toBeLessThan(8);
    const outDir = join(work, 'plan-out');
    const outcome = await runPlan(
      await testLocalPlan({
        model: STORIES_BIN,
        tokenizer: STORIES_TOKENIZER,
        layersToPrune: 1,
        replacement: 'NONE',
        calibration: { source: tinyStories, samples: 8, seqLen: 32 },
        training,
        evaluation: {
          perplexity: [
            { source: heldOut, samples: windows, seqLen: 32 },
            { source: copy, samples: 2, seqLen: 64 },
          ],
        },
      }),
      { workDir: join(work, 'plan-work'), outDir, onEvent: () => {} },
    );
    if (!('pruned' in outcome)) throw new Error('expected a pruning run');
    const [onHeldOut, onCopy] = outcome.pruned.stability.perplexity;
    expect(outcome.pruned.stability.perplexity).toHaveLength(2);
    expect(onHeldOut).toMatchObject({ dataset: heldOut, tokens: windows * 31 });
    expect(onHeldOut.pruned).toBeGreaterThan(1);
    expect(onCopy).toMatchObject({ dataset: copy, tokens: 2 * 63 });
    // Windows, seq-len and skipped calibration windows are in the engine's full report (streamline.json).
    const manifest = JSON.parse(readFileSync(join(outDir, 'streamline.json'), 'utf8'));
    const [heldOutReport, copyReport] = manifest.evaluation.report.perplexity;
    expect(heldOutReport).toMatchObject({ file: heldOut, windows, seqLen: 32, tokens: windows * 31, skippedCalibrationWindows: 0 });
    expect(heldOutReport.pruned.perplexity).toBe(onHeldOut.pruned);
    // 8 calibration windows of 32 tokens are 4 windows of 64.
    expect(copyReport).toMatchObject({ file: copy, windows: 2, seqLen: 64, skippedCalibrationWindows: 4 });
  });

  it('skips the quick perplexity check, rather than failing after the work, when calibration used up its file', async () => {
    const tokenizer = await loadTokenizer(STORIES_TOKENIZER);
    const windows = (await countHeldOutWindows(heldOut, tokenizer, { seqLen: 32, wanted: 100, vocabSize: 512 })).available;
    const messages: string[] = [];
    const outDir = join(work, 'plan-out-3');
    const outcome = await runPlan(
      await testLocalPlan({ model: STORIES_BIN, tokenizer: STORIES_TOKENIZER, layersToPrune: 1, replacement: 'NONE', calibration: { source: heldOut, samples: windows, seqLen: 32 }, training }),
      { workDir: join(work, 'plan-work-3'), outDir, onEvent: (e) => messages.push(e.message) },
    );
    if (!('pruned' in outcome)) throw new Error('expected a pruning run');
    // No evaluation texts and no quick check: no perplexity at all (not the held-out calibration row).
    expect(outcome.pruned.stability.perplexity).toEqual([]);
    const manifest = JSON.parse(readFileSync(join(outDir, 'streamline.json'), 'utf8'));
    expect(manifest.evaluation).not.toHaveProperty('perplexityPruned');
    expect(messages).toContain('no held-out windows left in the calibration file after the calibration ones; skipping the quick perplexity check');
  });

  it('refuses before any work an evaluation file with no window at its seq-len', async () => {
    const events: string[] = [];
    await expect(
      runPlan(
        await testLocalPlan({
          model: STORIES_BIN,
          tokenizer: STORIES_TOKENIZER,
          layersToPrune: 1,
          replacement: 'NONE',
          calibration: { source: tinyStories, samples: 8, seqLen: 32 },
          training,
          evaluation: { perplexity: [{ source: heldOut, samples: 1, seqLen: 512 }] },
        }),
        { workDir: join(work, 'plan-work-2'), outDir: join(work, 'plan-out-2'), onEvent: (e) => events.push(e.stage) },
      ),
    ).rejects.toMatchObject({ code: 'BAD_INPUT', message: expect.stringMatching(/evaluation text 0 .* yields 0 windows of 512 tokens; it needs at least one/) });
    expect(events.filter((stage) => stage !== 'LOADING')).toEqual([]);
  });
});
