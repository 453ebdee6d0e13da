/** Every tensor a model of a given family and config must have, with its shape. */
import { hasBias, layerWeightName, type ArchitectureFamily, type LayerPart, type ModelConfig } from './architecture.js';

export function expectedWeightShapes(family: ArchitectureFamily, config: ModelConfig): Map<string, number[]> {
  const d = config.hiddenSize;
  const qDim = config.numAttentionHeads * config.headDim;
  const kvDim = config.numKeyValueHeads * config.headDim;
  const ffn = config.intermediateSize;
  const shapes = new Map<string, number[]>();
  shapes.set(family.weights.embedTokens, [config.vocabSize, d]);
  if (family.weights.embedPositions) {
    shapes.set(family.weights.embedPositions, [config.maxPositionEmbeddings + family.learnedPositionOffset, d]);
  }
  const layerShapes: Record<LayerPart, [number, number] | null> = {
    attentionNorm: [d, 0],
    q: [qDim, d],
    k: [kvDim, d],
    v: [kvDim, d],
    o: [d, qDim],
    mlpNorm: [d, 0],
    gate: family.mlp === 'gated' ? [ffn, d] : null,
    up: [ffn, d],
    down: [d, ffn],
  };
  for (let layer = 0; layer < config.numLayers; layer++) {
    for (const [part, shape] of Object.entries(layerShapes) as [LayerPart, [number, number] | null][]) {
      if (!shape) continue;
      const [out, inputs] = shape;
      shapes.set(layerWeightName(family, layer, part), inputs === 0 ? [out] : [out, inputs]);
      if (hasBias(family, config, part)) shapes.set(layerWeightName(family, layer, part, 'bias'), [out]);
    }
  }
  shapes.set(`${family.weights.finalNorm}.weight`, [d]);
  if (family.norm === 'layernorm') shapes.set(`${family.weights.finalNorm}.bias`, [d]);
  if (!config.tieWordEmbeddings) shapes.set(family.weights.lmHead, [config.vocabSize, d]);
  return shapes;
}
