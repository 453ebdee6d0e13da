/**
 * Inputs both runtimes compute on the host: the additive attention bias (causal, padding, sliding window)
 * and the RoPE cos/sin tables. Computing them here keeps the two forward passes identical and lets the
 * ONNX graph stay free of shape arithmetic.
 */
import type { ModelConfig } from '../models/architecture.js';
import type { TokenBatch } from './runtime.js';

/** Large enough to zero a softmax term, small enough that a sum of two stays finite. */
export const MASKED = -1e9;

/** [B, 1, T, T]: 0 where query t may attend to key j (j ≤ t, key not padding, inside the window), else MASKED. */
export function attentionBias(batch: TokenBatch, slidingWindow: number | null): Float32Array {
  const { batchSize: B, seqLen: T, attentionMask } = batch;
  const bias = new Float32Array(B * T * T).fill(MASKED);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const first = slidingWindow === null ? 0 : Math.max(0, t - slidingWindow + 1);
      const row = (b * T + t) * T;
      for (let j = first; j <= t; j++) if (attentionMask[b * T + j]) bias[row + j] = 0;
      // A padding query with no visible key would softmax to NaN; let it see itself (its output is ignored).
      if (!attentionMask[b * T + t]) bias[row + t] = 0;
    }
  }
  return bias;
}

/** Rotary inverse frequencies, with Llama-3 or linear scaling as transformers computes them. */
export function ropeInverseFrequencies(config: ModelConfig): Float64Array {
  const dim = config.headDim;
  const inv = new Float64Array(dim / 2);
  for (let i = 0; i < dim / 2; i++) inv[i] = 1 / config.ropeTheta ** ((2 * i) / dim);
  const scaling = config.ropeScaling;
  if (scaling?.type === 'linear') {
    for (let i = 0; i < inv.length; i++) inv[i] /= scaling.factor;
  } else if (scaling?.type === 'llama3') {
    const oldContext = scaling.originalMaxPositionEmbeddings!;
    const low = scaling.lowFreqFactor!;
    const high = scaling.highFreqFactor!;
    const lowFreqWavelength = oldContext / low;
    const highFreqWavelength = oldContext / high;
    for (let i = 0; i < inv.length; i++) {
      const wavelength = (2 * Math.PI) / inv[i];
      if (wavelength < highFreqWavelength) continue;
      if (wavelength > lowFreqWavelength) {
        inv[i] /= scaling.factor;
      } else {
        const smooth = (oldContext / wavelength - low) / (high - low);
        inv[i] = (1 - smooth) * (inv[i] / scaling.factor) + smooth * inv[i];
      }
    }
  }
  return inv;
}

/** cos and sin tables [T, headDim] for positions 0..T-1, halves repeated (rotate-half layout). */
export function ropeTables(config: ModelConfig, seqLen: number): { cos: Float32Array; sin: Float32Array } {
  const inv = ropeInverseFrequencies(config);
  const dim = config.headDim;
  const half = dim / 2;
  const cos = new Float32Array(seqLen * dim);
  const sin = new Float32Array(seqLen * dim);
  for (let t = 0; t < seqLen; t++) {
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(t * Math.fround(inv[i]));
      cos[t * dim + i] = cos[t * dim + i + half] = Math.cos(angle);
      sin[t * dim + i] = sin[t * dim + i + half] = Math.sin(angle);
    }
  }
  return { cos, sin };
}
