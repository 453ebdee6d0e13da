/**
 * The replacement kinds (named in contract/replacement-kind.ts) as data: the tensors an inserted (non-layer) replacement is saved
 * with, and which families can express each. No tensor library here, so the gateway can check a plan
 * against them (replacement-forward.ts and replacement.ts hold the forward passes and training).
 */
import { EngineError } from '../errors.js';
import type { HostTensor } from '../formats/host-tensor.js';
import type { ArchitectureFamily } from '../models/architecture.js';

import type { ReplacementKind } from '../contract/replacement-kind.js';

export { REPLACEMENT_KINDS, ReplacementKind } from '../contract/replacement-kind.js';

/** Kinds saved in the engine's extension format, inserted before decoder layer `position`. */
export type InsertedKind = 'LINEAR' | 'FFN';

export interface InsertedModule {
  readonly kind: InsertedKind;
  /** Index (in the pruned model) of the first decoder layer after the module; numLayers = after the last. */
  readonly position: number;
  readonly weights: ReadonlyMap<string, HostTensor>;
}

export const INSERTED_TENSOR_NAMES: Record<InsertedKind, readonly string[]> = {
  LINEAR: ['linear.weight', 'linear.bias'],
  FFN: ['norm.weight', 'fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias'],
};

/** Refuses a kind the model's family cannot express. */
export function checkReplacementFits(kind: ReplacementKind, family: ArchitectureFamily): void {
  if (kind === 'SWIGLU' && family.mlp !== 'gated') {
    throw new EngineError('BAD_INPUT', `replacement SWIGLU needs a gated (SwiGLU) MLP, which ${family.modelType} does not have; use FFN or LAYER`);
  }
}
