/**
 * Which block to prune: `argmax_s cos(s, n)` from the importance profile, a pinned start, or — given a
 * target parameter sparsity — the block size whose removal, net of the replacement's parameters, comes
 * closest to it. Layers are 0-based original indices.
 */
import { EngineError } from '../errors.js';
import { elementCount } from '../formats/host-tensor.js';
import { layerPrefix, type ArchitectureFamily, type ModelConfig } from '../models/architecture.js';
import { expectedWeightShapes } from '../models/weight-shapes.js';
import type { ReplacementKind } from './replacement-kinds.js';

export interface Block {
  readonly start: number;
  readonly size: number;
}

export function removedLayers(block: Block): number[] {
  return Array.from({ length: block.size }, (_, i) => block.start + i);
}

/** Parameters of one decoder layer (layer 0's tensors; every layer is alike). */
export function layerParameters(family: ArchitectureFamily, config: ModelConfig): number {
  const prefix = layerPrefix(family, 0);
  let total = 0;
  for (const [name, shape] of expectedWeightShapes(family, config)) if (name.startsWith(prefix)) total += elementCount(shape);
  return total;
}

/** The replacement's own parameters (SWIGLU counts its MLP, not the zero attention it is exported with). */
export function replacementParameters(kind: ReplacementKind, family: ArchitectureFamily, config: ModelConfig): number {
  const d = config.hiddenSize;
  const f = config.intermediateSize;
  switch (kind) {
    case 'NONE':
      return 0;
    case 'LINEAR':
      return d * d + d;
    case 'FFN':
      return d + f * d + f + d * f + d;
    case 'SWIGLU':
      return d + 3 * d * f;
    case 'LAYER':
      return layerParameters(family, config);
  }
}

export function validateBlock(block: Block, numLayers: number): void {
  const { start, size } = block;
  if (!Number.isInteger(size) || size < 1 || size >= numLayers) {
    throw new EngineError('BAD_INPUT', `layers ${size}: a block must remove from 1 to ${numLayers - 1} of the model's ${numLayers} layers`);
  }
  if (!Number.isInteger(start) || start < 0 || start + size > numLayers) {
    throw new EngineError(
      'BAD_INPUT',
      `start ${start} with ${size} layers does not fit a ${numLayers}-layer model: layers ${start}..${start + size - 1} must lie within 0..${numLayers - 1} (start from 0 to ${numLayers - size})`,
    );
  }
}

export interface SparsityChoice {
  readonly size: number;
  readonly sparsity: number;
  /** Every candidate size with the sparsity it gives, for the error message and the report. */
  readonly candidates: { size: number; sparsity: number }[];
}

/** The block size whose net removal comes closest to `target` (a fraction of all parameters). */
export function blockSizeForSparsity(target: number, kind: ReplacementKind, family: ArchitectureFamily, config: ModelConfig, totalParameters: number): SparsityChoice {
  if (!(target > 0 && target < 1)) throw new EngineError('BAD_INPUT', `target sparsity ${target} must be a fraction between 0 and 1 (exclusive)`);
  const perLayer = layerParameters(family, config);
  const replacement = replacementParameters(kind, family, config);
  const candidates: { size: number; sparsity: number }[] = [];
  for (let size = 1; size < config.numLayers; size++) {
    const sparsity = (size * perLayer - replacement) / totalParameters;
    if (sparsity > 0) candidates.push({ size, sparsity });
  }
  const best = candidates.reduce<{ size: number; sparsity: number } | null>(
    (a, c) => (a === null || Math.abs(c.sparsity - target) < Math.abs(a.sparsity - target) ? c : a),
    null,
  );
  const step = perLayer / totalParameters;
  if (!best || Math.abs(best.sparsity - target) > step / 2) {
    const reachable = candidates.map((c) => `${c.size} layers → ${(100 * c.sparsity).toFixed(1)}%`).join(', ') || 'none';
    throw new EngineError('BAD_INPUT', `no block reaches target sparsity ${(100 * target).toFixed(1)}% with a ${kind} replacement (reachable: ${reachable})`);
  }
  return { size: best.size, sparsity: best.sparsity, candidates };
}
