/**
 * What the runtimes need to know about a decoder-only model: its sizes (ModelConfig, parsed from
 * config.json) and its family's structure and weight names (ArchitectureFamily, one table per file in
 * families/). The forward passes read these tables instead of branching on model_type.
 */
import type { StorageDtype } from '../formats/dtype.js';

export interface RopeScaling {
  readonly type: 'linear' | 'llama3';
  readonly factor: number;
  // llama3 only
  readonly lowFreqFactor?: number;
  readonly highFreqFactor?: number;
  readonly originalMaxPositionEmbeddings?: number;
}

export interface ModelConfig {
  readonly modelType: string;
  readonly numLayers: number;
  readonly hiddenSize: number;
  readonly numAttentionHeads: number;
  readonly numKeyValueHeads: number;
  readonly headDim: number;
  readonly intermediateSize: number;
  readonly vocabSize: number;
  readonly maxPositionEmbeddings: number;
  readonly normEps: number;
  readonly ropeTheta: number;
  readonly ropeScaling: RopeScaling | null;
  /** Attend only to the last `slidingWindow` positions (Mistral); null = full causal attention. */
  readonly slidingWindow: number | null;
  readonly tieWordEmbeddings: boolean;
  readonly qkvBias: boolean;
  readonly outputProjectionBias: boolean;
  readonly mlpBias: boolean;
  readonly bosTokenId: number | null;
  readonly eosTokenId: number | null;
  /** The dtype the checkpoint is stored in (exports keep it). */
  readonly dtype: StorageDtype;
}

/** Weight names inside one decoder layer, relative to the layer prefix, without `.weight` / `.bias`. */
export interface LayerWeightNames {
  readonly attentionNorm: string;
  readonly q: string;
  readonly k: string;
  readonly v: string;
  readonly o: string;
  readonly mlpNorm: string;
  /** Only for gated (SwiGLU) MLPs. */
  readonly gate: string | null;
  readonly up: string;
  readonly down: string;
}

export interface ArchitectureFamily {
  readonly modelType: string;
  readonly norm: 'rmsnorm' | 'layernorm';
  readonly activation: 'silu' | 'relu';
  readonly mlp: 'gated' | 'plain';
  readonly positions: 'rope' | 'learned';
  /** OPT's learned position table starts at row 2. */
  readonly learnedPositionOffset: number;
  readonly weights: {
    readonly embedTokens: string;
    readonly embedPositions: string | null;
    /** Without `.weight` / `.bias`. */
    readonly finalNorm: string;
    readonly lmHead: string;
    /** `{i}` is replaced with the 0-based layer index. */
    readonly layerPrefix: string;
    readonly layer: LayerWeightNames;
  };
  /** Parses a Hugging Face config.json of this family; refuses variants the engine does not implement. */
  parseConfig(json: Record<string, unknown>, dtype: StorageDtype): ModelConfig;
}

export type LayerPart = keyof LayerWeightNames;

export function layerWeightName(family: ArchitectureFamily, layer: number, part: LayerPart, kind: 'weight' | 'bias' = 'weight'): string {
  const name = family.weights.layer[part];
  if (name === null) throw new Error(`${family.modelType} layers have no ${part} weight`);
  return `${family.weights.layerPrefix.replace('{i}', String(layer))}${name}.${kind}`;
}

export function layerPrefix(family: ArchitectureFamily, layer: number): string {
  return family.weights.layerPrefix.replace('{i}', String(layer));
}

/** Does `part` of a layer carry a bias in this model? */
export function hasBias(family: ArchitectureFamily, config: ModelConfig, part: LayerPart): boolean {
  switch (part) {
    case 'attentionNorm':
    case 'mlpNorm':
      return family.norm === 'layernorm';
    case 'q':
    case 'k':
    case 'v':
      return config.qkvBias;
    case 'o':
      return config.outputProjectionBias;
    default:
      return config.mlpBias;
  }
}
