/**
 * A replacement that is not a decoder layer (LINEAR, FFN) sits in the residual stream where the pruned
 * block was: what such an inserted module is, and the tensors it is saved with. A model file can carry
 * one (the engine's extension format, see ../pruning/assemble.ts), so the model and runtime layers know
 * it without knowing anything about pruning.
 */
import type { HostTensor } from '../formats/host-tensor.js';

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
