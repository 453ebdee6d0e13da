/**
 * What stands in for the removed block: nothing, a closed-form linear map, a trained FFN or SwiGLU MLP,
 * or one trained decoder layer. Declared once here (pruning/replacement-kinds.ts says which families can
 * express each and what an inserted one is saved with).
 */
import { enumObject } from './enum-object.js';

export const REPLACEMENT_KINDS = ['NONE', 'LINEAR', 'FFN', 'SWIGLU', 'LAYER'] as const;
export type ReplacementKind = (typeof REPLACEMENT_KINDS)[number];
export const ReplacementKind = enumObject(REPLACEMENT_KINDS);
