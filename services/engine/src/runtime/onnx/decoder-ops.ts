/**
 * The pieces of a decoder layer as ONNX nodes, shared by the whole-model graph (./decoder-graph.ts) and the
 * layer-streamed graphs (./layer-graph.ts), so that the two compute the same thing node for node. Each takes
 * the graph and the value names it combines; where the weights come from (initializers or graph inputs)
 * is the caller's business.
 */
import type { ArchitectureFamily, ModelConfig } from '../../models/architecture.js';
import type { OnnxGraph } from './onnx-graph.js';

/** RMSNorm or LayerNorm over the last axis, written the way ORT's optimizer fuses (SimplifiedLayerNormalization / LayerNormalization). */
export function norm(g: OnnxGraph, family: ArchitectureFamily, config: ModelConfig, x: string, weight: string, bias: string | null): string {
  if (family.norm === 'layernorm') return g.op('LayerNormalization', [x, weight, bias!], { axis: -1, epsilon: config.normEps });
  const meanSquare = g.op('ReduceMean', [g.op('Pow', [x, g.scalar(2)])], { axes: [-1], keepdims: 1 });
  return g.op('Mul', [g.op('Div', [x, g.op('Sqrt', [g.op('Add', [meanSquare, g.scalar(config.normEps)])])]), weight]);
}

/** [B, T, n·hd] → [B, n, T, hd]. */
export function splitHeads(g: OnnxGraph, t: string, n: number, hd: number): string {
  return g.op('Transpose', [g.op('Reshape', [t, g.int64([0, 0, n, hd])])], { perm: [0, 2, 1, 3] });
}

/** Rotate-half RoPE (transformers' layout) with cos/sin tables [T, hd]. */
export function rotateHalf(g: OnnxGraph, t: string, cos: string, sin: string): string {
  const [first, second] = g.opMulti('Split', [t], { axis: -1 }, 2);
  const rotated = g.op('Concat', [g.op('Neg', [second]), first], { axis: -1 });
  return g.op('Add', [g.op('Mul', [t, cos]), g.op('Mul', [rotated, sin])]);
}

/**
 * The attention bias [B, 1, T, S] as the stacked scores of grouped-query attention need it: row r of a KV
 * head's stacked scores is query position r mod T, so the bias repeats `group` times.
 */
export function biasForStackedScores(g: OnnxGraph, config: ModelConfig, bias: string): string {
  const group = config.numAttentionHeads / config.numKeyValueHeads;
  return group > 1 ? g.op('Tile', [bias, g.int64([1, 1, group, 1])]) : bias;
}

/**
 * Scaled dot-product attention of q [B, H, T, hd] over k, v [B, Hkv, S, hd], heads merged back to
 * [B, T, H·hd]. Grouped-query attention: the group's queries stacked along time, [B, Hkv, group·T, hd],
 * so one plain batched MatMul per KV head serves them all, with no copies of K/V.
 */
export function attention(g: OnnxGraph, config: ModelConfig, q: string, k: string, v: string, stackedBias: string): string {
  const H = config.numAttentionHeads;
  const Hkv = config.numKeyValueHeads;
  const hd = config.headDim;
  const grouped = H / Hkv > 1;
  const stackedQueries = grouped ? g.op('Reshape', [q, g.int64([0, Hkv, -1, hd])]) : q;
  let scores = g.op('MatMul', [stackedQueries, g.op('Transpose', [k], { perm: [0, 1, 3, 2] })]);
  scores = g.op('Add', [g.op('Mul', [scores, g.scalar(1 / Math.sqrt(hd))]), stackedBias]);
  let attended = g.op('MatMul', [g.op('Softmax', [scores], { axis: -1 }), v]);
  if (grouped) attended = g.op('Reshape', [attended, g.int64([0, H, -1, hd])]);
  return g.op('Reshape', [g.op('Transpose', [attended], { perm: [0, 2, 1, 3] }), g.int64([0, 0, H * hd])]);
}

/** The MLP's activation: SiLU(gate)·up for a gated MLP (`gate` given), else ReLU or SiLU of `up`. */
export function mlpActivation(g: OnnxGraph, family: ArchitectureFamily, gate: string | null, up: string): string {
  if (family.mlp === 'gated') return g.op('Mul', [g.op('Mul', [gate!, g.op('Sigmoid', [gate!])]), up]);
  return family.activation === 'relu' ? g.op('Relu', [up]) : g.op('Mul', [up, g.op('Sigmoid', [up])]);
}
