/**
 * LINEAR replacement, training-free: the affine map y = W x + b minimising the squared error over every
 * training token, with a small ridge term, in closed form. The normal equations
 * (XᵀX + λI) A = XᵀY (X with a column of ones for the bias) are accumulated sequence by sequence — the
 * products on the tfjs backend, the sums in float64 — then solved by Cholesky in float64.
 */
import * as tf from '@tensorflow/tfjs-core';
import { EngineError, throwIfCancelled } from '../errors.js';
import type { HostTensor } from '../formats/host-tensor.js';
import { tfjsForTraining } from '../runtime/tfjs/training.js';
import type { PairReader } from './hidden-state-pairs.js';

export interface LinearFit {
  readonly weights: Map<string, HostTensor>;
  readonly trainLoss: number;
  readonly validationCosine: number | null;
}

export async function fitLinearReplacement(pairs: PairReader, ridge: number, signal?: AbortSignal): Promise<LinearFit> {
  await tfjsForTraining();
  const d = pairs.manifest.hiddenSize;
  const n = d + 1;
  const gram = new Float64Array(n * n); // XᵀX
  const cross = new Float64Array(n * d); // XᵀY
  let tokens = 0;
  for (const index of pairs.indices('train')) {
    throwIfCancelled(signal, 'linear fit');
    const { inputs, targets, length } = pairs.read(index);
    // The products leave tidy as tensors and are read after: a typed array returned from tidy is walked
    // element by element (a Set of them), which fails past 2^24 elements — (d + 1)² at d = 4096.
    const products = tf.tidy(() => {
      const x = tf.concat([tf.tensor2d(inputs, [length, d]), tf.ones([length, 1])], 1);
      const y = tf.tensor2d(targets, [length, d]);
      return [tf.matMul(x, x, true, false), tf.matMul(x, y, true, false)];
    });
    const [xtx, xty] = products.map((t) => t.dataSync());
    products.forEach((t) => t.dispose());
    for (let i = 0; i < gram.length; i++) gram[i] += xtx[i];
    for (let i = 0; i < cross.length; i++) cross[i] += xty[i];
    tokens += length;
  }
  if (tokens === 0) throw new EngineError('BAD_INPUT', 'no training tokens for the LINEAR fit');
  // Ridge relative to the data's scale, on the weights only (not the bias row).
  let trace = 0;
  for (let i = 0; i < d; i++) trace += gram[i * n + i];
  const lambda = (ridge * trace) / d;
  for (let i = 0; i < d; i++) gram[i * n + i] += lambda;

  const solution = solveCholesky(gram, cross, n, d); // A [n, d]: rows 0..d-1 = Wᵀ, row d = b
  const weight = new Float32Array(d * d);
  for (let i = 0; i < d; i++) for (let o = 0; o < d; o++) weight[o * d + i] = solution[i * d + o];
  const bias = Float32Array.from(solution.subarray(d * d, d * d + d));

  // Training loss of the fit: mean squared error per element.
  const weightInOut = tf.tensor2d(Float32Array.from(solution.subarray(0, d * d)), [d, d]);
  const biasTensor = tf.tensor1d(bias);
  let squaredError = 0;
  for (const index of pairs.indices('train')) {
    const { inputs, targets, length } = pairs.read(index);
    squaredError += tf.tidy(() => {
      const predicted = tf.add(tf.matMul(tf.tensor2d(inputs, [length, d]), weightInOut), biasTensor);
      return tf.sum(tf.squaredDifference(predicted, tf.tensor2d(targets, [length, d]))).dataSync()[0];
    });
  }
  // Held-out check: mean cosine of the fitted map's output and the block's real output on validation tokens.
  let cosineSum = 0;
  let validationTokens = 0;
  for (const index of pairs.indices('val')) {
    const { inputs, targets, length } = pairs.read(index);
    cosineSum += tf.tidy(() => {
      const predicted = tf.add(tf.matMul(tf.tensor2d(inputs, [length, d]), weightInOut), biasTensor);
      const target = tf.tensor2d(targets, [length, d]);
      const norms = tf.maximum(tf.mul(tf.norm(predicted, 'euclidean', -1), tf.norm(target, 'euclidean', -1)), 1e-12);
      return tf.sum(tf.div(tf.sum(tf.mul(predicted, target), -1), norms)).dataSync()[0];
    });
    validationTokens += length;
  }
  weightInOut.dispose();
  biasTensor.dispose();
  return {
    weights: new Map([
      ['linear.weight', { shape: [d, d], data: weight }],
      ['linear.bias', { shape: [d], data: bias }],
    ]),
    trainLoss: squaredError / (tokens * d),
    validationCosine: validationTokens > 0 ? cosineSum / validationTokens : null,
  };
}

/** Solves M A = B for symmetric positive-definite M [n, n] and B [n, m]. */
export function solveCholesky(matrix: Float64Array, rhs: Float64Array, n: number, m: number): Float64Array {
  const L = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let sum = matrix[i * n + j];
      for (let k = 0; k < j; k++) sum -= L[i * n + k] * L[j * n + k];
      if (i === j) {
        if (sum <= 0) throw new EngineError('BAD_INPUT', 'the LINEAR fit is singular (hidden states do not span the space); use more calibration samples or a larger ridge');
        L[i * n + i] = Math.sqrt(sum);
      } else {
        L[i * n + j] = sum / L[j * n + j];
      }
    }
  }
  // Substitutions row by row over all m right-hand sides at once: the inner loops run along contiguous
  // rows (column-at-a-time strides of m floats were the slow part at d = 4096).
  const solution = Float64Array.from(rhs);
  for (let i = 0; i < n; i++) {
    // forward: L Z = B
    const row = solution.subarray(i * m, (i + 1) * m);
    for (let k = 0; k < i; k++) {
      const factor = L[i * n + k];
      if (factor === 0) continue;
      const other = k * m;
      for (let c = 0; c < m; c++) row[c] -= factor * solution[other + c];
    }
    const pivot = L[i * n + i];
    for (let c = 0; c < m; c++) row[c] /= pivot;
  }
  for (let i = n - 1; i >= 0; i--) {
    // back: Lᵀ A = Z
    const row = solution.subarray(i * m, (i + 1) * m);
    for (let k = i + 1; k < n; k++) {
      const factor = L[k * n + i];
      if (factor === 0) continue;
      const other = k * m;
      for (let c = 0; c < m; c++) row[c] -= factor * solution[other + c];
    }
    const pivot = L[i * n + i];
    for (let c = 0; c < m; c++) row[c] /= pivot;
  }
  return solution;
}
