/**
 * AdamW as PyTorch's torch.optim.AdamW computes it (decoupled weight decay, bias-corrected moments),
 * with gradient clipping by global norm. Its state (moments and step count) is plain data so training
 * checkpoints can save and restore it exactly.
 */
import * as tf from '@tensorflow/tfjs-core';

export interface AdamWSettings {
  readonly weightDecay: number;
  readonly gradClip: number;
  readonly beta1?: number;
  readonly beta2?: number;
  readonly epsilon?: number;
}

export class AdamW {
  readonly firstMoments = new Map<string, tf.Tensor>();
  readonly secondMoments = new Map<string, tf.Tensor>();
  step = 0;

  constructor(
    private readonly params: ReadonlyMap<string, tf.Variable>,
    private readonly settings: AdamWSettings,
  ) {
    for (const [name, p] of params) {
      this.firstMoments.set(name, tf.zerosLike(p));
      this.secondMoments.set(name, tf.zerosLike(p));
    }
  }

  /** Applies one update with `grads` (averaged over the accumulated micro-batches); returns the pre-clip gradient norm. */
  apply(grads: ReadonlyMap<string, tf.Tensor>, learningRate: number): number {
    const { weightDecay, gradClip } = this.settings;
    const beta1 = this.settings.beta1 ?? 0.9;
    const beta2 = this.settings.beta2 ?? 0.999;
    const epsilon = this.settings.epsilon ?? 1e-8;
    const norm = Math.sqrt(tf.tidy(() => tf.addN([...grads.values()].map((g) => tf.sum(tf.square(g))))).dataSync()[0]);
    const clipScale = gradClip > 0 && norm > gradClip ? gradClip / (norm + 1e-6) : 1;
    this.step += 1;
    const correction1 = 1 - beta1 ** this.step;
    const correction2 = 1 - beta2 ** this.step;
    for (const [name, p] of this.params) {
      const g = grads.get(name)!;
      const [m, v] = tf.tidy(() => {
        const clipped = tf.mul(g, clipScale);
        return [
          tf.add(tf.mul(this.firstMoments.get(name)!, beta1), tf.mul(clipped, 1 - beta1)),
          tf.add(tf.mul(this.secondMoments.get(name)!, beta2), tf.mul(tf.square(clipped), 1 - beta2)),
        ];
      });
      this.firstMoments.get(name)!.dispose();
      this.secondMoments.get(name)!.dispose();
      this.firstMoments.set(name, m);
      this.secondMoments.set(name, v);
      tf.tidy(() => {
        const decayed = tf.mul(p, 1 - learningRate * weightDecay);
        const update = tf.div(tf.div(m, correction1), tf.add(tf.sqrt(tf.div(v, correction2)), epsilon));
        p.assign(tf.sub(decayed, tf.mul(update, learningRate)));
      });
    }
    return norm;
  }

  dispose(): void {
    for (const t of [...this.firstMoments.values(), ...this.secondMoments.values()]) t.dispose();
  }
}
