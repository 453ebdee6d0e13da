/**
 * The replacement networks: their parameters (initial values, Hugging Face [out, in] layout, named as
 * they are exported) and their forward pass during training.
 *
 *   LINEAR  fitted in closed form (linear-fit.ts); no parameters to train
 *   FFN     pre-RMSNorm two-layer SiLU MLP with a residual, starting as the identity (fc2 = 0)
 *   SWIGLU  a Llama MLP sublayer (pre-norm, gate/up/down, residual) initialised from the first pruned layer
 *   LAYER   a whole decoder layer initialised from the first pruned layer (the reference code's default)
 *
 * SWIGLU and LAYER tensors are named relative to a layer (`mlp.gate_proj.weight`, …), so exporting them
 * is placing them under `model.layers.{s}.`.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { HostTensor } from '../formats/host-tensor.js';
import { hasBias, layerWeightName, type ArchitectureFamily, type LayerPart, type ModelConfig } from '../models/architecture.js';
import type { LoadedModel } from '../models/model.js';
import { decoderLayer, mlpBlock, type LayerContext } from '../runtime/tfjs/decoder-layer.js';
import { gaussian } from '../random.js';
import { applyReplacement } from '../runtime/tfjs/inserted-forward.js';
import type { ReplacementKind } from './replacement-kinds.js';

export type TrainedKind = 'FFN' | 'SWIGLU' | 'LAYER';

const MLP_PARTS: LayerPart[] = ['mlpNorm', 'gate', 'up', 'down'];
const LAYER_PARTS: LayerPart[] = ['attentionNorm', 'q', 'k', 'v', 'o', 'mlpNorm', 'gate', 'up', 'down'];

export function relativeName(family: ArchitectureFamily, part: LayerPart, kind: 'weight' | 'bias'): string {
  return `${family.weights.layer[part]}.${kind}`;
}

/** What a replacement is initialised from: the model's sizes and a reader of its tensors (float32). */
export interface ReplacementSource {
  readonly family: ArchitectureFamily;
  readonly config: ModelConfig;
  read(name: string): HostTensor;
}

/** Initial parameters of a trained replacement for the block starting at `start`. */
export function initialParameters(kind: TrainedKind, model: ReplacementSource | LoadedModel, start: number, seed: number): Map<string, HostTensor> {
  const { family, config } = model;
  const read = 'read' in model ? (name: string) => model.read(name) : (name: string) => model.weights.get(name)!;
  const params = new Map<string, HostTensor>();
  if (kind === 'FFN') {
    const d = config.hiddenSize;
    const f = config.intermediateSize;
    const random = gaussian(seed);
    params.set('norm.weight', { shape: [d], data: new Float32Array(d).fill(1) });
    params.set('fc1.weight', { shape: [f, d], data: Float32Array.from({ length: f * d }, () => 0.02 * random()) });
    params.set('fc1.bias', { shape: [f], data: new Float32Array(f) });
    params.set('fc2.weight', { shape: [d, f], data: new Float32Array(d * f) });
    params.set('fc2.bias', { shape: [d], data: new Float32Array(d) });
    return params;
  }
  const parts = (kind === 'SWIGLU' ? MLP_PARTS : LAYER_PARTS).filter((part) => family.weights.layer[part] !== null);
  for (const part of parts) {
    for (const tensorKind of ['weight', 'bias'] as const) {
      if (tensorKind === 'bias' && !hasBias(family, config, part)) continue;
      const source = read(layerWeightName(family, start, part, tensorKind));
      params.set(relativeName(family, part, tensorKind), { shape: source.shape, data: source.data.slice() });
    }
  }
  return params;
}

/** The replacement's output for input hidden states x [B, T, d]; `w(name)` gives matrices as [in, out]. */
export function replacementForward(kind: Exclude<ReplacementKind, 'NONE'>, x: tf.Tensor, w: (name: string) => tf.Tensor, ctx: LayerContext): tf.Tensor {
  const byPart = (part: LayerPart, tensorKind: 'weight' | 'bias' = 'weight') => w(relativeName(ctx.family, part, tensorKind));
  switch (kind) {
    case 'LINEAR':
    case 'FFN':
      return applyReplacement(x, w, kind, ctx.config);
    case 'SWIGLU':
      return mlpBlock(x, byPart, ctx);
    case 'LAYER':
      return decoderLayer(x, byPart, ctx);
  }
}
