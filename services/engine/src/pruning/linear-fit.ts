/**
 * LINEAR replacement, training-free: the affine map y = W x + b minimising the squared error over every
 * training token, with a small ridge term, in closed form. The normal equations
 * (XᵀX + λI) A = XᵀY (X with a column of ones for the bias) are accumulated chunk by chunk — the
 * products in ONNX Runtime (or TensorFlow.js, as the trainer setting says), the sums in float64 — then
 * solved by Cholesky in float64.
 */
import * as tf from '@tensorflow/tfjs-core';
import { EngineError, throwIfCancelled } from '../errors.js';
import type { HostTensor } from '../formats/host-tensor.js';
import { tfjsForTraining } from '../runtime/tfjs/training.js';
import type { NormalEquationChunk } from '../training/onnx/least-squares.js';
import { solveCholesky } from '../training/cholesky.js';
import { requestedTrainer, type TrainerName } from '../training/trainer.js';
import type { HiddenStatePairs } from './hidden-state-pairs.js';

export interface LinearFit {
  readonly weights: Map<string, HostTensor>;
  readonly trainLoss: number;
  readonly validationCosine: number | null;
}

/** Rows (tokens) per product: thousands at a time keep the GEMMs large; whole sequences, never split. */
const CHUNK_ROWS = 4096;

/** Where the products run: ONNX Runtime (default) or TensorFlow.js (STREAMLINE_TRAINER=tfjs, or no native binding). */
interface Products {
  readonly description: string;
  normalEquations(x: Float32Array, y: Float32Array, rows: number): Promise<NormalEquationChunk>;
  residualSums(x: Float32Array, y: Float32Array, rows: number, weight: Float32Array, bias: Float32Array): Promise<{ squaredError: number; cosineSum: number }>;
  /** Solves gram · A = cross in float64 (default: solveCholesky on the host). */
  solve?(gram: Float64Array, cross: Float64Array, n: number, m: number): Promise<Float64Array>;
  dispose(): Promise<void>;
}

export async function fitLinearReplacement(pairs: HiddenStatePairs, ridge: number, signal?: AbortSignal, options: { trainer?: TrainerName; onStart?: (description: string) => void } = {}): Promise<LinearFit> {
  const d = pairs.hiddenSize;
  const products = await createProducts(d, options.trainer ?? requestedTrainer());
  options.onStart?.(products.description);
  try {
    const n = d + 1;
    const gram = new Float64Array(n * n); // XᵀX with X = [inputs, 1]
    const cross = new Float64Array(n * d); // XᵀY
    let tokens = 0;
    for await (const chunk of chunks(pairs, pairs.indices('train'), d, signal)) {
      const { xtx, xty, xSum, ySum } = await products.normalEquations(chunk.x, chunk.y, chunk.rows);
      for (let i = 0; i < d; i++) {
        for (let j = 0; j < d; j++) gram[i * n + j] += xtx[i * d + j];
        gram[i * n + d] += xSum[i];
        gram[d * n + i] += xSum[i];
      }
      gram[d * n + d] += chunk.rows;
      for (let i = 0; i < d * d; i++) cross[i] += xty[i];
      for (let j = 0; j < d; j++) cross[d * d + j] += ySum[j];
      tokens += chunk.rows;
    }
    if (tokens === 0) throw new EngineError('BAD_INPUT', 'no training tokens for the LINEAR fit');
    // Ridge relative to the data's scale, on the weights only (not the bias row).
    let trace = 0;
    for (let i = 0; i < d; i++) trace += gram[i * n + i];
    const lambda = (ridge * trace) / d;
    for (let i = 0; i < d; i++) gram[i * n + i] += lambda;

    const solution = products.solve ? await products.solve(gram, cross, n, d) : solveCholesky(gram, cross, n, d); // A [n, d]: rows 0..d-1 = Wᵀ, row d = b
    const weight = new Float32Array(d * d);
    for (let i = 0; i < d; i++) for (let o = 0; o < d; o++) weight[o * d + i] = solution[i * d + o];
    const bias = Float32Array.from(solution.subarray(d * d, d * d + d));
    const weightInOut = Float32Array.from(solution.subarray(0, d * d));

    // Training loss of the fit (mean squared error per element) and the held-out check: mean cosine of
    // the fitted map's output and the block's real output on validation tokens.
    let squaredError = 0;
    for await (const chunk of chunks(pairs, pairs.indices('train'), d, signal)) squaredError += (await products.residualSums(chunk.x, chunk.y, chunk.rows, weightInOut, bias)).squaredError;
    let cosineSum = 0;
    let validationTokens = 0;
    for await (const chunk of chunks(pairs, pairs.indices('val'), d, signal)) {
      cosineSum += (await products.residualSums(chunk.x, chunk.y, chunk.rows, weightInOut, bias)).cosineSum;
      validationTokens += chunk.rows;
    }
    return {
      weights: new Map([
        ['linear.weight', { shape: [d, d], data: weight }],
        ['linear.bias', { shape: [d], data: bias }],
      ]),
      trainLoss: squaredError / (tokens * d),
      validationCosine: validationTokens > 0 ? cosineSum / validationTokens : null,
    };
  } finally {
    await products.dispose();
  }
}

/** Sequences packed into chunks of about CHUNK_ROWS rows (buffers reused between chunks). */
async function* chunks(pairs: HiddenStatePairs, indices: number[], d: number, signal?: AbortSignal): AsyncGenerator<{ x: Float32Array; y: Float32Array; rows: number }> {
  let capacity = CHUNK_ROWS;
  let x = new Float32Array(capacity * d);
  let y = new Float32Array(capacity * d);
  let rows = 0;
  for (const index of indices) {
    throwIfCancelled(signal, 'linear fit');
    const { inputs, targets, length } = pairs.read(index);
    if (rows > 0 && rows + length > capacity) {
      yield { x, y, rows };
      rows = 0;
    }
    if (length > capacity) {
      capacity = length;
      x = new Float32Array(capacity * d);
      y = new Float32Array(capacity * d);
    }
    x.set(inputs.subarray(0, length * d), rows * d);
    y.set(targets.subarray(0, length * d), rows * d);
    rows += length;
  }
  if (rows > 0) yield { x, y, rows };
}

async function createProducts(d: number, trainer: TrainerName | undefined): Promise<Products> {
  if (trainer !== 'tfjs') {
    let module: typeof import('../training/onnx/least-squares.js') | null = null;
    try {
      module = await import('../training/onnx/least-squares.js');
    } catch (error) {
      if (trainer === 'onnx') throw error;
    }
    if (module) return module.OnnxLeastSquares.shared(d);
  }
  const backend = await tfjsForTraining();
  return {
    description: `tensorflow.js ${backend}${backend === 'wasm' ? ', 1 thread' : ''}`,
    async normalEquations(x, y, rows) {
      // The products leave tidy as tensors and are read after: typed arrays returned from tidy are walked
      // element by element (a Set of them), which fails past 2^24 elements — d² at d = 4096.
      const products = tf.tidy(() => {
        const xs = tf.tensor2d(x.subarray(0, rows * d), [rows, d]);
        const ys = tf.tensor2d(y.subarray(0, rows * d), [rows, d]);
        return [tf.matMul(xs, xs, true, false), tf.matMul(xs, ys, true, false), tf.sum(xs, 0), tf.sum(ys, 0)];
      });
      const [xtx, xty, xSum, ySum] = products.map((t) => t.dataSync() as Float32Array);
      products.forEach((t) => t.dispose());
      return { xtx, xty, xSum, ySum };
    },
    async residualSums(x, y, rows, weight, bias) {
      return tf.tidy(() => {
        const predicted = tf.add(tf.matMul(tf.tensor2d(x.subarray(0, rows * d), [rows, d]), tf.tensor2d(weight, [d, d])), tf.tensor1d(bias));
        const target = tf.tensor2d(y.subarray(0, rows * d), [rows, d]);
        const norms = tf.maximum(tf.mul(tf.norm(predicted, 'euclidean', -1), tf.norm(target, 'euclidean', -1)), 1e-12);
        return {
          squaredError: tf.sum(tf.squaredDifference(predicted, target)).dataSync()[0],
          cosineSum: tf.sum(tf.div(tf.sum(tf.mul(predicted, target), -1), norms)).dataSync()[0],
        };
      });
    },
    async dispose() {},
  };
}
