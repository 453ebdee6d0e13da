/** Qwen2: Llama's structure with biases on the q, k and v projections (not on o). */
import type { ArchitectureFamily } from '../architecture.js';
import { optionalBoolean, unsupported } from './config-fields.js';
import { llamaWeights, parseLlamaLikeConfig } from './llama.js';

export const qwen2: ArchitectureFamily = {
  modelType: 'qwen2',
  norm: 'rmsnorm',
  activation: 'silu',
  mlp: 'gated',
  positions: 'rope',
  learnedPositionOffset: 0,
  weights: llamaWeights,
  parseConfig(json, dtype) {
    // Qwen2 applies its window only to layers past max_window_layers; no released checkpoint enables it.
    if (optionalBoolean(json, 'use_sliding_window', false)) unsupported('qwen2', 'use_sliding_window=true');
    const config = parseLlamaLikeConfig('qwen2', { ...json, attention_bias: false }, dtype);
    return { ...config, qkvBias: true, outputProjectionBias: false };
  },
};
