/**
 * OPT: learned absolute positions (offset by 2), pre-LayerNorm with biases, ReLU MLP (fc1, fc2), biases on
 * every projection, lm_head tied to the token embeddings. Reference: transformers' modeling_opt.py.
 */
import type { ArchitectureFamily } from '../architecture.js';
import { boundedInt, CONFIG_BOUNDS, optionalBoolean, optionalBoundedInt, optionalTokenId, parseHeads, unsupported } from './config-fields.js';

export const opt: ArchitectureFamily = {
  modelType: 'opt',
  norm: 'layernorm',
  activation: 'relu',
  mlp: 'plain',
  positions: 'learned',
  learnedPositionOffset: 2,
  weights: {
    embedTokens: 'model.decoder.embed_tokens.weight',
    embedPositions: 'model.decoder.embed_positions.weight',
    finalNorm: 'model.decoder.final_layer_norm',
    lmHead: 'lm_head.weight',
    layerPrefix: 'model.decoder.layers.{i}.',
    layer: {
      attentionNorm: 'self_attn_layer_norm',
      q: 'self_attn.q_proj',
      k: 'self_attn.k_proj',
      v: 'self_attn.v_proj',
      o: 'self_attn.out_proj',
      mlpNorm: 'final_layer_norm',
      gate: null,
      up: 'fc1',
      down: 'fc2',
    },
  },
  parseConfig(json, dtype) {
    // Every size is bounded before anything is computed from it (see config-fields.ts).
    const numLayers = boundedInt(json, 'num_hidden_layers', CONFIG_BOUNDS.num_hidden_layers);
    const hiddenSize = boundedInt(json, 'hidden_size', CONFIG_BOUNDS.hidden_size);
    const { numAttentionHeads: heads } = parseHeads({ num_attention_heads: json.num_attention_heads }, hiddenSize, { explicitHeadDim: false });
    const intermediateSize = boundedInt(json, 'ffn_dim', CONFIG_BOUNDS.intermediate_size);
    const vocabSize = boundedInt(json, 'vocab_size', CONFIG_BOUNDS.vocab_size);
    const maxPositionEmbeddings = optionalBoundedInt(json, 'max_position_embeddings', CONFIG_BOUNDS.max_position_embeddings, 2048);
    if (!optionalBoolean(json, 'do_layer_norm_before', true)) unsupported('opt', 'do_layer_norm_before=false (post-LayerNorm, as in opt-350m)');
    const projection = json.word_embed_proj_dim ?? hiddenSize;
    if (projection !== hiddenSize) unsupported('opt', `word_embed_proj_dim ${projection} different from hidden_size ${hiddenSize}`);
    const activation = json.activation_function ?? 'relu';
    if (activation !== 'relu') unsupported('opt', `activation_function ${JSON.stringify(activation)} (only "relu")`);
    if (!optionalBoolean(json, 'enable_bias', true)) unsupported('opt', 'enable_bias=false');
    return {
      modelType: 'opt',
      numLayers,
      hiddenSize,
      numAttentionHeads: heads,
      numKeyValueHeads: heads,
      headDim: hiddenSize / heads,
      intermediateSize,
      vocabSize,
      maxPositionEmbeddings,
      normEps: 1e-5,
      ropeTheta: 0,
      ropeScaling: null,
      slidingWindow: null,
      tieWordEmbeddings: optionalBoolean(json, 'tie_word_embeddings', true),
      qkvBias: true,
      outputProjectionBias: true,
      mlpBias: true,
      bosTokenId: optionalTokenId(json, 'bos_token_id'),
      eosTokenId: optionalTokenId(json, 'eos_token_id'),
      dtype,
    };
  },
};
