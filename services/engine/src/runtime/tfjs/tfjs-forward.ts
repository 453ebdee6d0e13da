/**
 * The forward pass in TensorFlow.js, read top to bottom like llama2.c's: embeddings, then per layer
 * pre-norm attention and pre-norm MLP on the residual stream, then the final norm and the LM head.
 * Family differences come from the architecture table (norm, positions, activation, biases).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { HostTensor } from '../../formats/host-tensor.js';
import { layerWeightName } from '../../models/architecture.js';
import type { LoadedModel } from '../../models/model.js';
import { applyReplacement } from './inserted-forward.js';
import { decoderLayer, layerContext, normalize } from './decoder-layer.js';
import type { ForwardRequest, ForwardResult, ForwardRuntime, TokenBatch } from '../runtime.js';
import { selectTfjsBackend } from './backend.js';

export class TfjsForward implements ForwardRuntime {
  readonly name = 'tfjs' as const;

  private constructor(
    private readonly model: LoadedModel,
    private readonly weights: Map<string, tf.Tensor>,
    private readonly inserted: Map<string, tf.Tensor>,
    readonly description: string,
  ) {}

  private readonly replacementWeights = (name: string) => this.inserted.get(name)!;

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
    const inserted = new Map<string, tf.Tensor>();
    for (const [name, tensor] of model.replacement?.weights ?? []) {
      const t = tf.tensor(tensor.data, [...tensor.shape], 'float32');
      inserted.set(name, tensor.shape.length === 2 ? transposeAndDispose(t) : t);
    }
    return new TfjsForward(model, weights, inserted, `tfjs ${backend}`);
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
    const w = (name: string) => this.weights.get(name)!;

    const ids = tf.tensor2d(batch.inputIds, [B, T], 'int32');
    let x = tf.gather(w(family.weights.embedTokens), ids); // [B, T, d]
    if (family.weights.embedPositions) {
      const positions = tf.range(family.learnedPositionOffset, family.learnedPositionOffset + T, 1, 'int32');
      x = tf.add(x, tf.gather(w(family.weights.embedPositions), positions));
    }
    const hiddenStates = [x];

    const ctx = layerContext(config, family, batch);
    for (let layer = 0; layer < config.numLayers; layer++) {
      if (this.model.replacement?.position === layer) x = applyReplacement(x, this.replacementWeights, this.model.replacement.kind, config);
      x = decoderLayer(x, (part, kind = 'weight') => w(layerWeightName(family, layer, part, kind)), ctx);
      hiddenStates.push(x);
    }
    if (this.model.replacement?.position === config.numLayers) x = applyReplacement(x, this.replacementWeights, this.model.replacement.kind, config);

    let logits: tf.Tensor | undefined;
    if (request.logits) {
      const finalNorm = family.weights.finalNorm;
      const y = normalize(x, ctx, w(`${finalNorm}.weight`), family.norm === 'layernorm' ? w(`${finalNorm}.bias`) : null);
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
    for (const t of new Set([...this.weights.values(), ...this.inserted.values()])) t.dispose();
    this.weights.clear();
    this.inserted.clear();
  }
}

const LM_HEAD_T = 'lm_head.weight [in, out]';

function transposeAndDispose(t: tf.Tensor): tf.Tensor {
  const transposed = tf.transpose(t);
  t.dispose();
  return transposed;
}

