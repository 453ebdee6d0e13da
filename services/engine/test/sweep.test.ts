/**
 * Sweeps on the real stories260K: one run trains and evaluates every candidate from hidden states
 * collected once, marks the Pareto front, keeps each candidate's replacement, and exporting a candidate
 * from those weights gives the tensors of a single plan for that block (same seed and data).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { PlanEvent, TrainingSpec } from '../src/contract/index.js';
import { SafetensorsFile } from '../src/formats/safetensors.js';
import { runPlan } from '../src/plan-runner.js';
import { checkSweep } from '../src/contract/index.js';
import { paretoFront } from '../src/pruning/sweep.js';
import { EngineError } from '../src/errors.js';
import { testLocalPlan } from './fixtures/plan-spec.js';
import { STORIES_BIN, STORIES_TOKENIZER, TINYSTORIES_TXT, runWithShared } from '@streamline/testing/shared-data';

const work = mkdtempSync(join(tmpdir(), 'streamline-sweep-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const training: Partial<TrainingSpec> = { batchSize: 4, minSteps: 4, checkpointEvery: 2, validationFraction: 0.25, seed: 3, learningRate: 1e-3, minLearningRate: 1e-4 };
const calibration = { source: TINYSTORIES_TXT, samples: 8, seqLen: 64 };

export function expectTensorsClose(a: string, b: string, tolerance: number): number {
  const fa = SafetensorsFile.open(a);
  const fb = SafetensorsFile.open(b);
  try {
    expect([...fa.entries.keys()].sort()).toEqual([...fb.entries.keys()].sort());
    let worst = 0;
    for (const name of fa.entries.keys()) {
      const x = fa.read(name).data;
      const y = fb.read(name).data;
      expect(x.length).toBe(y.length);
      for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]));
    }
    expect(worst).toBeLessThanOrEqual(tolerance);
    return worst;
  } finally {
    fa.close();
    fb.close();
  }
}

describe('pareto front', () => {
  it('keeps the points no other removes at least as much with at most the perplexity', () => {
    const front = paretoFront([
      { removed: 10, perplexity: 5 },
      { removed: 20, perplexity: 6 },
      { removed: 20, perplexity: 7 }, // dominated by the one before
      { removed: 5, perplexity: 5.5 }, // dominated by the first
      { removed: 30, perplexity: null }, // cancelled: never on the front
    ]);
    expect(front).toEqual([true, true, false, false, false]);
  });

  it('refuses sweeps beyond the candidate bound or the model, naming the field', () => {
    const refusal = (fn: () => void) => {
      try {
        fn();
      } catch (error) {
        expect(error).toBeInstanceOf(EngineError);
        return (error as Error).message;
      }
      throw new Error('expected a refusal');
    };
    expect(refusal(() => checkSweep({ blockSizes: [1, 2, 3], topStarts: 2, replacements: ['LAYER', 'SWIGLU', 'LINEAR'], iterative: false }, 5, 16))).toMatch(/18 candidates .* more than 16 \(STREAMLINE_PLAN_MAX_SWEEP_CANDIDATES\)/);
    expect(refusal(() => checkSweep({ blockSizes: [5], topStarts: 1, replacements: ['LAYER'], iterative: false }, 5, 16))).toMatch(/sweep.blockSizes: 5 is out of range; expected integers from 1 to 4/);
  });
});

describe.skipIf(!runWithShared)('sweep on stories260K', () => {
  it('trains and evaluates every candidate from one collection, and a candidate exports as its single plan does', async () => {
    const events: PlanEvent[] = [];
    const sweepOut = join(work, 'sweep-out');
    const outcome = await runPlan(
      await testLocalPlan({ model: STORIES_BIN, tokenizer: STORIES_TOKENIZER, calibration, training, sweep: { blockSizes: [1, 2, 3], topStarts: 1, replacements: ['LAYER', 'LINEAR'], iterative: false } }),
      { workDir: join(work, 'sweep-work'), outDir: sweepOut, onEvent: (e) => events.push(e) },
    );
    if (!('sweep' in outcome)) throw new Error('expected a sweep outcome');
    const { candidates, profile } = outcome.sweep;
    expect(profile.blocks.map((b) => b.blockSize)).toEqual([1, 2, 3]);
    expect(candidates.map((c) => [c.blockSize, c.replacement])).toEqual([[1, 'LAYER'], [1, 'LINEAR'], [2, 'LAYER'], [2, 'LINEAR'], [3, 'LAYER'], [3, 'LINEAR']]);
    for (const c of candidates) {
      expect(c.status).toBe('DONE');
      expect(c.perplexity).toBeGreaterThan(1);
      // A LAYER replacing one layer removes nothing net.
      if (c.replacement === 'LAYER' && c.blockSize === 1) expect(c.parametersAfter).toBe(c.parametersBefore);
      else expect(c.parametersAfter).toBeLessThan(c.parametersBefore);
      expect(c.removedLayers).toHaveLength(c.blockSize);
      // The most redundant start of each size, by the profile.
      const scores = profile.blocks.find((b) => b.blockSize === c.blockSize)!.scores;
      expect(c.start).toBe(scores.indexOf(Math.max(...scores)));
    }
    expect(candidates.some((c) => c.pareto)).toBe(true);
    // The largest removal with the least perplexity among its size is on the front.
    const biggest = candidates.filter((c) => c.blockSize === 3 && c.replacement === 'LINEAR')[0];
    expect(biggest.pareto).toBe(true);
    // Every candidate's events carry its id; training events among them.
    expect(new Set(events.filter((e) => e.candidateId).map((e) => e.candidateId))).toEqual(new Set(candidates.map((c) => c.id)));
    expect(events.some((e) => e.candidateId === candidates[0].id && e.step !== undefined)).toBe(true);
    for (let i = 1; i < events.length; i++) expect(events[i].progress).toBeGreaterThanOrEqual(events[i - 1].progress);
    expect(readdirSync(sweepOut)).toContain(`candidate-${candidates[0].id}.safetensors`);

    // Export the 2-layer LAYER candidate from its saved weights, and run the single plan for that block.
    const chosen = candidates.find((c) => c.blockSize === 2 && c.replacement === 'LAYER')!;
    const single = { model: STORIES_BIN, tokenizer: STORIES_TOKENIZER, calibration, training, layersToPrune: 2, startLayer: chosen.start, replacement: 'LAYER' as const };
    await runPlan(await testLocalPlan(single), { workDir: join(work, 'single-work'), outDir: join(work, 'single-out'), onEvent: () => {} });
    const started = performance.now();
    const exported = await runPlan(
      { ...(await testLocalPlan({ ...single, fromCandidate: { planId: 'sweep', candidateId: chosen.id } })), candidateDir: join(work, 'sweep-work', 'candidates', chosen.id) },
      { workDir: join(work, 'export-work'), outDir: join(work, 'export-out'), onEvent: (e) => expect(e.stage).not.toBe('TRAINING') },
    );
    expect(performance.now() - started).toBeGreaterThan(0);
    if (!('pruned' in exported)) throw new Error('expected a pruned outcome');
    expect(exported.pruned.removedLayers).toEqual(chosen.removedLayers);
    expectTensorsClose(join(work, 'export-out', 'model.safetensors'), join(work, 'single-out', 'model.safetensors'), 1e-6);
  }, 600_000);

  it('scores the original on the tasks once for all candidates, and gives each candidate its figures against it', async () => {
    const events: PlanEvent[] = [];
    const copa = STORIES_BIN.replace('models/stories260K/stories260K.bin', 'data/mc/copa.jsonl');
    const outcome = await runPlan(
      await testLocalPlan({
        model: STORIES_BIN,
        tokenizer: STORIES_TOKENIZER,
        calibration,
        training,
        sweep: { blockSizes: [1, 2], topStarts: 1, replacements: ['LINEAR'], iterative: false },
        evaluation: { perplexity: [], tasks: [copa], limit: 8 },
      }),
      { workDir: join(work, 'tasks-work'), outDir: join(work, 'tasks-out'), onEvent: (e) => events.push(e) },
    );
    if (!('sweep' in outcome)) throw new Error('expected a sweep outcome');
    const { candidates } = outcome.sweep;
    expect(candidates).toHaveLength(2);
    // one scoring of the original for the sweep, one of each candidate
    expect(events.filter((e) => /^original: task .*copa\.jsonl done$/.test(e.message))).toHaveLength(1);
    expect(events.filter((e) => /^pruned: task .*copa\.jsonl done$/.test(e.message))).toHaveLength(2);
    for (const c of candidates) expect(c.tasks).toEqual([expect.objectContaining({ accuracyOriginal: candidates[0].tasks[0].accuracyOriginal })]);
  }, 600_000);

  it('stops a candidate cancelled on its own mid-training and goes on with the others', async () => {
    const own = new Map<string, AbortController>();
    const signalOf = (id: string) => {
      if (!own.has(id)) own.set(id, new AbortController());
      return own.get(id)!.signal;
    };
    const events: PlanEvent[] = [];
    const outcome = await runPlan(
      await testLocalPlan({ model: STORIES_BIN, tokenizer: STORIES_TOKENIZER, calibration, training: { ...training, minSteps: 40 }, sweep: { blockSizes: [1, 2], topStarts: 1, replacements: ['LAYER'], iterative: false } }),
      {
        workDir: join(work, 'cancel-work'),
        outDir: join(work, 'cancel-out'),
        candidateSignal: signalOf,
        onEvent: (e) => {
          events.push(e);
          // The first candidate is cancelled at its third training step.
          if (e.candidateId !== undefined && e.step === 3 && events.filter((x) => x.step !== undefined).length === 3) own.get(e.candidateId)?.abort();
        },
      },
    );
    if (!('sweep' in outcome)) throw new Error('expected a sweep outcome');
    const [first, second] = outcome.sweep.candidates;
    expect(first).toMatchObject({ status: 'CANCELLED', parametersAfter: null, perplexity: null, pareto: false });
    expect(second).toMatchObject({ status: 'DONE', pareto: true });
    expect(Math.max(...events.filter((e) => e.candidateId === first.id && e.step !== undefined).map((e) => e.step!))).toBeLessThan(40);
    expect(events.filter((e) => e.candidateId === second.id && e.step !== undefined).at(-1)!.step).toBe(40);
    expect(readdirSync(join(work, 'cancel-out'))).not.toContain(`candidate-${first.id}.json`);
  }, 600_000);

  it('removes layers one at a time beside the contiguous block, and exports them as a plain checkpoint', async () => {
    const outcome = await runPlan(
      await testLocalPlan({ model: STORIES_BIN, tokenizer: STORIES_TOKENIZER, calibration, training, sweep: { blockSizes: [2], topStarts: 1, replacements: ['NONE'], iterative: true } }),
      { workDir: join(work, 'iter-work'), outDir: join(work, 'iter-out'), onEvent: () => {} },
    );
    if (!('sweep' in outcome)) throw new Error('expected a sweep outcome');
    const [block, iterative] = outcome.sweep.candidates;
    expect(block).toMatchObject({ blockSize: 2, replacement: 'NONE', iterative: false });
    expect(iterative).toMatchObject({ id: 'n2-iterative', blockSize: 2, replacement: 'NONE', iterative: true, status: 'DONE', trainingLoss: null });
    expect(iterative.removedLayers).toHaveLength(2);
    expect(new Set(iterative.removedLayers).size).toBe(2);
    // Two layers fewer either way: the same parameter count as the contiguous block.
    expect(iterative.parametersAfter).toBe(block.parametersAfter);
    expect(iterative.perplexity).toBeGreaterThan(1);

    const exported = await runPlan(
      { ...(await testLocalPlan({ model: STORIES_BIN, tokenizer: STORIES_TOKENIZER, calibration, training, layersToPrune: 2, startLayer: iterative.start, replacement: 'NONE', fromCandidate: { planId: 'sweep', candidateId: iterative.id } })), candidateDir: join(work, 'iter-work', 'candidates', iterative.id) },
      { workDir: join(work, 'iter-export-work'), outDir: join(work, 'iter-export'), onEvent: () => {} },
    );
    if (!('pruned' in exported)) throw new Error('expected a pruned outcome');
    expect(exported.pruned.removedLayers).toEqual(iterative.removedLayers);
    const config = JSON.parse(readFileSync(join(work, 'iter-export', 'config.json'), 'utf8'));
    expect(config.num_hidden_layers).toBe(3);
    expect(exported.pruned.stability.perplexity[0].pruned).toBeCloseTo(iterative.perplexity!, 4);
  }, 600_000);
});
