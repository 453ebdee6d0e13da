/**
 * Dense Cholesky in float64 on the host: the factor, the inverse of a triangular factor, and a solve for
 * many right-hand sides. The LINEAR fit's whole solve when the system is small, and the diagonal blocks
 * of the blocked solve (./onnx/blocked-cholesky.ts) when it is not.
 */
import { EngineError } from '../errors.js';

/** The lower Cholesky factor L (M = L Lᵀ) of a symmetric positive-definite M [n, n], in float64. */
export function choleskyFactor(matrix: Float64Array, n: number): Float64Array {
  const L = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const rowI = L.subarray(i * n, i * n + n);
    for (let j = 0; j <= i; j++) {
      const sum = matrix[i * n + j] - dot(rowI, L.subarray(j * n, j * n + n), j);
      if (i === j) {
        if (sum <= 0) throw new EngineError('BAD_INPUT', 'the LINEAR fit is singular (hidden states do not span the space); use more calibration samples or a larger ridge');
        rowI[i] = Math.sqrt(sum);
      } else {
        rowI[j] = sum / L[j * n + j];
      }
    }
  }
  return L;
}

/** Σ_{k<length} a[k]·b[k], four partial sums (V8 keeps them in registers; about twice a plain loop). */
function dot(a: Float64Array, b: Float64Array, length: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let k = 0;
  for (; k + 3 < length; k += 4) {
    s0 += a[k] * b[k];
    s1 += a[k + 1] * b[k + 1];
    s2 += a[k + 2] * b[k + 2];
    s3 += a[k + 3] * b[k + 3];
  }
  for (; k < length; k++) s0 += a[k] * b[k];
  return s0 + s1 + s2 + s3;
}

/** L⁻¹ of a lower-triangular L [n, n] (row by row: row i = (eᵢ − Σ_{k<i} L[i,k] · row k) / L[i,i]). */
export function invertLowerTriangular(L: Float64Array, n: number): Float64Array {
  // Column-oriented on Lᵀ's rows would stride; instead X = L⁻¹ solves L X = I row by row:
  // X[i, c] = (δ_ic − Σ_{c≤k<i} L[i,k] X[k,c]) / L[i,i]. Computed as its transpose Y = Xᵀ so the inner
  // sum runs along contiguous rows of L and Y: Y[c, i] = (δ_ic − Σ_k L[i,k] Y[c,k]) / L[i,i].
  const Y = new Float64Array(n * n);
  for (let c = 0; c < n; c++) {
    const rowC = Y.subarray(c * n, c * n + n);
    rowC[c] = 1 / L[c * n + c];
    for (let i = c + 1; i < n; i++) {
      const rowL = L.subarray(i * n, i * n + n);
      let sum = 0;
      for (let k = c; k < i; k++) sum += rowL[k] * rowC[k];
      rowC[i] = -sum / rowL[i];
    }
  }
  // Y = (L⁻¹)ᵀ; transpose back.
  const inverse = new Float64Array(n * n);
  for (let r = 0; r < n; r++) for (let c = 0; c <= r; c++) inverse[r * n + c] = Y[c * n + r];
  return inverse;
}

/** Solves M A = B for symmetric positive-definite M [n, n] and B [n, m]. */
export function solveCholesky(matrix: Float64Array, rhs: Float64Array, n: number, m: number): Float64Array {
  const L = choleskyFactor(matrix, n);
  // Substitution for all m columns at once, row by row: the inner loops run along contiguous rows.
  const solution = Float64Array.from(rhs);
  for (let i = 0; i < n; i++) {
    // forward: L z = b
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
    // back: Lᵀ a = z
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
