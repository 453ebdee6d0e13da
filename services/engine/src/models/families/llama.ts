/**
 * Llama (1, 2, 3): RMSNorm, rotate-half RoPE (with Llama-3 or linear rope_scaling), grouped-query
 * attention, SwiGLU MLP. Reference semantics: transformers' modeling_llama.py.
 */
import { EngineError } from '../../errors.js';
import type { StorageDtype } from '../../formats/dtype.js';
import type { ArchitectureFamily, ModelConfig, RopeScaling } from '../architecture.js';
import { boundedInt, CONFIG_BOUNDS, optionalBoolean, optionalBoundedInt, optionalNumber, optionalTokenId, parseHeads, unsupported } from './config-fields.js';

export const llamaWeights: ArchitectureFamily['weights'] = {
  embedTokens: 'model.embed_tokens.weight',
  embedPositions: null,
  finalNorm: 'model.norm',
  lmHead: 'lm_head.weight',
  layerPrefix: 'model.layers.{i}.',
  layer: {
    attentionNorm: 'input_layernorm',
    q: 'self_attn.q_proj',
    k: 'self_attn.k_proj',
    v: 'self_attn.v_proj',
    o: 'self_attn.o_proj',
    mlpNorm: 'post_attention_layernorm',
    gate: 'mlp.gate_proj',
    up: 'mlp.up_proj',
    down: 'mlp.down_proj',
  },
};

/** The config fields Llama, Mistral and Qwen2 share. */
export function parseLlamaLikeConfig(modelType: string, json: Record<string, unknown>, dtype: StorageDtype): ModelConfig {
  // Every size is bounded before anything is computed from it (see config-fields.ts).
  const numLayers = boundedInt(json, 'num_hidden_layers', CONFIG_BOUNDS.num_hidden_layers);
  const hiddenSize = boundedInt(json, 'hidden_size', CONFIG_BOUNDS.hidden_size);
  const { numAttentionHeads, numKeyValueHeads, headDim } = parseHeads(json, hiddenSize, { explicitHeadDim: true });
  const intermediateSize = boundedInt(json, 'intermediate_size', CONFIG_BOUNDS.intermediate_size);
  const vocabSize = boundedInt(json, 'vocab_size', CONFIG_BOUNDS.vocab_size);
  const maxPositionEmbeddings = optionalBoundedInt(json, 'max_position_embeddings', CONFIG_BOUNDS.max_position_embeddings, 2048);
  const hiddenAct = json.hidden_act ?? 'silu';
  if (hiddenAct !== 'silu') unsupported(modelType, `hidden_act ${JSON.stringify(hiddenAct)} (only "silu")`);
  const attentionBias = optionalBoolean(json, 'attention_bias', false);
  return {
    modelType,
    numLayers,
    hiddenSize,
    numAttentionHeads,
    numKeyValueHeads,
    headDim,
    intermediateSize,
    vocabSize,
    maxPositionEmbeddings,
    normEps: optionalNumber(json, 'rms_norm_eps', 1e-6),
    ropeTheta: optionalNumber(json, 'rope_theta', 10000),
    ropeScaling: parseRopeScaling(modelType, json.rope_scaling),
    slidingWindow: null,
    tieWordEmbeddings: optionalBoolean(json, 'tie_word_embeddings', false),
    qkvBias: attentionBias,
    outputProjectionBias: attentionBias,
    mlpBias: optionalBoolean(json, 'mlp_bias', false),
    bosTokenId: optionalTokenId(json, 'bos_token_id'),
    eosTokenId: optionalTokenId(json, 'eos_token_id'),
    dtype,
  };
}

function parseRopeScaling(modelType: string, value: unknown): RopeScaling | null {
  if (value == null) return null;
  const scaling = value as Record<string, unknown>;
  const type = scaling.rope_type ?? scaling.type;
  if (type === 'default') return null;
  const factor = optionalNumber(scaling, 'factor', 1);
  if (type === 'linear') return { type, factor };
  if (type === 'llama3') {
    return {
      type,
      factor,
      lowFreqFactor: optionalNumber(scaling, 'low_freq_factor', 1),
      highFreqFactor: optionalNumber(scaling, 'high_freq_factor', 4),
      originalMaxPositionEmbeddings: optionalNumber(scaling, 'original_max_position_embeddings', 8192),
    };
  }
  return unsupported(modelType, `rope_scaling type ${JSON.stringify(type)} (supported: default, linear, llama3)`);
}

export const llama: ArchitectureFamily = {
  modelType: 'llama',
  norm: 'rmsnorm',
  activation: 'silu',
  mlp: 'gated',
  positions: 'rope',
  learnedPositionOffset: 0,
  weights: llamaWeights,
  parseConfig: (json, dtype) => parseLlamaLikeConfig('llama', json, dtype),
};
