/**
 * What a prune uses when it is not told otherwise. Plain constants, apart from the runtimes, so the
 * gateway resolves a plan's settings from the same numbers the engine runs with.
 */
import type { HealingSettings } from './heal.js';
import type { TrainingSettings } from './train.js';

/** Calibration and run settings a prune takes when it is not told otherwise. */
export const DEFAULT_RUN = { samples: 32, seqLen: 128, batchSize: 8, valFraction: 0.1, seed: 0 } as const;

/** Held-out calibration windows a prune scores the pruned model on (its quick perplexity check). */
export const DEFAULT_EVAL_WINDOWS = 16;

/** Fraction of all steps spent warming up when a run gives no warm-up steps. */
export const DEFAULT_WARMUP_RATIO = 0.05;

export const DEFAULT_TRAINING: Omit<TrainingSettings, 'seed' | 'batchSize'> = {
  minSteps: 300,
  gradAccum: 1,
  learningRate: 2e-4,
  minLearningRate: 5e-5,
  weightDecay: 1e-3,
  gradClip: 5,
  checkpointEvery: 50,
};

/**
 * Healing when it is asked for without settings: a short distillation at a modest rate, validated on the
 * MSE stage's held-out share (the same windows at the same fraction and seed), stopping after 3
 * validations (each a twentieth of the steps) without improvement.
 */
export const DEFAULT_HEALING: HealingSettings = { steps: 200, learningRate: 2e-4, validationFraction: DEFAULT_RUN.valFraction, patience: 3 };
