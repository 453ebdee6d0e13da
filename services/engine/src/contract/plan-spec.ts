/**
 * A plan's settings, resolved: every default filled in, in the API's names (CreatePruningPlanInput's).
 * The gateway resolves and stores it (`PruningPlan.config`), a worker receives it with its claim, and
 * the engine runs it as it is. `version` says which shape a stored spec has; the gateway's migrations
 * bring older rows to the current one.
 *
 * Dataset and task `source`s are URIs (file://, s3://); a worker makes them local before running.
 */
import { z } from 'zod';
import { parseWith } from './parse.js';
import { REPLACEMENT_KINDS } from './replacement-kind.js';
import { CandidateSourceSchema, SweepSpecSchema } from './sweep-spec.js';

export const PLAN_SPEC_VERSION = 2;

const integer = (min: number) => z.number().int().min(min);

export const DatasetSpecSchema = z.strictObject({
  source: z.string().min(1),
  /** Windows read (calibration: all of them train, less the validation share; evaluation: scored). */
  samples: integer(1),
  seqLen: integer(2),
});
export type DatasetSpec = z.infer<typeof DatasetSpecSchema>;

export const TrainingSpecSchema = z.strictObject({
  /** null: as many epochs as it takes to make at least `minSteps` optimizer steps. */
  epochs: integer(1).nullable(),
  minSteps: integer(1),
  batchSize: integer(1),
  learningRate: z.number().gt(0),
  minLearningRate: z.number().min(0),
  weightDecay: z.number().min(0),
  /** Fraction of all optimizer steps spent warming the learning rate up. */
  warmupRatio: z.number().min(0).lt(1),
  gradientAccumulation: integer(1),
  maxGradNorm: z.number().gt(0),
  /** Seeded share of the calibration windows held out for validation. */
  validationFraction: z.number().min(0).lt(1),
  seed: integer(0),
  /** Optimizer steps between resumable checkpoints. */
  checkpointEvery: integer(1),
});
export type TrainingSpec = z.infer<typeof TrainingSpecSchema>;

/** Healing by distillation after the replacement is fitted (trained kinds only). */
export const HealingSpecSchema = z.strictObject({
  /** Optimizer steps at most; early stopping may end sooner. */
  steps: integer(1),
  learningRate: z.number().gt(0),
  /** Seeded share of the calibration windows held out for early stopping (the training split's windows at the same fraction). */
  validationFraction: z.number().min(0).lt(1),
  /** Validations (one every twentieth of the steps) without improvement before healing stops. */
  patience: integer(1),
});
export type HealingSpec = z.infer<typeof HealingSpecSchema>;

export const EvaluationSpecSchema = z.strictObject({
  /** Texts scored by perplexity, each at its own window count and length. */
  perplexity: z.array(DatasetSpecSchema),
  /** Multiple-choice task files (.jsonl URIs). */
  tasks: z.array(z.string().min(1)),
  /** Items per task; null: every item (up to the operator's bound). */
  limit: integer(1).nullable(),
});
export type EvaluationSpec = z.infer<typeof EvaluationSpecSchema>;

export const PlanSpecSchema = z.strictObject({
  version: z.literal(PLAN_SPEC_VERSION),
  /** The block size; resolved from targetSparsity when that was given. */
  layersToPrune: integer(1),
  targetSparsity: z.number().gt(0).lt(1).nullable(),
  /** The sparsity the chosen block size gives (before any replacement is inserted), when the target was given. */
  estimatedSparsity: z.number().min(0).max(1).nullable(),
  /** 0-based first layer of the block; null: the most redundant block by importance. */
  startLayer: integer(0).nullable(),
  replacement: z.enum(REPLACEMENT_KINDS),
  /** Profile every block size and stop: nothing is trained or written. */
  dryRun: z.boolean(),
  calibration: DatasetSpecSchema,
  training: TrainingSpecSchema,
  /** null: no healing. Absent in specs stored before healing existed, which read as null. */
  healing: HealingSpecSchema.nullable().default(null),
  evaluation: EvaluationSpecSchema,
  /** Many candidates instead of one block (layersToPrune, startLayer and replacement then describe none); absent or null: no sweep. */
  sweep: SweepSpecSchema.nullish(),
  /** Publish this sweep candidate's trained replacement instead of training one (exportCandidate); absent or null: train. */
  fromCandidate: CandidateSourceSchema.nullish(),
});
export type PlanSpec = z.infer<typeof PlanSpecSchema>;

/** The spec, checked; BAD_INPUT naming every field that does not fit (`what` says whose spec it is). */
export function parsePlanSpec(value: unknown, what = 'the plan spec'): PlanSpec {
  return parseWith(PlanSpecSchema, value, what);
}

/** Every dataset and task file of a spec, with the spec field it is at (the API's input field names). */
export function planSpecSources(spec: PlanSpec): { field: string; source: string; kind: 'text' | 'task' }[] {
  return [
    { field: 'calibration.source', source: spec.calibration.source, kind: 'text' },
    ...spec.evaluation.perplexity.map((d, i) => ({ field: `evaluation.perplexity[${i}].source`, source: d.source, kind: 'text' as const })),
    ...spec.evaluation.tasks.map((source, i) => ({ field: `evaluation.tasks[${i}]`, source, kind: 'task' as const })),
  ];
}
