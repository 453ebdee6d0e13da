/**
 * The forward pass in TensorFlow.js, read top to bottom like llama2.c's: embeddings, then per layer
 * pre-norm attention and pre-norm MLP on the residual stream, then the final norm and the LM head.
 * Family differences come from the architecture table (norm, positions, activation, biases).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { HostTensor } from '../../formats/host-tensor.js';
import { hasBias, layerWeightName, type LayerPart } from '../../models/architecture.js';
import type { LoadedModel } from '../../models/model.js';
import { attentionBias, ropeTables } from '../attention-inputs.js';
import type { ForwardRequest, ForwardResult, ForwardRuntime, TokenBatch } from '../runtime.js';
import { selectTfjsBackend } from './backend.js';

export class TfjsForward implements ForwardRuntime {
  readonly name = 'tfjs' as const;

  private constructor(
    private readonly model: LoadedModel,
    private readonly weights: Map<string, tf.Tensor>,
    readonly description: string,
  ) {}

  /**
   * Uploads the weights once. Matrices are stored transposed to [in, out] (and the LM head too), because
   * the wasm backend's matMul with transposeB runs about ten times slower than a plain one.
   */
  static async create(model: LoadedModel): Promise<TfjsForward> {
    const backend = await selectTfjsBackend();
    const weights = new Map<string, tf.Tensor>();
    const { family, config } = model;
    for (const [name, tensor] of model.weights) {
      const t = tf.tensor(tensor.data, [...tensor.shape], 'float32');
      const isMatrix = tensor.shape.length === 2 && name !== family.weights.embedTokens && name !== family.weights.embedPositions;
      weights.set(name, isMatrix ? transposeAndDispose(t) : t);
    }
    if (config.tieWordEmbeddings) weights.set(LM_HEAD_T, tf.transpose(weights.get(family.weights.embedTokens)!));
    else weights.set(LM_HEAD_T, weights.get(family.weights.lmHead)!);
    return new TfjsForward(model, weights, `tfjs ${backend}`);
  }

  async forward(batch: TokenBatch, request: ForwardRequest): Promise<ForwardResult> {
    const outputs = tf.tidy(() => this.compute(batch, request));
    try {
      const read = async (t: tf.Tensor): Promise<HostTensor> => ({ shape: t.shape, data: (await t.data()) as Float32Array });
      return {
        logits: outputs.logits ? await read(outputs.logits) : undefined,
        hiddenStates: outputs.hiddenStates ? await Promise.all(outputs.hiddenStates.map(read)) : undefined,
        hiddenStateCosines: outputs.hiddenStateCosines ? await read(outputs.hiddenStateCosines) : undefined,
      };
    } finally {
      outputs.logits?.dispose();
      outputs.hiddenStates?.forEach((t) => t.dispose());
      outputs.hiddenStateCosines?.dispose();
    }
  }

  private compute(batch: TokenBatch, request: ForwardRequest): { logits?: tf.Tensor; hiddenStates?: tf.Tensor[]; hiddenStateCosines?: tf.Tensor } {
    const { config, family } = this.model;
    const { batchSize: B, seqLen: T } = batch;
    const H = config.numAttentionHeads;
    const Hkv = config.numKeyValueHeads;
    const hd = config.headDim;
    const w = (name: string) => this.weights.get(name)!;
    const layerW = (layer: number, part: LayerPart, kind: 'weight' | 'bias' = 'weight') => w(layerWeightName(family, layer, part, kind));

    const linear = (x: tf.Tensor, layer: number, part: LayerPart) => {
      const y = tf.matMul(tf.reshape(x, [-1, x.shape[x.rank - 1]]), layerW(layer, part));
      const biased = hasBias(family, config, part) ? tf.add(y, layerW(layer, part, 'bias')) : y;
      return tf.reshape(biased, [...x.shape.slice(0, -1), -1]);
    };
    const norm = (x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor | null) => {
      if (family.norm === 'rmsnorm') {
        const meanSquare = tf.mean(tf.square(x), -1, true);
        return tf.mul(tf.mul(x, tf.rsqrt(tf.add(meanSquare, config.normEps))), weight);
      }
      const { mean, variance } = tf.moments(x, -1, true);
      return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, config.normEps))), weight), bias!);
    };
    const layerNorm = (x: tf.Tensor, layer: number, part: 'attentionNorm' | 'mlpNorm') =>
      norm(x, layerW(layer, part), family.norm === 'layernorm' ? layerW(layer, part, 'bias') : null);

    const ids = tf.tensor2d(batch.inputIds, [B, T], 'int32');
    let x = tf.gather(w(family.weights.embedTokens), ids); // [B, T, d]
    if (family.weights.embedPositions) {
      const positions = tf.range(family.learnedPositionOffset, family.learnedPositionOffset + T, 1, 'int32');
      x = tf.add(x, tf.gather(w(family.weights.embedPositions), positions));
    }
    const hiddenStates = [x];

    const bias = tf.tensor4d(attentionBias(batch, config.slidingWindow), [B, 1, T, T]);
    const rope = family.positions === 'rope' ? ropeTables(config, T) : null;
    const cos = rope ? tf.tensor2d(rope.cos, [T, hd]) : null;
    const sin = rope ? tf.tensor2d(rope.sin, [T, hd]) : null;
    const rotate = (t: tf.Tensor) => {
      const [first, second] = tf.split(t, 2, -1);
      return tf.add(tf.mul(t, cos!), tf.mul(tf.concat([tf.neg(second), first], -1), sin!));
    };
    const group = H / Hkv;
    // Row r of a KV head's stacked scores is query position r mod T: the bias repeats group times.
    const biasForScores = group > 1 ? tf.tile(bias, [1, 1, group, 1]) : bias;
    const heads = (t: tf.Tensor, n: number) => tf.transpose(tf.reshape(t, [B, T, n, hd]), [0, 2, 1, 3]); // [B, n, T, hd]

    for (let layer = 0; layer < config.numLayers; layer++) {
      const h = layerNorm(x, layer, 'attentionNorm');
      let q = heads(linear(h, layer, 'q'), H);
      let k = heads(linear(h, layer, 'k'), Hkv);
      let v = heads(linear(h, layer, 'v'), Hkv);
      if (rope) {
        q = rotate(q);
        k = rotate(k);
      }
      // Grouped-query attention: the group's queries stacked along time, [B, Hkv, group·T, hd], so one
      // plain batched matMul per KV head serves them all, with no copies of K/V.
      const stackedQueries = group > 1 ? tf.reshape(q, [B, Hkv, group * T, hd]) : q;
      const scores = tf.add(tf.mul(tf.matMul(stackedQueries, tf.transpose(k, [0, 1, 3, 2])), 1 / Math.sqrt(hd)), biasForScores);
      const attended = tf.reshape(tf.matMul(tf.softmax(scores), v), [B, H, T, hd]);
      const merged = tf.reshape(tf.transpose(attended, [0, 2, 1, 3]), [B, T, H * hd]);
      x = tf.add(x, linear(merged, layer, 'o'));

      const m = layerNorm(x, layer, 'mlpNorm');
      const activated =
        family.mlp === 'gated'
          ? tf.mul(silu(linear(m, layer, 'gate')), linear(m, layer, 'up'))
          : family.activation === 'relu'
            ? tf.relu(linear(m, layer, 'up'))
            : silu(linear(m, layer, 'up'));
      x = tf.add(x, linear(activated, layer, 'down'));
      hiddenStates.push(x);
    }

    let logits: tf.Tensor | undefined;
    if (request.logits) {
      const finalNorm = family.weights.finalNorm;
      const y = norm(x, w(`${finalNorm}.weight`), family.norm === 'layernorm' ? w(`${finalNorm}.bias`) : null);
      logits = tf.reshape(tf.matMul(tf.reshape(y, [B * T, -1]), w(LM_HEAD_T)), [B, T, -1]);
    }
    let hiddenStateCosines: tf.Tensor | undefined;
    if (request.hiddenStateCosines) {
      const stacked = tf.stack(hiddenStates, 2); // [B, T, L+1, d]
      const units = tf.div(stacked, tf.maximum(tf.norm(stacked, 'euclidean', -1, true), 1e-12));
      hiddenStateCosines = tf.matMul(units, units, false, true);
    }
    return { logits, hiddenStates: request.hiddenStates ? hiddenStates : undefined, hiddenStateCosines };
  }

  async dispose(): Promise<void> {
    for (const t of new Set(this.weights.values())) t.dispose();
    this.weights.clear();
  }
}

const LM_HEAD_T = 'lm_head.weight [in, out]';

function transposeAndDispose(t: tf.Tensor): tf.Tensor {
  const transposed = tf.transpose(t);
  t.dispose();
  return transposed;
}

function silu(x: tf.Tensor): tf.Tensor {
  return tf.mul(x, tf.sigmoid(x));
}
