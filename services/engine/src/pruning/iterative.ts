/**
 * Removing layers one at a time, the baseline a contiguous block with a replacement is measured against
 * (ShortGPT-style, but re-measured after each removal): score every single layer of the current model
 * by cos(h[i], h[i+1]) on the calibration windows, drop the most redundant one, and score the smaller
 * model again — `size` times. Nothing is trained; the result is a plain checkpoint without those layers.
 */
import { join } from 'node:path';
import { EngineError } from '../errors.js';
import { computeImportance } from '../importance.js';
import { iterativeCandidateId, type PlanCandidate } from '../contract/plan-candidate.js';
import { layoutWithoutLayers, prunedStreamedModel } from './assemble.js';
import { evaluate, type PruneRun } from './prune.js';
import { blankCandidate, candidateAbort, candidateFigures, candidateRun, readSavedCandidate, saveCandidate, type SweepOptions } from './sweep.js';


/** The original layers to remove, in the order they were dropped: each time the most redundant one of the model left. */
export async function layersToDropOneByOne(run: PruneRun, size: number, signal: AbortSignal | undefined, onStep?: (removed: readonly number[]) => void): Promise<number[]> {
  const { session, settings } = run;
  const removed: number[] = [];
  for (let step = 0; step < size; step++) {
    const layout = layoutWithoutLayers(session.info, removed);
    // The original's runtime is the session's (kept until it closes); a pruned model's is this step's own.
    const own = removed.length > 0;
    const runtime = own ? await session.runtimeFor(prunedStreamedModel(session.model, layout)) : await session.runtime();
    try {
      const profile = await computeImportance(runtime, layout.numLayers, session.data, settings.seqLen, { blockSizes: [1], batchSize: settings.batchSize, signal });
      removed.push(layout.layerSources[profile.blocks[0].bestStart]!);
    } finally {
      if (own) await runtime.dispose();
    }
    onStep?.(removed);
  }
  return removed;
}

export async function runIterative(run: PruneRun, options: SweepOptions, size: number, place: { index: number; count: number }): Promise<Omit<PlanCandidate, 'pareto'>> {
  const id = iterativeCandidateId(size);
  const dir = join(options.candidatesDir, id);
  const done = readSavedCandidate(dir);
  if (done) return done;
  const { signal, cancelled } = candidateAbort(options, id);
  const child = candidateRun(run, options, id, place, { start: 0, size }, 'NONE', signal);
  const cancelledResult = (): Omit<PlanCandidate, 'pareto'> => ({ ...blankCandidate(run, id, { start: 0, size }, 'NONE', true, []), status: 'CANCELLED' });
  if (cancelled()) return cancelledResult();
  try {
    const removed = await layersToDropOneByOne(child, size, signal, (so) => child.report('PROFILING', `candidate ${id}: dropped layer ${so.at(-1)} (0-based, of the original); removed so far ${so.join(', ')}`));
    child.block = { start: Math.min(...removed), size };
    child.removedLayers = removed;
    child.report('ASSEMBLING', `candidate ${id}: the model without layers ${[...removed].sort((a, b) => a - b).join(', ')}`);
    child.layout = layoutWithoutLayers(run.session.info, removed);
    child.pruned = prunedStreamedModel(run.session.model, child.layout);
    await evaluate(child);
    const result = candidateFigures(child, id, true, [...removed].sort((a, b) => a - b));
    saveCandidate(options, id, result, { weights: null, training: null, removedLayers: removed });
    return result;
  } catch (error) {
    if (error instanceof EngineError && error.code === 'CANCELLED' && cancelled()) {
      return cancelledResult();
    }
    throw error;
  }
}
