/**
 * What a worker sends back when it finishes a plan (`completePlan`), in the gateway's vocabulary: the
 * engine decides here what its results mean (which perplexities are the plan's, what a task's stability
 * is) and the gateway stores them as they are.
 *
 * Scores travel as JSON, where NaN and ±Infinity become null. `PlanResultWireSchema` accepts those nulls
 * so the gateway can name the score that is not finite (the model's fault: INVALID_WEIGHTS);
 * `PlanResultSchema` is the same shape with finite numbers only.
 */
import { z } from 'zod';
import { parseWith } from './parse.js';
import { planCandidateSchema } from './plan-candidate.js';

function planResultSchema<Score extends z.ZodType<number | null>>(score: Score) {
  const blockScores = z.object({ blockSize: z.number().int().min(1), scores: z.array(score) });
  const profile = z.object({
    samples: z.number().int().min(1),
    seqLen: z.number().int().min(1),
    /** Cosine similarity of each block's input and output, per block size, one score per start. */
    blocks: z.array(blockScores),
    angularDistance: z.array(blockScores),
    /** Per layer: 1 − cosine of its input and output. */
    blockInfluence: z.array(score),
  });
  const stability = z.object({
    /** Perplexity of the original and the pruned model on each evaluation text (or on held-out calibration windows when none was given). */
    perplexity: z.array(
      z.object({
        dataset: z.string(),
        tokens: z.number().int().min(0),
        original: score,
        pruned: score,
        /** A healed plan: the pruned model with its fitted replacement, before healing; null when the plan did not heal. */
        prunedBeforeHealing: score.nullable().default(null),
      }),
    ),
    tasks: z.array(
      z.object({
        task: z.string(),
        samples: z.number().int().min(0),
        accuracyOriginal: score,
        accuracyPruned: score,
        /** Share of items where both models pick the same answer. */
        agreement: score,
        /** The paper's stability metric. */
        stability: score,
      }),
    ),
    /** Mean cosine of the replacement's output and the removed block's output on held-out windows. */
    hiddenStateCosine: score.nullable(),
  });
  const pruned = z.object({
    block: z.object({ start: z.number().int().min(0), size: z.number().int().min(1) }),
    removedLayers: z.array(z.number().int().min(0)),
    numParameters: z.object({ before: score, after: score }),
    /** Importance of every start at the removed block's size; null when the start was given. */
    importance: blockScores.nullable(),
    /** Optimizer steps taken, and the step a resumed run started from; null when nothing was trained. */
    training: z.object({ steps: z.number().int().min(0), resumedFromStep: z.number().int().min(0).nullable() }).nullable(),
    stability,
  });
  return z.object({
    /** Where the pruned checkpoint was published; null for a dry run. */
    outputUri: z.string().nullable(),
    /** A sweep publishes its candidates' trained replacements under outputUri (see exportCandidate); nothing is pruned. */
    // Two members share dryRun: false, so a plain union (parse.ts reports the member a value came closest to).
    outcome: z.union([
      z.object({
        dryRun: z.literal(true),
        profile,
        /** A sweep's dry run: what the sweep will make and cost (see pruning/sweep-estimate.ts). */
        sweepEstimate: z.object({ candidates: z.number().int().min(0), hiddenStateBytes: score, seconds: score }).optional(),
      }),
      z.object({ dryRun: z.literal(false), pruned }),
      z.object({ dryRun: z.literal(false), sweep: z.object({ profile, candidates: z.array(planCandidateSchema(score)) }) }),
    ]),
  });
}

export const PlanResultSchema = planResultSchema(z.number());
export const PlanResultWireSchema = planResultSchema(z.number().nullable());
export type PlanResult = z.infer<typeof PlanResultSchema>;
export type PlanResultWire = z.infer<typeof PlanResultWireSchema>;
export type PlanOutcome = PlanResult['outcome'];
export type ImportanceProfileResult = Extract<PlanOutcome, { dryRun: true }>['profile'];
export type PrunedResult = Extract<PlanOutcome, { pruned: unknown }>['pruned'];
export type SweepResult = Extract<PlanOutcome, { sweep: unknown }>['sweep'];
export type SweepEstimateRecord = NonNullable<Extract<PlanOutcome, { dryRun: true }>['sweepEstimate']>;

/** A worker's result as it arrives: shapes checked, scores possibly null (not finite). */
export function parsePlanResultWire(value: unknown): PlanResultWire {
  return parseWith(PlanResultWireSchema, value, 'the plan result');
}

/** A result whose scores are all finite (check with the wire parser first to name the one that is not). */
export function parsePlanResult(value: unknown): PlanResult {
  return parseWith(PlanResultSchema, value, 'the plan result');
}
