/**
 * The products behind LINEAR's closed-form fit, in ONNX Runtime: the normal-equation blocks XᵀX, XᵀY and
 * the column sums of X and Y (the bias column of ones, without materialising it) for a chunk of rows, and
 * the fitted map's squared error and cosine sums. One GEMM per block over thousands of rows at a time,
 * on every allowed core; the caller sums chunks in float64.
 */
import * as ort from 'onnxruntime-node';
import { OnnxGraph } from '../../runtime/onnx/onnx-graph.js';
import { defaultProvider } from '../../runtime/onnx/onnx-forward.js';
import { defaultThreads } from '../../runtime/threads.js';
import { solveCholesky } from '../cholesky.js';
import { blockedCholeskySolve, Float64Gemm } from './blocked-cholesky.js';

/** The blocked solve's block size: the host factors and inverts blocks of this size. */
const CHOLESKY_BLOCK = 128;

export interface NormalEquationChunk {
  /** [d, d] XᵀX */
  readonly xtx: Float32Array;
  /** [d, d] XᵀY */
  readonly xty: Float32Array;
  /** [d] Σ rows of X, Σ rows of Y */
  readonly xSum: Float32Array;
  readonly ySum: Float32Array;
}

export class OnnxLeastSquares {
  readonly description: string;

  private constructor(
    private readonly products: ort.InferenceSession,
    private readonly residuals: ort.InferenceSession,
    private readonly gemm: Float64Gemm,
    private readonly d: number,
    provider: string,
    threads: number,
  ) {
    this.description = `onnxruntime ${provider}, ${threads} thread${threads === 1 ? '' : 's'}`;
  }

  /**
   * One per width, thread count and provider for the process: the graphs hold no weights and the
   * sessions no memory arena, so keeping them costs little and spares each fit ~8 session creations.
   */
  static shared(d: number, threads = defaultThreads()): Promise<OnnxLeastSquares> {
    const provider = process.env.STREAMLINE_ONNX_PROVIDER ?? defaultProvider();
    const key = `${d}:${threads}:${provider}`;
    let found = cache.get(key);
    if (!found) {
      found = OnnxLeastSquares.create(d, threads, provider);
      cache.set(key, found);
      found.catch(() => cache.delete(key));
    }
    return found;
  }

  private static async create(d: number, threads: number, provider: string): Promise<OnnxLeastSquares> {
    const options: ort.InferenceSession.SessionOptions = {
      executionProviders: [provider],
      graphOptimizationLevel: 'all',
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      logSeverityLevel: 3,
      enableCpuMemArena: false,
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    };

    const p = new OnnxGraph();
    const x = p.input('x', 'float', ['rows', d]);
    const y = p.input('y', 'float', ['rows', d]);
    const rows = p.int64([0]);
    p.output(p.op('Gemm', [x, x], { transA: 1 }), 'xtx', [d, d]);
    p.output(p.op('Gemm', [x, y], { transA: 1 }), 'xty', [d, d]);
    p.output(p.op('ReduceSum', [x, rows], { keepdims: 0 }), 'x_sum', [d]);
    p.output(p.op('ReduceSum', [y, rows], { keepdims: 0 }), 'y_sum', [d]);

    const r = new OnnxGraph();
    const rx = r.input('x', 'float', ['rows', d]);
    const ry = r.input('y', 'float', ['rows', d]);
    const weight = r.input('weight', 'float', [d, d]); // [in, out]
    const bias = r.input('bias', 'float', [d]);
    const predicted = r.op('Add', [r.op('MatMul', [rx, weight]), bias]);
    const difference = r.op('Sub', [predicted, ry]);
    r.output(r.op('ReduceSum', [r.op('Mul', [difference, difference])], { keepdims: 0 }), 'squared_error', []);
    const last = r.int64([-1]);
    const length = (t: string) => r.op('Sqrt', [r.op('ReduceSum', [r.op('Mul', [t, t]), last], { keepdims: 0 })]);
    const cosines = r.op('Div', [r.op('ReduceSum', [r.op('Mul', [predicted, ry]), last], { keepdims: 0 }), r.op('Max', [r.op('Mul', [length(predicted), length(ry)]), r.scalar(1e-12)])]);
    r.output(r.op('ReduceSum', [cosines], { keepdims: 0 }), 'cosine_sum', []);

    const [products, residuals] = await Promise.all([
      ort.InferenceSession.create(p.encode('normal-equations', 17), options),
      ort.InferenceSession.create(r.encode('linear-residuals', 17), options),
    ]);
    return new OnnxLeastSquares(products, residuals, new Float64Gemm(options), d, provider, threads);
  }

  /**
   * gram · A = cross for the ridge-regularised normal equations, in float64: blocked Cholesky with its
   * GEMMs in ORT; a system of one block (d < 128) on the host, where ORT's per-call cost would dominate.
   */
  async solve(gram: Float64Array, cross: Float64Array, n: number, m: number): Promise<Float64Array> {
    if (n <= CHOLESKY_BLOCK) return solveCholesky(gram, cross, n, m);
    return blockedCholeskySolve(gram, cross, n, m, this.gemm, CHOLESKY_BLOCK);
  }

  async normalEquations(x: Float32Array, y: Float32Array, rows: number): Promise<NormalEquationChunk> {
    const d = this.d;
    const out = await this.products.run({ x: new ort.Tensor('float32', x.subarray(0, rows * d), [rows, d]), y: new ort.Tensor('float32', y.subarray(0, rows * d), [rows, d]) });
    return { xtx: out.xtx.data as Float32Array, xty: out.xty.data as Float32Array, xSum: out.x_sum.data as Float32Array, ySum: out.y_sum.data as Float32Array };
  }

  /** Σ squared error and Σ cosine of x·W + b against y over `rows` rows; `weight` is [in, out]. */
  async residualSums(x: Float32Array, y: Float32Array, rows: number, weight: Float32Array, bias: Float32Array): Promise<{ squaredError: number; cosineSum: number }> {
    const d = this.d;
    const out = await this.residuals.run({
      x: new ort.Tensor('float32', x.subarray(0, rows * d), [rows, d]),
      y: new ort.Tensor('float32', y.subarray(0, rows * d), [rows, d]),
      weight: new ort.Tensor('float32', weight, [d, d]),
      bias: new ort.Tensor('float32', bias, [d]),
    });
    return { squaredError: (out.squared_error.data as Float32Array)[0], cosineSum: (out.cosine_sum.data as Float32Array)[0] };
  }

  /** Frees the sessions (releaseLeastSquaresSessions does it for the shared ones). */
  async release(): Promise<void> {
    await Promise.all([this.products.release(), this.residuals.release(), this.gemm.dispose()]);
  }

  /** Shared sessions stay for the next fit. */
  async dispose(): Promise<void> {}
}

const cache = new Map<string, Promise<OnnxLeastSquares>>();

export async function releaseLeastSquaresSessions(): Promise<void> {
  const all = [...cache.values()];
  cache.clear();
  for (const found of all) {
    const ls = await found.catch(() => null);
    if (ls) await ls.release();
  }
}
