/** Every tensor a model of a given family and config must have, with its shape — and how many numbers that is. */
import { hasBias, layerWeightName, type ArchitectureFamily, type LayerPart, type ModelConfig } from './architecture.js';

/** One decoder layer's parts as [out, in] ([out, 0] for a vector), null where the family has no such part. */
function layerShapes(family: ArchitectureFamily, config: ModelConfig): Record<LayerPart, [number, number] | null> {
  const d = config.hiddenSize;
  const qDim = config.numAttentionHeads * config.headDim;
  const kvDim = config.numKeyValueHeads * config.headDim;
  const ffn = config.intermediateSize;
  return {
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
}

/** The tensors outside the decoder layers, by name. */
function outerShapes(family: ArchitectureFamily, config: ModelConfig): [string, number[]][] {
  const d = config.hiddenSize;
  const shapes: [string, number[]][] = [[family.weights.embedTokens, [config.vocabSize, d]]];
  if (family.weights.embedPositions) shapes.push([family.weights.embedPositions, [config.maxPositionEmbeddings + family.learnedPositionOffset, d]]);
  shapes.push([`${family.weights.finalNorm}.weight`, [d]]);
  if (family.norm === 'layernorm') shapes.push([`${family.weights.finalNorm}.bias`, [d]]);
  if (!config.tieWordEmbeddings) shapes.push([family.weights.lmHead, [config.vocabSize, d]]);
  return shapes;
}

export function expectedWeightShapes(family: ArchitectureFamily, config: ModelConfig): Map<string, number[]> {
  const shapes = new Map<string, number[]>();
  const outer = outerShapes(family, config);
  const parts = Object.entries(layerShapes(family, config)) as [LayerPart, [number, number] | null][];
  shapes.set(...outer[0]);
  if (family.weights.embedPositions) shapes.set(...outer[1]);
  for (let layer = 0; layer < config.numLayers; layer++) {
    for (const [part, shape] of parts) {
      if (!shape) continue;
      const [out, inputs] = shape;
      shapes.set(layerWeightName(family, layer, part), inputs === 0 ? [out] : [out, inputs]);
      if (hasBias(family, config, part)) shapes.set(layerWeightName(family, layer, part, 'bias'), [out]);
    }
  }
  for (const [name, shape] of outer.slice(family.weights.embedPositions ? 2 : 1)) shapes.set(name, shape);
  return shapes;
}

/**
 * The number of parameters `expectedWeightShapes` describes, by arithmetic: one layer's count times the
 * number of layers, without building a name or a shape per layer.
 */
export function countExpectedParameters(family: ArchitectureFamily, config: ModelConfig): number {
  let perLayer = 0;
  for (const [part, shape] of Object.entries(layerShapes(family, config)) as [LayerPart, [number, number] | null][]) {
    if (!shape) continue;
    const [out, inputs] = shape;
    perLayer += inputs === 0 ? out : out * inputs;
    if (hasBias(family, config, part)) perLayer += out;
  }
  const outer = outerShapes(family, config).reduce((sum, [, shape]) => sum + shape.reduce((a, b) => a * b, 1), 0);
  return outer + config.numLayers * perLayer;
}
