/**
 * The engine's defaults in the plan spec's names: what the gateway fills into a spec for every setting
 * a plan leaves out (bounded by the operator's STREAMLINE_PLAN_MAX_* settings and the model's context).
 */
import { DEFAULT_EVALUATION_SEQ_LEN, DEFAULT_TEXT_WINDOWS } from '../evaluation/defaults.js';
import { DEFAULT_HEALING, DEFAULT_RUN, DEFAULT_TRAINING, DEFAULT_WARMUP_RATIO } from '../pruning/defaults.js';
import type { HealingSpec, TrainingSpec } from './plan-spec.js';

export const PLAN_DEFAULTS = {
  calibration: { samples: DEFAULT_RUN.samples, seqLen: DEFAULT_RUN.seqLen },
  /** Each perplexity text: its windows and their length (the model's context when shorter). */
  evaluationText: { samples: DEFAULT_TEXT_WINDOWS, seqLen: DEFAULT_EVALUATION_SEQ_LEN },
  training: {
    epochs: null,
    minSteps: DEFAULT_TRAINING.minSteps,
    batchSize: DEFAULT_RUN.batchSize,
    learningRate: DEFAULT_TRAINING.learningRate,
    minLearningRate: DEFAULT_TRAINING.minLearningRate,
    weightDecay: DEFAULT_TRAINING.weightDecay,
    warmupRatio: DEFAULT_WARMUP_RATIO,
    gradientAccumulation: DEFAULT_TRAINING.gradAccum,
    maxGradNorm: DEFAULT_TRAINING.gradClip,
    validationFraction: DEFAULT_RUN.valFraction,
    seed: DEFAULT_RUN.seed,
    checkpointEvery: DEFAULT_TRAINING.checkpointEvery,
  } satisfies TrainingSpec,
  /** Healing asked for without settings. */
  healing: { ...DEFAULT_HEALING } satisfies HealingSpec,
} as const;
