/** Mistral: Llama's structure plus sliding-window attention (applied through the attention mask). */
import type { ArchitectureFamily } from '../architecture.js';
import { optionalNumber } from './config-fields.js';
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
    const window = json.sliding_window == null ? null : optionalNumber(json, 'sliding_window', 0);
    return { ...config, slidingWindow: window };
  },
};
