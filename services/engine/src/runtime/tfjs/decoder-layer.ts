/**
 * One decoder layer in TensorFlow.js, shared by the frozen model's forward pass and by replacement
 * training (a LAYER or SWIGLU replacement runs these same functions on trainable variables).
 * Matrices are [in, out] (the wasm backend's transposed matMul is slow); family differences come from
 * the architecture table.
 */
import * as tf from '@tensorflow/tfjs-core';
import { hasBias, type ArchitectureFamily, type LayerPart, type ModelConfig } from '../../models/architecture.js';
import { attentionBias, ropeTables } from '../attention-inputs.js';

/** A layer's weights by part: matrices as [in, out], vectors as stored. */
export type LayerWeights = (part: LayerPart, kind?: 'weight' | 'bias') => tf.Tensor;

export interface LayerContext {
  readonly config: ModelConfig;
  readonly family: ArchitectureFamily;
  readonly batchSize: number;
  readonly seqLen: number;
  /** [B, 1, group·T, T]: the attention bias, repeated for each query head sharing a KV head. */
  readonly biasForScores: tf.Tensor;
  readonly cos: tf.Tensor | null;
  readonly sin: tf.Tensor | null;
}

/** Builds the per-batch attention inputs (call inside tf.tidy). */
export function layerContext(
  config: ModelConfig,
  family: ArchitectureFamily,
  batch: { batchSize: number; seqLen: number; attentionMask: Uint8Array },
): LayerContext {
  const { batchSize: B, seqLen: T } = batch;
  const bias = tf.tensor4d(attentionBias(batch as Parameters<typeof attentionBias>[0], config.slidingWindow), [B, 1, T, T]);
  const group = config.numAttentionHeads / config.numKeyValueHeads;
  // Row r of a KV head's stacked scores is query position r mod T: the bias repeats group times.
  const biasForScores = group > 1 ? tf.tile(bias, [1, 1, group, 1]) : bias;
  const rope = family.positions === 'rope' ? ropeTables(config, T) : null;
  return {
    config,
    family,
    batchSize: B,
    seqLen: T,
    biasForScores,
    cos: rope ? tf.tensor2d(rope.cos, [T, config.headDim]) : null,
    sin: rope ? tf.tensor2d(rope.sin, [T, config.headDim]) : null,
  };
}

export function normalize(x: tf.Tensor, ctx: Pick<LayerContext, 'config' | 'family'>, weight: tf.Tensor, bias: tf.Tensor | null): tf.Tensor {
  if (ctx.family.norm === 'rmsnorm') return rmsNorm(x, weight, ctx.config.normEps);
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, ctx.config.normEps))), weight), bias!);
}

export function rmsNorm(x: tf.Tensor, weight: tf.Tensor, eps: number): tf.Tensor {
  const meanSquare = tf.mean(tf.square(x), -1, true);
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(meanSquare, eps))), weight);
}

/**
 * a · b for tensors of equal rank (batched over leading dimensions). Its gradient is computed with
 * explicit transposes and plain products: the wasm backend's matMul with a transposed operand — what
 * tfjs's own gradient uses — runs about ten times slower.
 */
export const matMul = tf.customGrad(((a: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
  save([a, b]);
  return {
    value: tf.matMul(a, b),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [savedA, savedB] = saved;
      return [tf.matMul(dy, swapLastTwo(savedB)), tf.matMul(swapLastTwo(savedA), dy)];
    },
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as (a: tf.Tensor, b: tf.Tensor) => tf.Tensor;

function swapLastTwo(t: tf.Tensor): tf.Tensor {
  const perm = [...Array(t.rank).keys()];
  [perm[t.rank - 2], perm[t.rank - 1]] = [perm[t.rank - 1], perm[t.rank - 2]];
  return tf.transpose(t, perm);
}

/** x [..., in] · W [in, out] (+ b). */
export function dense(x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor | null): tf.Tensor {
  const y = matMul(tf.reshape(x, [-1, x.shape[x.rank - 1]]), weight);
  return tf.reshape(bias ? tf.add(y, bias) : y, [...x.shape.slice(0, -1), -1]);
}

export function silu(x: tf.Tensor): tf.Tensor {
  return tf.mul(x, tf.sigmoid(x));
}

function project(x: tf.Tensor, w: LayerWeights, ctx: LayerContext, part: LayerPart): tf.Tensor {
  return dense(x, w(part), hasBias(ctx.family, ctx.config, part) ? w(part, 'bias') : null);
}

function layerNorm(x: tf.Tensor, w: LayerWeights, ctx: LayerContext, part: 'attentionNorm' | 'mlpNorm'): tf.Tensor {
  return normalize(x, ctx, w(part), ctx.family.norm === 'layernorm' ? w(part, 'bias') : null);
}

/** x + attention(norm(x)). */
export function attentionBlock(x: tf.Tensor, w: LayerWeights, ctx: LayerContext): tf.Tensor {
  const { config, batchSize: B, seqLen: T } = ctx;
  const H = config.numAttentionHeads;
  const Hkv = config.numKeyValueHeads;
  const hd = config.headDim;
  const group = H / Hkv;
  const heads = (t: tf.Tensor, n: number) => tf.transpose(tf.reshape(t, [B, T, n, hd]), [0, 2, 1, 3]); // [B, n, T, hd]
  const rotate = (t: tf.Tensor) => {
    const [first, second] = tf.split(t, 2, -1);
    return tf.add(tf.mul(t, ctx.cos!), tf.mul(tf.concat([tf.neg(second), first], -1), ctx.sin!));
  };

  const h = layerNorm(x, w, ctx, 'attentionNorm');
  let q = heads(project(h, w, ctx, 'q'), H);
  let k = heads(project(h, w, ctx, 'k'), Hkv);
  const v = heads(project(h, w, ctx, 'v'), Hkv);
  if (ctx.cos) {
    q = rotate(q);
    k = rotate(k);
  }
  // Grouped-query attention: the group's queries stacked along time, [B, Hkv, group·T, hd], so one
  // plain batched matMul per KV head serves them all, with no copies of K/V.
  const stackedQueries = group > 1 ? tf.reshape(q, [B, Hkv, group * T, hd]) : q;
  const scores = tf.add(tf.mul(matMul(stackedQueries, tf.transpose(k, [0, 1, 3, 2])), 1 / Math.sqrt(hd)), ctx.biasForScores);
  const attended = tf.reshape(matMul(tf.softmax(scores), v), [B, H, T, hd]);
  const merged = tf.reshape(tf.transpose(attended, [0, 2, 1, 3]), [B, T, H * hd]);
  return tf.add(x, project(merged, w, ctx, 'o'));
}

/** x + mlp(norm(x)). */
export function mlpBlock(x: tf.Tensor, w: LayerWeights, ctx: LayerContext): tf.Tensor {
  const m = layerNorm(x, w, ctx, 'mlpNorm');
  const activated =
    ctx.family.mlp === 'gated'
      ? tf.mul(silu(project(m, w, ctx, 'gate')), project(m, w, ctx, 'up'))
      : ctx.family.activation === 'relu'
        ? tf.relu(project(m, w, ctx, 'up'))
        : silu(project(m, w, ctx, 'up'));
  return tf.add(x, project(activated, w, ctx, 'down'));
}

export function decoderLayer(x: tf.Tensor, w: LayerWeights, ctx: LayerContext): tf.Tensor {
  return mlpBlock(attentionBlock(x, w, ctx), w, ctx);
}
