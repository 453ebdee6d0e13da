import { EngineError } from '../errors.js';
/** A float32 tensor in host memory, row-major. Linear weights keep Hugging Face's [out, in] layout. */
export interface HostTensor {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function hostTensor(shape: readonly number[], data: Float32Array): HostTensor {
  const expected = elementCount(shape);
  if (data.length !== expected) {
    throw new Error(`tensor data has ${data.length} elements but shape [${shape.join(', ')}] needs ${expected}`);
  }
  return { shape: [...shape], data };
}

/** [rows, cols] → [cols, rows]. */
export function transpose2d(t: HostTensor): HostTensor {
  const [rows, cols] = t.shape;
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const src = r * cols;
    for (let c = 0; c < cols; c++) out[c * rows + r] = t.data[src + c];
  }
  return { shape: [cols, rows], data: out };
}

/**
 * Throws INVALID_WEIGHTS when a weight read from a model holds NaN or ±Infinity: headers carry no
 * values, so each tensor is scanned once, as it is read. `x - x` is 0 for every finite float and NaN
 * otherwise, one subtraction per value.
 */
export function checkFiniteWeights(name: string, tensor: HostTensor): HostTensor {
  const { data } = tensor;
  for (let i = 0; i < data.length; i++) {
    const x = data[i];
    if (x - x !== 0) throw new EngineError('INVALID_WEIGHTS', `tensor ${name} holds NaN/infinite values`);
  }
  return tensor;
}
