import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { PlanEvent, TrainingSpec } from '../src/contract/index.js';
import { runPlan, stageProgress } from '../src/plan-runner.js';
import { testLocalPlan } from './fixtures/plan-spec.js';
import { STORIES_BIN, STORIES_TOKENIZER, runWithShared, sharedPath } from '@streamline/testing/shared-data';
import { writeTinyModel } from './fixtures/tiny-models.js';

const work = mkdtempSync(join(tmpdir(), 'streamline-plan-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const training: Partial<TrainingSpec> = {
  batchSize: 2,
  learningRate: 1e-2,
  minLearningRate: 1e-3,
  weightDecay: 1e-3,
  gradientAccumulation: 1,
  maxGradNorm: 5,
  validationFraction: 0.2,
  seed: 0,
  minSteps: 6,
  checkpointEvery: 2,
};

function expectRisingProgress(events: PlanEvent[]): void {
  for (let i = 1; i < events.length; i++) expect(events[i].progress).toBeGreaterThanOrEqual(events[i - 1].progress);
  for (const e of events) expect(e.progress).toBeGreaterThanOrEqual(0);
}

describe('plan runner', () => {
  it('places stages on one 0..1 progress scale', () => {
    expect(stageProgress('LOADING')).toBe(0);
    expect(stageProgress('TRAINING', 0.5)).toBeCloseTo(0.575, 6);
    expect(stageProgress('UPLOADING', 1)).toBe(1);
    // A healing plan: training, then healing, share the same span.
    expect(stageProgress('TRAINING', 1, true)).toBe(stageProgress('HEALING', 0, true));
    expect(stageProgress('HEALING', 1, true)).toBe(stageProgress('ASSEMBLING'));
  });

  it('runs a LAYER plan, reporting stages in order with training figures', async () => {
    const data = join(work, 'ids.jsonl');
    writeFileSync(data, Array.from({ length: 6 }, (_, i) => JSON.stringify({ input_ids: [1, 2 + i, 7, 9, 11, 3, 5, 8] })).join('\n'));
    const events: PlanEvent[] = [];
    const outcome = await runPlan(
      await testLocalPlan({ model: writeTinyModel('llama'), layersToPrune: 1, replacement: 'LAYER', dryRun: false, calibration: { source: data, samples: 6, seqLen: 8 }, training }),
      { workDir: join(work, 'w1'), outDir: join(work, 'o1'), onEvent: (e) => events.push(e) },
    );
    expect(outcome.dryRun).toBe(false);
    const stages = [...new Set(events.map((e) => e.stage))];
    expect(stages).toEqual(['LOADING', 'PROFILING', 'COLLECTING', 'TRAINING', 'ASSEMBLING', 'UPLOADING']);
    const trainingEvents = events.filter((e) => e.step !== undefined);
    expect(trainingEvents.at(-1)).toMatchObject({ step: 6, totalSteps: 6 });
    expect(trainingEvents[0].learningRate).toBeGreaterThan(0);
    expectRisingProgress(events);
  });

  it.skipIf(!runWithShared)('reports the quick held-out check on the calibration text as the perplexity when no evaluation text was given', async () => {
    const outDir = join(work, 'o3');
    const outcome = await runPlan(
      await testLocalPlan({
        model: STORIES_BIN,
        tokenizer: STORIES_TOKENIZER,
        replacement: 'NONE',
        calibration: { source: sharedPath('data/text/tinystories_val_excerpt.txt'), samples: 8, seqLen: 32 },
        training,
      }),
      { workDir: join(work, 'w3'), outDir, onEvent: () => {} },
    );
    if (!('pruned' in outcome)) throw new Error('expected a pruning run');
    expect(outcome.pruned.training).toBeNull(); // NONE: nothing trained
    const [row, ...rest] = outcome.pruned.stability.perplexity;
    expect(rest).toEqual([]);
    expect(row.dataset).toBe('calibration data (held-out windows)');
    // The same figures as the engine's quick check in streamline.json.
    const manifest = JSON.parse(readFileSync(join(outDir, 'streamline.json'), 'utf8'));
    expect(manifest.evaluation).toMatchObject({ seqLen: 32, perplexityOriginal: row.original, perplexityPruned: row.pruned });
    expect(manifest.evaluation.windows).toBeGreaterThan(0);
    expect(row.tokens).toBe(manifest.evaluation.windows * 31); // predicted tokens: each 32-token window predicts 31
    expect(row.pruned).toBeGreaterThan(row.original);
  });

  it.skipIf(!runWithShared)('stops a dry run after profiling every block size', async () => {
    const events: PlanEvent[] = [];
    const outcome = await runPlan(
      await testLocalPlan({ model: STORIES_BIN, layersToPrune: 2, replacement: 'LAYER', dryRun: true, calibration: { source: sharedPath('data/text/tinystories_val_excerpt.txt'), samples: 4, seqLen: 64 }, training }),
      { workDir: join(work, 'w2'), outDir: join(work, 'o2'), onEvent: (e) => events.push(e) },
    );
    expect(outcome.dryRun).toBe(true);
    if (outcome.dryRun) expect(outcome.profile.blocks.map((b) => b.blockSize)).toEqual([1, 2, 3, 4, 5]);
    expect(events.at(-1)!.stage).toBe('PROFILING');
    expectRisingProgress(events);
  });
});
