/** Mistral: Llama's structure plus sliding-window attention (applied through the attention mask). */
import type { ArchitectureFamily } from '../architecture.js';
import { boundedInt, CONFIG_BOUNDS } from './config-fields.js';
import { llamaWeights, parseLlamaLikeConfig } from './llama.js';

export const mistral: ArchitectureFamily = {
  modelType: 'mistral',
  norm: 'rmsnorm',
  activation: 'silu',
  mlp: 'gated',
  positions: 'rope',
  learnedPositionOffset: 0,
  weights: llamaWeights,
  parseConfig(json, dtype) {
    const config = parseLlamaLikeConfig('mistral', json, dtype);
    const window = json.sliding_window == null ? null : boundedInt(json, 'sliding_window', CONFIG_BOUNDS.sliding_window);
    return { ...config, slidingWindow: window };
  },
};
