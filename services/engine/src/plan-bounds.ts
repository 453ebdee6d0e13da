/**
 * Upper bounds on what one pruning plan may ask for: how much data it reads, how long it trains, how
 * much it evaluates. The gateway refuses a plan beyond them at creation (naming the field); the engine
 * checks them again before it runs a plan (a config that did not come through the gateway, or a gateway
 * with other settings). The defaults admit 512 × 256 calibration windows and 32 × 2048 for a 7B model;
 * the main ones are operator settings (STREAMLINE_PLAN_MAX_*), read the same way by both.
 */
import { EngineError } from './errors.js';
import type { PlanSpec } from './contract/plan-spec.js';
import { DEFAULT_MAX_SWEEP_CANDIDATES } from './contract/sweep-spec.js';

export interface PlanBounds {
  /** Calibration windows, and training samples. */
  readonly maxSamples: number;
  readonly maxEpochs: number;
  /** Minimum optimizer steps a plan may ask for. */
  readonly maxSteps: number;
  readonly maxBatchSize: number;
  readonly maxGradientAccumulation: number;
  readonly maxLearningRate: number;
  readonly maxWeightDecay: number;
  readonly maxGradNorm: number;
  /** Perplexity text files per plan. */
  readonly maxEvaluationTexts: number;
  /** Windows (samples) per perplexity text. */
  readonly maxEvaluationWindows: number;
  /** Multiple-choice task files per plan. */
  readonly maxEvaluationTasks: number;
  /** Items scored per task (`evaluation.limit`). */
  readonly maxEvaluationItems: number;
  /** Candidates one sweep may make (each is trained and evaluated). */
  readonly maxSweepCandidates: number;
}

export const DEFAULT_PLAN_BOUNDS: PlanBounds = {
  maxSamples: 4096,
  maxEpochs: 1000,
  maxSteps: 100_000,
  maxBatchSize: 1024,
  maxGradientAccumulation: 1024,
  maxLearningRate: 1,
  maxWeightDecay: 1,
  maxGradNorm: 1e6,
  maxEvaluationTexts: 16,
  maxEvaluationWindows: 1024,
  maxEvaluationTasks: 16,
  maxEvaluationItems: 10_000,
  maxSweepCandidates: DEFAULT_MAX_SWEEP_CANDIDATES,
};

/** The environment variable of each bound an operator may change (positive integers). */
export const PLAN_BOUND_SETTINGS = {
  maxSamples: 'STREAMLINE_PLAN_MAX_SAMPLES',
  maxEpochs: 'STREAMLINE_PLAN_MAX_EPOCHS',
  maxSteps: 'STREAMLINE_PLAN_MAX_STEPS',
  maxBatchSize: 'STREAMLINE_PLAN_MAX_BATCH_SIZE',
  maxGradientAccumulation: 'STREAMLINE_PLAN_MAX_GRADIENT_ACCUMULATION',
  maxEvaluationTexts: 'STREAMLINE_PLAN_MAX_EVALUATION_TEXTS',
  maxEvaluationWindows: 'STREAMLINE_PLAN_MAX_EVALUATION_WINDOWS',
  maxEvaluationTasks: 'STREAMLINE_PLAN_MAX_EVALUATION_TASKS',
  maxEvaluationItems: 'STREAMLINE_PLAN_MAX_EVALUATION_ITEMS',
  maxSweepCandidates: 'STREAMLINE_PLAN_MAX_SWEEP_CANDIDATES',
} as const satisfies Partial<Record<keyof PlanBounds, string>>;

/** The bounds with the operator's STREAMLINE_PLAN_MAX_* settings applied; a malformed setting throws. */
export function planBoundsFromEnv(env: NodeJS.ProcessEnv = process.env): PlanBounds {
  const bounds: Record<string, number> = { ...DEFAULT_PLAN_BOUNDS };
  for (const [key, name] of Object.entries(PLAN_BOUND_SETTINGS)) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    const value = Number(raw);
    if (!Number.isSafeInteger(value) || value < 1) throw new Error(`${name}=${JSON.stringify(raw)} is not a positive integer`);
    bounds[key] = value;
  }
  return bounds as unknown as PlanBounds;
}

/**
 * Refuses (BAD_INPUT naming the setting, its value and the bound) a plan beyond the bounds. Sequence
 * lengths are checked against the model's context where the model is read. The spec's parser has
 * already checked each field's type and natural range; these are the operator's limits.
 */
export function checkPlanBounds(spec: PlanSpec, bounds: PlanBounds = DEFAULT_PLAN_BOUNDS): void {
  const integer = (name: string, value: number | null | undefined, min: number, max: number) => {
    if (value === undefined || value === null) return;
    if (!(Number.isInteger(value) && value >= min && value <= max)) throw new EngineError('BAD_INPUT', `${name} ${value} is out of range; expected an integer from ${min} to ${max}`);
  };
  const number = (name: string, value: number | null | undefined, range: string, ok: (v: number) => boolean) => {
    if (value === undefined || value === null) return;
    if (!(Number.isFinite(value) && ok(value))) throw new EngineError('BAD_INPUT', `${name} ${value} is out of range; expected ${range}`);
  };
  const t = spec.training;
  integer('calibration.samples', spec.calibration.samples, 1, bounds.maxSamples);
  integer('calibration.seqLen', spec.calibration.seqLen, 2, Number.MAX_SAFE_INTEGER);
  integer('training.epochs', t.epochs, 1, bounds.maxEpochs);
  integer('training.minSteps', t.minSteps, 1, bounds.maxSteps);
  integer('training.batchSize', t.batchSize, 1, bounds.maxBatchSize);
  integer('training.gradientAccumulation', t.gradientAccumulation, 1, bounds.maxGradientAccumulation);
  number('training.learningRate', t.learningRate, `a number in (0, ${bounds.maxLearningRate}]`, (v) => v > 0 && v <= bounds.maxLearningRate);
  number('training.minLearningRate', t.minLearningRate, `a number in [0, ${t.learningRate}] (the learning rate)`, (v) => v >= 0 && v <= t.learningRate);
  number('training.weightDecay', t.weightDecay, `a number in [0, ${bounds.maxWeightDecay}]`, (v) => v >= 0 && v <= bounds.maxWeightDecay);
  number('training.warmupRatio', t.warmupRatio, 'a number in [0, 1)', (v) => v >= 0 && v < 1);
  number('training.maxGradNorm', t.maxGradNorm, `a number in (0, ${bounds.maxGradNorm}]`, (v) => v > 0 && v <= bounds.maxGradNorm);
  number('training.validationFraction', t.validationFraction, 'a number in [0, 1)', (v) => v >= 0 && v < 1);
  if (spec.healing) {
    integer('healing.steps', spec.healing.steps, 1, bounds.maxSteps);
    number('healing.learningRate', spec.healing.learningRate, `a number in (0, ${bounds.maxLearningRate}]`, (v) => v > 0 && v <= bounds.maxLearningRate);
    number('healing.validationFraction', spec.healing.validationFraction, 'a number in [0, 1)', (v) => v >= 0 && v < 1);
  }
  const { perplexity, tasks, limit } = spec.evaluation;
  integer('evaluation.perplexity (count)', perplexity.length, 0, bounds.maxEvaluationTexts);
  integer('evaluation.tasks (count)', tasks.length, 0, bounds.maxEvaluationTasks);
  perplexity.forEach((text, i) => {
    integer(`evaluation.perplexity[${i}].samples`, text.samples, 1, bounds.maxEvaluationWindows);
    integer(`evaluation.perplexity[${i}].seqLen`, text.seqLen, 2, Number.MAX_SAFE_INTEGER);
  });
  integer('evaluation.limit', limit, 1, bounds.maxEvaluationItems);
}
