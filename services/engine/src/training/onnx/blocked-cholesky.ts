/**
 * Solving the LINEAR fit's normal equations M A = B (M symmetric positive definite [n, n], B [n, m]) in
 * float64 with the O(n³) work as ONNX Runtime GEMMs: a right-looking blocked Cholesky (host factors and
 * inverts only the diagonal blocks; panels and trailing updates are GEMMs), then blocked forward and back
 * substitution (GEMMs against the diagonal blocks' inverses). At d = 4096 the host part is 33 blocks of
 * 128³/3 multiply-adds instead of 4097³/3.
 */
import * as ort from 'onnxruntime-node';
import { choleskyFactor, invertLowerTriangular } from '../cholesky.js';
import { OnnxGraph } from '../../runtime/onnx/onnx-graph.js';

interface Matrix {
  readonly data: Float64Array;
  readonly rows: number;
  readonly cols: number;
}

/** alpha · op(A) · op(B) (+ C), op = transpose when asked; float64 sessions created on first use. */
export class Float64Gemm {
  private readonly sessions = new Map<string, Promise<ort.InferenceSession>>();

  constructor(private readonly options: ort.InferenceSession.SessionOptions) {}

  private session(transA: boolean, transB: boolean, alpha: number, withC: boolean): Promise<ort.InferenceSession> {
    const key = `${transA}:${transB}:${alpha}:${withC}`;
    let session = this.sessions.get(key);
    if (!session) {
      const g = new OnnxGraph();
      const inputs = [g.input('a', 'double', ['a0', 'a1']), g.input('b', 'double', ['b0', 'b1'])];
      if (withC) inputs.push(g.input('c', 'double', ['c0', 'c1']));
      // beta is left at its default, 1 (the builder would write an integer 1 as an INT attribute).
      g.output(g.op('Gemm', inputs, { transA: transA ? 1 : 0, transB: transB ? 1 : 0, alpha }), 'y', ['y0', 'y1'], 'double');
      session = ort.InferenceSession.create(g.encode('gemm-f64', 17), this.options);
      this.sessions.set(key, session);
    }
    return session;
  }

  async run(a: Matrix, b: Matrix, c: Matrix | null, transA: boolean, transB: boolean, alpha: number): Promise<Matrix> {
    const session = await this.session(transA, transB, alpha, c !== null);
    const tensor = (m: Matrix) => new ort.Tensor('float64', m.data, [m.rows, m.cols]);
    const feeds: Record<string, ort.Tensor> = { a: tensor(a), b: tensor(b) };
    if (c) feeds.c = tensor(c);
    const y = (await session.run(feeds)).y;
    return { data: y.data as Float64Array, rows: y.dims[0], cols: y.dims[1] };
  }

  async dispose(): Promise<void> {
    for (const session of this.sessions.values()) await (await session).release();
  }
}

/** Rows r0..r1, columns c0..c1 of a row-major matrix with `stride` columns, copied. */
function block(data: Float64Array, stride: number, r0: number, r1: number, c0: number, c1: number): Matrix {
  const cols = c1 - c0;
  const out = new Float64Array((r1 - r0) * cols);
  for (let r = r0; r < r1; r++) out.set(data.subarray(r * stride + c0, r * stride + c1), (r - r0) * cols);
  return { data: out, rows: r1 - r0, cols };
}

function place(data: Float64Array, stride: number, m: Matrix, r0: number, c0: number): void {
  for (let r = 0; r < m.rows; r++) data.set(m.data.subarray(r * m.cols, (r + 1) * m.cols), (r0 + r) * stride + c0);
}

export async function blockedCholeskySolve(matrix: Float64Array, rhs: Float64Array, n: number, m: number, gemm: Float64Gemm, blockSize = 128): Promise<Float64Array> {
  const a = Float64Array.from(matrix);
  const L = new Float64Array(n * n);
  const inverses: Matrix[] = [];
  const starts: number[] = [];
  for (let k0 = 0; k0 < n; k0 += blockSize) starts.push(k0);
  const end = (k0: number) => Math.min(n, k0 + blockSize);

  for (const k0 of starts) {
    const k1 = end(k0);
    const kb = k1 - k0;
    const factor = choleskyFactor(block(a, n, k0, k1, k0, k1).data, kb);
    const inverse: Matrix = { data: invertLowerTriangular(factor, kb), rows: kb, cols: kb };
    inverses.push(inverse);
    place(L, n, { data: factor, rows: kb, cols: kb }, k0, k0);
    if (k1 === n) continue;
    const panel = await gemm.run(block(a, n, k1, n, k0, k1), inverse, null, false, true, 1); // A21 · L11⁻ᵀ
    place(L, n, panel, k1, k0);
    const trailing = await gemm.run(panel, panel, block(a, n, k1, n, k1, n), false, true, -1); // A22 − L21 L21ᵀ
    place(a, n, trailing, k1, k1);
  }

  // L Z = B, block row by block row.
  const z = new Float64Array(n * m);
  for (const [i, k0] of starts.entries()) {
    const k1 = end(k0);
    const right = block(rhs, m, k0, k1, 0, m);
    const reduced = k0 === 0 ? right : await gemm.run(block(L, n, k0, k1, 0, k0), block(z, m, 0, k0, 0, m), right, false, false, -1);
    place(z, m, await gemm.run(inverses[i], reduced, null, false, false, 1), k0, 0);
  }
  // Lᵀ X = Z, from the last block row up.
  const x = new Float64Array(n * m);
  for (let i = starts.length - 1; i >= 0; i--) {
    const k0 = starts[i];
    const k1 = end(k0);
    const right = block(z, m, k0, k1, 0, m);
    const reduced = k1 === n ? right : await gemm.run(block(L, n, k1, n, k0, k1), block(x, m, k1, n, 0, m), right, true, false, -1);
    place(x, m, await gemm.run(inverses[i], reduced, null, true, false, 1), k0, 0);
  }
  return x;
}
