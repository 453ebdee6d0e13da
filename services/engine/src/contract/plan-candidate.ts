/**
 * One candidate of a sweep, as the engine reports it and the API shows it (`PruningPlan.candidates`).
 * `id` names it within its plan: `n<size>-s<start>-<kind>` for a contiguous block, `n<size>-iterative`
 * for layers removed one at a time.
 */
import { z } from 'zod';
import { REPLACEMENT_KINDS, type ReplacementKind } from './replacement-kind.js';

/** `n<size>-s<start>-<kind>`: the contiguous block of `size` layers from `start`, replaced by `kind`. */
export const contiguousCandidateId = (size: number, start: number, kind: ReplacementKind) => `n${size}-s${start}-${kind.toLowerCase()}`;
/** `n<size>-iterative`: `size` layers removed one at a time. */
export const iterativeCandidateId = (size: number) => `n${size}-iterative`;

/** What a candidate id says, or null when it is neither form (the kind as written, lower case). */
export function parseCandidateId(id: string): { size: number; start: number; kind: string } | { size: number; iterative: true } | null {
  const block = /^n(\d+)-s(\d+)-([a-z]+)$/.exec(id);
  if (block) return { size: Number(block[1]), start: Number(block[2]), kind: block[3] };
  const iterative = /^n(\d+)-iterative$/.exec(id);
  return iterative ? { size: Number(iterative[1]), iterative: true } : null;
}

export const CANDIDATE_STATUSES = ['DONE', 'CANCELLED'] as const;
export type CandidateStatus = (typeof CANDIDATE_STATUSES)[number];

export function planCandidateSchema<Score extends z.ZodType<number | null>>(score: Score) {
  return z.object({
    id: z.string().min(1),
    status: z.enum(CANDIDATE_STATUSES),
    /** 0-based first layer of the block; for an iterative candidate, its first removed layer. */
    start: z.number().int().min(0),
    blockSize: z.number().int().min(1),
    replacement: z.enum(REPLACEMENT_KINDS),
    iterative: z.boolean(),
    /** 0-based original layers removed (a LAYER replacement then inserts one). */
    removedLayers: z.array(z.number().int().min(0)),
    parametersBefore: score,
    /** Null for a cancelled candidate (nothing was assembled). */
    parametersAfter: score.nullable(),
    /** On the plan's first perplexity text (or held-out calibration windows when none was given). */
    perplexityOriginal: score.nullable(),
    perplexity: score.nullable(),
    /** Per multiple-choice task, when tasks were given. */
    tasks: z.array(z.object({ task: z.string(), accuracyOriginal: score, accuracy: score, stability: score })),
    /** The best epoch's training and validation MSE; null when nothing was trained. */
    trainingLoss: score.nullable(),
    validationLoss: score.nullable(),
    /** On the front of parameters removed (more is better) vs perplexity (less is better). */
    pareto: z.boolean(),
  });
}

export const PlanCandidateSchema = planCandidateSchema(z.number());
export const PlanCandidateWireSchema = planCandidateSchema(z.number().nullable());
export type PlanCandidate = z.infer<typeof PlanCandidateSchema>;
