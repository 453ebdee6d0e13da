/**
 * The replacement kinds (named in contract/replacement-kind.ts) as data: the tensors an inserted (non-layer) replacement is saved
 * with, and which families can express each. No tensor library here, so the gateway can check a plan
 * against them (../runtime/tfjs/inserted-forward.ts and replacement.ts hold the forward passes and training).
 */
import { EngineError } from '../errors.js';
import type { ArchitectureFamily } from '../models/architecture.js';

import type { ReplacementKind } from '../contract/replacement-kind.js';

export { REPLACEMENT_KINDS, ReplacementKind } from '../contract/replacement-kind.js';

// The inserted (non-layer) replacement kinds belong to the model layer (a model file can carry one).
export { INSERTED_TENSOR_NAMES, type InsertedKind, type InsertedModule } from '../models/inserted-module.js';

/** Refuses a kind the model's family cannot express. */
export function checkReplacementFits(kind: ReplacementKind, family: ArchitectureFamily): void {
  if (kind === 'SWIGLU' && family.mlp !== 'gated') {
    throw new EngineError('BAD_INPUT', `replacement SWIGLU needs a gated (SwiGLU) MLP, which ${family.modelType} does not have; use FFN or LAYER`);
  }
}
