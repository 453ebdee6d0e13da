/**
 * A sweep: many candidate prunings of one model in one plan — each block size at its `topStarts` most
 * redundant starts, with each replacement kind — trained and evaluated from one pass over the
 * calibration data, so that a user sees the trade-off between layers removed and quality and exports
 * the candidate they want (`exportCandidate`). `iterative` adds, per block size, the model that removes
 * the same number of layers one at a time (no replacement).
 */
import { z } from 'zod';
import { EngineError } from '../errors.js';
import { REPLACEMENT_KINDS } from './replacement-kind.js';

/** Default of STREAMLINE_PLAN_MAX_SWEEP_CANDIDATES: the most candidates one sweep may train. */
export const DEFAULT_MAX_SWEEP_CANDIDATES = 16;

export const SweepSpecSchema = z.strictObject({
  /** Block sizes (layers removed before any replacement is inserted), ascending, distinct. */
  blockSizes: z.array(z.number().int().min(1)).min(1),
  /** Starts per block size, the most redundant first (by the importance profile). */
  topStarts: z.number().int().min(1),
  /** Distinct kinds; every (size, start) is tried with each. */
  replacements: z.array(z.enum(REPLACEMENT_KINDS)).min(1),
  /** Also remove each block size's number of layers one at a time (most redundant single layer, re-measured after each). */
  iterative: z.boolean(),
});
export type SweepSpec = z.infer<typeof SweepSpecSchema>;

/** How many candidates a sweep makes on a model of `numLayers` layers (starts limited by what fits). */
export function sweepCandidateCount(sweep: SweepSpec, numLayers: number): number {
  const contiguous = sweep.blockSizes.reduce((n, size) => n + Math.min(sweep.topStarts, numLayers - size + 1) * sweep.replacements.length, 0);
  return contiguous + (sweep.iterative ? sweep.blockSizes.length : 0);
}

/** Refuses (BAD_INPUT, naming the field) a sweep that does not fit the model or makes too many candidates. */
export function checkSweep(sweep: SweepSpec, numLayers: number, maxCandidates: number): void {
  const distinct = <T>(values: readonly T[]) => new Set(values).size === values.length;
  for (const size of sweep.blockSizes) {
    if (!Number.isInteger(size) || size < 1 || size > numLayers - 1) throw new EngineError('BAD_INPUT', `sweep.blockSizes: ${size} is out of range; expected integers from 1 to ${numLayers - 1} (the model has ${numLayers} layers)`);
  }
  if (!distinct(sweep.blockSizes)) throw new EngineError('BAD_INPUT', `sweep.blockSizes: ${sweep.blockSizes.join(', ')} repeats a size`);
  for (const kind of sweep.replacements) {
    if (!REPLACEMENT_KINDS.includes(kind)) throw new EngineError('BAD_INPUT', `sweep.replacements: ${JSON.stringify(kind)} is not one of ${REPLACEMENT_KINDS.join(', ')}`);
  }
  if (!distinct(sweep.replacements)) throw new EngineError('BAD_INPUT', `sweep.replacements: ${sweep.replacements.join(', ')} repeats a kind`);
  const count = sweepCandidateCount(sweep, numLayers);
  if (count > maxCandidates) {
    throw new EngineError('BAD_INPUT', `sweep: ${count} candidates (block sizes × top starts × replacements${sweep.iterative ? ' + iterative' : ''}) is more than ${maxCandidates} (STREAMLINE_PLAN_MAX_SWEEP_CANDIDATES)`);
  }
}

/** The export of a sweep's candidate: the sweep plan and the candidate whose trained weights it publishes. */
export const CandidateSourceSchema = z.strictObject({
  planId: z.string().min(1),
  candidateId: z.string().min(1),
});
export type CandidateSource = z.infer<typeof CandidateSourceSchema>;
