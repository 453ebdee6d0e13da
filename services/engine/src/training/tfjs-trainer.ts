/**
 * The portable trainer: TensorFlow.js autodiff on the selected backend (tfjs-node / tfjs-node-gpu, wasm,
 * cpu). It is also the oracle the ONNX trainer's gradients are tested against (`gradients()`).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { HostTensor } from '../formats/host-tensor.js';
import { AdamW } from '../pruning/adamw.js';
import { replacementForward } from '../pruning/replacement.js';
import { layerContext } from '../runtime/tfjs/decoder-layer.js';
import { tfjsForTraining } from '../runtime/tfjs/training.js';
import type { HostBatch, ReplacementTrainer, TrainerOptions, TrainerState } from './trainer.js';

interface DeviceBatch {
  inputs: tf.Tensor;
  targets: tf.Tensor;
  /** [B, T, 1] */
  mask: tf.Tensor;
  dispose(): void;
}

export class TfjsReplacementTrainer implements ReplacementTrainer {
  readonly description: string;
  private readonly variables = new Map<string, tf.Variable>();
  private readonly optimizer: AdamW;
  private accumulated: Map<string, tf.Tensor> | null = null;

  private constructor(
    private readonly options: TrainerOptions,
    backend: string,
  ) {
    this.description = `tensorflow.js ${backend}${backend === 'wasm' ? ', 1 thread' : ''}`;
    for (const [name, t] of options.initial) this.variables.set(name, tf.variable(tf.tensor(t.data, [...t.shape], 'float32'), true));
    this.optimizer = new AdamW(this.variables, options.optimizer);
  }

  static async create(options: TrainerOptions): Promise<TfjsReplacementTrainer> {
    const backend = await tfjsForTraining();
    return new TfjsReplacementTrainer(options, backend);
  }

  private weight = (name: string) => this.variables.get(name)!;

  private upload(batch: HostBatch): DeviceBatch {
    const { batchSize: B, seqLen: T } = batch;
    const d = this.options.model.config.hiddenSize;
    const tensors = {
      inputs: tf.tensor3d(batch.inputs, [B, T, d]),
      targets: tf.tensor3d(batch.targets, [B, T, d]),
      mask: tf.tensor3d(Float32Array.from(batch.attentionMask), [B, T, 1]),
    };
    return { ...tensors, dispose: () => Object.values(tensors).forEach((t) => t.dispose()) };
  }

  private predict(batch: HostBatch, device: DeviceBatch): tf.Tensor {
    const ctx = layerContext(this.options.model.config, this.options.model.family, batch);
    return replacementForward(this.options.kind, device.inputs, this.weight, ctx);
  }

  /** The batch's masked MSE and its gradient with respect to every parameter (caller disposes). */
  gradients(batch: HostBatch): { loss: number; grads: Map<string, tf.Tensor> } {
    const device = this.upload(batch);
    const d = this.options.model.config.hiddenSize;
    const { value, grads } = tf.variableGrads(
      () =>
        tf.tidy(() => {
          const error = tf.mul(tf.squaredDifference(this.predict(batch, device), device.targets), device.mask);
          return tf.div(tf.sum(error), batch.tokens * d) as tf.Scalar;
        }),
      [...this.variables.values()],
    );
    device.dispose();
    const loss = value.dataSync()[0];
    value.dispose();
    return { loss, grads: new Map([...this.variables].map(([name, p]) => [name, grads[p.name]])) };
  }

  async accumulate(batch: HostBatch): Promise<number> {
    const { loss, grads } = this.gradients(batch);
    if (!this.accumulated) {
      this.accumulated = grads;
    } else {
      for (const [name, g] of grads) {
        const previous = this.accumulated.get(name)!;
        this.accumulated.set(name, tf.add(previous, g));
        previous.dispose();
        g.dispose();
      }
    }
    return loss;
  }

  async step(microBatches: number, learningRate: number): Promise<void> {
    if (!this.accumulated) throw new Error('AdamW step without an accumulated gradient');
    const averaged = new Map([...this.accumulated].map(([name, g]) => [name, tf.div(g, microBatches)]));
    this.accumulated.forEach((g) => g.dispose());
    this.accumulated = null;
    this.optimizer.apply(averaged, learningRate);
    averaged.forEach((g) => g.dispose());
  }

  async evaluate(batch: HostBatch): Promise<{ squaredError: number; cosineSum: number }> {
    const device = this.upload(batch);
    const [squaredError, cosineSum] = tf.tidy(() => {
      const output = this.predict(batch, device);
      const squared = tf.sum(tf.mul(tf.squaredDifference(output, device.targets), device.mask));
      const norms = tf.maximum(tf.mul(tf.norm(output, 'euclidean', -1, true), tf.norm(device.targets, 'euclidean', -1, true)), 1e-12);
      const cosines = tf.div(tf.sum(tf.mul(output, device.targets), -1, true), norms);
      return [squared.dataSync()[0], tf.sum(tf.mul(cosines, device.mask)).dataSync()[0]];
    });
    device.dispose();
    return { squaredError, cosineSum };
  }

  private static host(t: tf.Tensor): HostTensor {
    return { shape: [...t.shape], data: Float32Array.from(t.dataSync() as Float32Array) };
  }

  async params(): Promise<Map<string, HostTensor>> {
    return new Map([...this.variables].map(([name, p]) => [name, TfjsReplacementTrainer.host(p)]));
  }

  async state(): Promise<TrainerState> {
    const all = (tensors: Map<string, tf.Tensor>) => new Map([...tensors].map(([name, t]) => [name, TfjsReplacementTrainer.host(t)]));
    return { params: await this.params(), firstMoments: all(this.optimizer.firstMoments), secondMoments: all(this.optimizer.secondMoments), step: this.optimizer.step };
  }

  async restore(state: TrainerState): Promise<void> {
    for (const [name, p] of this.variables) {
      const value = state.params.get(name)!;
      const tensor = tf.tensor(value.data, [...value.shape], 'float32');
      p.assign(tensor);
      tensor.dispose();
      for (const [moments, source] of [
        [this.optimizer.firstMoments, state.firstMoments],
        [this.optimizer.secondMoments, state.secondMoments],
      ] as const) {
        moments.get(name)!.dispose();
        const t = source.get(name)!;
        moments.set(name, tf.tensor(t.data, [...t.shape], 'float32'));
      }
    }
    this.optimizer.step = state.step;
    this.accumulated?.forEach((g) => g.dispose());
    this.accumulated = null;
  }

  async dispose(): Promise<void> {
    this.variables.forEach((p) => p.dispose());
    this.optimizer.dispose();
    this.accumulated?.forEach((g) => g.dispose());
  }
}
