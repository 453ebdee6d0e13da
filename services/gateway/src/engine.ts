/**
 * The parts of the engine the gateway builds on, in one place. The public index does not export the
 * pruning defaults and block arithmetic yet, so those come from their modules directly; when the index
 * exports them, only this file changes.
 */
export { EngineError, SUPPORTED_MODEL_TYPES, inspectModel, type ModelInfo } from '@streamline/engine';
export { DEFAULT_TRAINING } from '@streamline/engine/src/pruning/prune.js';
export { blockSizeForSparsity } from '@streamline/engine/src/pruning/block-choice.js';
export { checkReplacementFits } from '@streamline/engine/src/pruning/replacement.js';

/** The engine's defaults for what `prune` takes outside its training settings (see prune.ts). */
export const DEFAULT_CALIBRATION = { samples: 32, seqLen: 128 } as const;
export const DEFAULT_RUN = { batchSize: 8, validationFraction: 0.1, seed: 0, warmupRatio: 0.05 } as const;
/** The engine's evaluation defaults: 64 windows of min(256, context) tokens. */
export const DEFAULT_EVALUATION_WINDOWS = { samples: 64, seqLen: 256 } as const;
