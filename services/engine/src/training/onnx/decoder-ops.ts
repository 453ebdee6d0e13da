/**
 * Decoder pieces on a DiffGraph, built from the architecture table — the same computation as
 * ../../runtime/tfjs/decoder-layer.ts (the gradient oracle) and ../../runtime/onnx/decoder-graph.ts, with
 * backward rules. Weights come from `w(part, kind)`: graph values with matrices as [in, out]; they are
 * trainable (`DiffGraph.param`) when training a replacement, plain inputs when the layer is frozen and only
 * its input gradient is wanted (healing backpropagates through frozen layers, the final norm and the head).
 */
import { hasBias, type ArchitectureFamily, type LayerPart, type ModelConfig } from '../../models/architecture.js';
import type { DiffGraph } from './diff-graph.js';

export type LayerValues = (part: LayerPart, kind?: 'weight' | 'bias') => string;

export interface DiffLayerContext {
  readonly config: ModelConfig;
  readonly family: ArchitectureFamily;
  /** [B, 1, group·T, T]: the additive attention bias repeated for each query head sharing a KV head. */
  readonly biasForScores: string;
  /** [T, headDim] rotate-half tables, or null for learned positions. */
  readonly cos: string | null;
  readonly sin: string | null;
}

/** The per-batch attention inputs as graph inputs: attention_bias [B, 1, T, T], rope_cos / rope_sin [T, hd]. */
export function attentionInputs(dg: DiffGraph, config: ModelConfig, family: ArchitectureFamily): Pick<DiffLayerContext, 'biasForScores' | 'cos' | 'sin'> {
  const bias = dg.input('attention_bias', ['batch', 1, 'seq', 'seq']);
  const group = config.numAttentionHeads / config.numKeyValueHeads;
  const biasForScores = group > 1 ? dg.g.op('Tile', [bias, dg.g.int64([1, 1, group, 1])]) : bias;
  const rope = family.positions === 'rope';
  return {
    biasForScores,
    cos: rope ? dg.input('rope_cos', ['seq', config.headDim]) : null,
    sin: rope ? dg.input('rope_sin', ['seq', config.headDim]) : null,
  };
}

export function norm(dg: DiffGraph, x: string, ctx: DiffLayerContext, weight: string, bias: string | null): string {
  const { config, family } = ctx;
  return family.norm === 'rmsnorm' ? dg.rmsNorm(x, weight, config.normEps, config.hiddenSize) : dg.layerNorm(x, weight, bias!, config.normEps, config.hiddenSize);
}

function layerNorm(dg: DiffGraph, x: string, w: LayerValues, ctx: DiffLayerContext, part: 'attentionNorm' | 'mlpNorm'): string {
  return norm(dg, x, ctx, w(part), ctx.family.norm === 'layernorm' ? w(part, 'bias') : null);
}

function project(dg: DiffGraph, x: string, w: LayerValues, ctx: DiffLayerContext, part: LayerPart, inDim: number, outDim: number): string {
  return dg.linear(x, w(part), hasBias(ctx.family, ctx.config, part) ? w(part, 'bias') : null, inDim, outDim);
}

/** x + attention(norm(x)), x [B, T, d]. */
export function attentionBlock(dg: DiffGraph, x: string, w: LayerValues, ctx: DiffLayerContext): string {
  const { config } = ctx;
  const d = config.hiddenSize;
  const H = config.numAttentionHeads;
  const Hkv = config.numKeyValueHeads;
  const hd = config.headDim;
  const group = H / Hkv;
  const heads = (t: string, n: number) => dg.transpose(dg.reshape(t, [0, 0, n, hd]), [0, 2, 1, 3]); // [B, n, T, hd]

  const h = layerNorm(dg, x, w, ctx, 'attentionNorm');
  let q = heads(project(dg, h, w, ctx, 'q', d, H * hd), H);
  let k = heads(project(dg, h, w, ctx, 'k', d, Hkv * hd), Hkv);
  const v = heads(project(dg, h, w, ctx, 'v', d, Hkv * hd), Hkv);
  if (ctx.cos) {
    q = dg.rope(q, ctx.cos, ctx.sin!);
    k = dg.rope(k, ctx.cos, ctx.sin!);
  }
  // Grouped-query attention as the forward graph does it: a KV head's queries stacked along time.
  const stacked = group > 1 ? dg.reshape(q, [0, Hkv, -1, hd]) : q;
  let attended = dg.attention(stacked, k, v, ctx.biasForScores, 1 / Math.sqrt(hd));
  if (group > 1) attended = dg.reshape(attended, [0, H, -1, hd]);
  const merged = dg.reshape(dg.transpose(attended, [0, 2, 1, 3]), [0, 0, H * hd]);
  return dg.add(x, project(dg, merged, w, ctx, 'o', H * hd, d));
}

/** x + mlp(norm(x)). */
export function mlpBlock(dg: DiffGraph, x: string, w: LayerValues, ctx: DiffLayerContext): string {
  const { config, family } = ctx;
  const d = config.hiddenSize;
  const f = config.intermediateSize;
  const m = layerNorm(dg, x, w, ctx, 'mlpNorm');
  let activated: string;
  if (family.mlp === 'gated') {
    activated = dg.mul(dg.silu(project(dg, m, w, ctx, 'gate', d, f)), project(dg, m, w, ctx, 'up', d, f));
  } else {
    const up = project(dg, m, w, ctx, 'up', d, f);
    activated = family.activation === 'relu' ? dg.relu(up) : dg.silu(up);
  }
  return dg.add(x, project(dg, activated, w, ctx, 'down', f, d));
}

export function decoderLayer(dg: DiffGraph, x: string, w: LayerValues, ctx: DiffLayerContext): string {
  return mlpBlock(dg, attentionBlock(dg, x, w, ctx), w, ctx);
}

/**
 * The FFN replacement (../../pruning/replacement-forward.ts): x + fc2(silu(fc1(rms(x)·g) + b1)) + b2;
 * `w(name)` gives norm.weight, fc1.weight [d, f], fc1.bias, fc2.weight [f, d], fc2.bias.
 */
export function ffnReplacement(dg: DiffGraph, x: string, w: (name: string) => string, config: ModelConfig): string {
  const d = config.hiddenSize;
  const f = config.intermediateSize;
  const normalized = dg.rmsNorm(x, w('norm.weight'), config.normEps, d);
  const hidden = dg.silu(dg.linear(normalized, w('fc1.weight'), w('fc1.bias'), d, f));
  return dg.add(x, dg.linear(hidden, w('fc2.weight'), w('fc2.bias'), f, d));
}

/** Final norm then LM head: logits [B, T, V] (healing's objective is computed on these). */
export function lmHead(dg: DiffGraph, x: string, ctx: DiffLayerContext, finalNormWeight: string, finalNormBias: string | null, head: string): string {
  const y = norm(dg, x, ctx, finalNormWeight, finalNormBias);
  return dg.linear(y, head, null, ctx.config.hiddenSize, ctx.config.vocabSize);
}
