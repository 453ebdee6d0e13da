/**
 * Reverse-mode differentiation of ONNX graphs, built symbolically: every differentiable op emits its
 * forward nodes and records a backward rule that emits the nodes of its input gradients. `gradients()`
 * walks the tape backwards from a loss and returns, for each requested value, the name of a graph value
 * holding d loss / d value — so one ONNX graph computes the forward pass and the backward pass, and ONNX
 * Runtime runs both with its own kernels (MLAS GEMMs on every core, cuBLAS on the CUDA provider).
 *
 * Only values that depend on something marked trainable (`param`, or `input(..., { grad: true })`) get
 * gradients; rules skip the input gradients nobody needs (the data's, a frozen weight's).
 *
 * The ops here are the primitives the decoder families need — matmul/linear, add, mul, RMSNorm and
 * LayerNorm, rotate-half RoPE, causal grouped-query attention with softmax, SiLU / GELU / ReLU, reshape
 * and transpose, and the losses (masked MSE, cross-entropy, KL) — at the granularity that keeps the
 * backward pass as a few large GEMMs. decoder-ops.ts composes them into layers from the architecture table.
 */
import { OnnxGraph, type Dim } from '../../runtime/onnx/onnx-graph.js';

export type FloatType = 'float' | 'double';

/** d loss / d output (null: the output does not reach the loss) → d loss / d input, for inputs that `need` one. */
type BackwardRule = (outputGrads: (string | null)[], need: boolean[]) => (string | null)[];

interface TapeEntry {
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly backward: BackwardRule;
}

export class DiffGraph {
  readonly g = new OnnxGraph();
  private readonly tape: TapeEntry[] = [];
  private readonly trainable = new Set<string>();

  constructor(readonly elem: FloatType = 'float') {}

  /** A trainable graph input: gradients flow to it. */
  param(name: string, dims: Dim[]): string {
    this.g.input(name, this.elem, dims);
    this.trainable.add(name);
    return name;
  }

  /** A float graph input; `grad: true` makes it differentiable too (a hidden state to backpropagate into). */
  input(name: string, dims: Dim[], options: { grad?: boolean } = {}): string {
    this.g.input(name, this.elem, dims);
    if (options.grad) this.trainable.add(name);
    return name;
  }

  scalar(value: number): string {
    return this.g.scalar(value, this.elem);
  }

  /** Does `value` depend on a trainable input? */
  needsGrad(value: string): boolean {
    return this.trainable.has(value);
  }

  /** Records an op whose outputs are `outputs`; `backward` runs only if one of `inputs` needs a gradient. */
  record(inputs: string[], outputs: string[], backward: BackwardRule): void {
    if (!inputs.some((input) => this.trainable.has(input))) return;
    outputs.forEach((output) => this.trainable.add(output));
    this.tape.push({ inputs, outputs, backward });
  }

  /** Gradients of `loss` (a scalar) with respect to `wrt`; `seed` is d(objective)/d(loss), default 1. */
  gradients(loss: string, wrt: readonly string[], seed?: string): Map<string, string> {
    const grads = new Map<string, string>();
    grads.set(loss, seed ?? this.scalar(1));
    for (let i = this.tape.length - 1; i >= 0; i--) {
      const entry = this.tape[i];
      const outputGrads = entry.outputs.map((output) => grads.get(output) ?? null);
      if (outputGrads.every((grad) => grad === null)) continue;
      const need = entry.inputs.map((input) => this.trainable.has(input));
      const inputGrads = entry.backward(outputGrads, need);
      entry.inputs.forEach((input, k) => {
        const grad = inputGrads[k];
        if (!need[k] || grad === null) return;
        const previous = grads.get(input);
        grads.set(input, previous ? this.g.op('Add', [previous, grad]) : grad);
      });
    }
    const result = new Map<string, string>();
    for (const name of wrt) {
      const grad = grads.get(name);
      if (!grad) throw new Error(`no gradient reaches ${name}: it does not influence the loss`);
      result.set(name, grad);
    }
    return result;
  }

  // ---- primitives -------------------------------------------------------------------------------------

  /** a + b, same shapes (a residual). */
  add(a: string, b: string): string {
    const y = this.g.op('Add', [a, b]);
    this.record([a, b], [y], ([dy], need) => [need[0] ? dy : null, need[1] ? dy : null]);
    return y;
  }

  /** a · b elementwise, same shapes (a gate). */
  mul(a: string, b: string): string {
    const y = this.g.op('Mul', [a, b]);
    this.record([a, b], [y], ([dy], need) => [need[0] ? this.g.op('Mul', [dy!, b]) : null, need[1] ? this.g.op('Mul', [dy!, a]) : null]);
    return y;
  }

  /** a · c for a constant scalar c. */
  scale(a: string, c: number): string {
    const factor = this.scalar(c);
    const y = this.g.op('Mul', [a, factor]);
    this.record([a], [y], ([dy]) => [this.g.op('Mul', [dy!, factor])]);
    return y;
  }

  /**
   * x [..., in] · W [in, out] (+ b [out]): the dense layer. Gradients as 2-D GEMMs over all rows:
   * dx = dy Wᵀ, dW = xᵀ dy, db = Σ_rows dy.
   */
  linear(x: string, weight: string, bias: string | null, inDim: number, outDim: number): string {
    let y = this.g.op('MatMul', [x, weight]);
    if (bias) y = this.g.op('Add', [y, bias]);
    const inputs = bias ? [x, weight, bias] : [x, weight];
    this.record(inputs, [y], ([dy], need) => {
      const dy2 = this.g.op('Reshape', [dy!, this.g.int64([-1, outDim])]);
      const dx = need[0] ? this.g.op('Reshape', [this.g.op('Gemm', [dy2, weight], { transB: 1 }), this.g.op('Shape', [x])]) : null;
      const dW = need[1] ? this.g.op('Gemm', [this.g.op('Reshape', [x, this.g.int64([-1, inDim])]), dy2], { transA: 1 }) : null;
      const db = bias && need[2] ? this.g.op('ReduceSum', [dy2, this.g.int64([0])], { keepdims: 0 }) : null;
      return bias ? [dx, dW, db] : [dx, dW];
    });
    return y;
  }

  /** Batched a · b (rank ≥ 3, equal batch dims); `transB` multiplies by bᵀ of the last two axes. */
  matmul(a: string, b: string, rank: number, options: { transB?: boolean } = {}): string {
    const swap = swapLastTwo(rank);
    const right = options.transB ? this.g.op('Transpose', [b], { perm: swap }) : b;
    const y = this.g.op('MatMul', [a, right]);
    this.record([a, b], [y], ([dy], need) => {
      const da = need[0] ? this.g.op('MatMul', [dy!, this.g.op('Transpose', [right], { perm: swap })]) : null;
      // d(right) = aᵀ dy; with transB, d(b) = (aᵀ dy)ᵀ = dyᵀ a.
      const db = need[1]
        ? options.transB
          ? this.g.op('MatMul', [this.g.op('Transpose', [dy!], { perm: swap }), a])
          : this.g.op('MatMul', [this.g.op('Transpose', [a], { perm: swap }), dy!])
        : null;
      return [da, db];
    });
    return y;
  }

  reshape(x: string, shape: number[]): string {
    const y = this.g.op('Reshape', [x, this.g.int64(shape)]);
    this.record([x], [y], ([dy]) => [this.g.op('Reshape', [dy!, this.g.op('Shape', [x])])]);
    return y;
  }

  transpose(x: string, perm: number[]): string {
    const y = this.g.op('Transpose', [x], { perm });
    const inverse = perm.map((_, i) => perm.indexOf(i));
    this.record([x], [y], ([dy]) => [this.g.op('Transpose', [dy!], { perm: inverse })]);
    return y;
  }

  silu(x: string): string {
    const s = this.g.op('Sigmoid', [x]);
    const y = this.g.op('Mul', [x, s]);
    // d silu = s · (1 + x · (1 − s))
    this.record([x], [y], ([dy]) => {
      const one = this.scalar(1);
      const slope = this.g.op('Mul', [s, this.g.op('Add', [one, this.g.op('Mul', [x, this.g.op('Sub', [one, s])])])]);
      return [this.g.op('Mul', [dy!, slope])];
    });
    return y;
  }

  relu(x: string): string {
    const y = this.g.op('Relu', [x]);
    this.record([x], [y], ([dy]) => [this.g.op('Where', [this.g.op('Greater', [x, this.scalar(0)]), dy!, this.scalar(0)])]);
    return y;
  }

  /** Exact (erf) GELU. Float32 only on ORT's CPU provider (it has no float64 Erf). */
  gelu(x: string): string {
    const half = this.scalar(0.5);
    const one = this.scalar(1);
    const cdf = this.g.op('Mul', [half, this.g.op('Add', [one, this.g.op('Erf', [this.g.op('Mul', [x, this.scalar(Math.SQRT1_2)])])])]);
    const y = this.g.op('Mul', [x, cdf]);
    // d gelu = Φ(x) + x · φ(x)
    this.record([x], [y], ([dy]) => {
      const pdf = this.g.op('Mul', [this.scalar(1 / Math.sqrt(2 * Math.PI)), this.g.op('Exp', [this.g.op('Mul', [this.scalar(-0.5), this.g.op('Mul', [x, x])])])]);
      return [this.g.op('Mul', [dy!, this.g.op('Add', [cdf, this.g.op('Mul', [x, pdf])])])];
    });
    return y;
  }

  /**
   * RMSNorm over the last axis (width `dim`), written as the forward graph writes it (x / sqrt(mean(x²) + ε) · w).
   * dx = (dn − n · mean(dn · n)) / rms with dn = dy · w; dw = Σ_rows dy · n.
   */
  rmsNorm(x: string, weight: string, eps: number, dim: number): string {
    const rms = this.g.op('Sqrt', [this.g.op('Add', [this.g.op('ReduceMean', [this.g.op('Mul', [x, x])], { axes: [-1], keepdims: 1 }), this.scalar(eps)])]);
    const normalized = this.g.op('Div', [x, rms]);
    const y = this.g.op('Mul', [normalized, weight]);
    this.record([x, weight], [y], ([dy], need) => {
      const dn = this.g.op('Mul', [dy!, weight]);
      const dx = need[0]
        ? this.g.op('Div', [this.g.op('Sub', [dn, this.g.op('Mul', [normalized, this.g.op('ReduceMean', [this.g.op('Mul', [dn, normalized])], { axes: [-1], keepdims: 1 })])]), rms])
        : null;
      const dw = need[1] ? this.sumRows(this.g.op('Mul', [dy!, normalized]), dim) : null;
      return [dx, dw];
    });
    return y;
  }

  /**
   * LayerNorm over the last axis with weight and bias.
   * dx = (dn − mean(dn) − n · mean(dn · n)) / std; dw = Σ_rows dy · n; db = Σ_rows dy.
   */
  layerNorm(x: string, weight: string, bias: string, eps: number, dim: number): string {
    const centered = this.g.op('Sub', [x, this.g.op('ReduceMean', [x], { axes: [-1], keepdims: 1 })]);
    const std = this.g.op('Sqrt', [this.g.op('Add', [this.g.op('ReduceMean', [this.g.op('Mul', [centered, centered])], { axes: [-1], keepdims: 1 }), this.scalar(eps)])]);
    const normalized = this.g.op('Div', [centered, std]);
    const y = this.g.op('Add', [this.g.op('Mul', [normalized, weight]), bias]);
    this.record([x, weight, bias], [y], ([dy], need) => {
      const dn = this.g.op('Mul', [dy!, weight]);
      const mean = (t: string) => this.g.op('ReduceMean', [t], { axes: [-1], keepdims: 1 });
      const dx = need[0]
        ? this.g.op('Div', [this.g.op('Sub', [this.g.op('Sub', [dn, mean(dn)]), this.g.op('Mul', [normalized, mean(this.g.op('Mul', [dn, normalized]))])]), std])
        : null;
      return [dx, need[1] ? this.sumRows(this.g.op('Mul', [dy!, normalized]), dim) : null, need[2] ? this.sumRows(dy!, dim) : null];
    });
    return y;
  }

  /**
   * Rotate-half RoPE on x [..., T, headDim] with tables cos, sin [T, headDim]: y = x·cos + rot(x)·sin with
   * rot(x) = [−x₂, x₁]. Its transpose: dx = dy·cos + rotᵀ(dy·sin), rotᵀ(u) = [u₂, −u₁].
   */
  rope(x: string, cos: string, sin: string): string {
    const [first, second] = this.g.opMulti('Split', [x], { axis: -1 }, 2);
    const rotated = this.g.op('Concat', [this.g.op('Neg', [second]), first], { axis: -1 });
    const y = this.g.op('Add', [this.g.op('Mul', [x, cos]), this.g.op('Mul', [rotated, sin])]);
    this.record([x], [y], ([dy]) => {
      const [u1, u2] = this.g.opMulti('Split', [this.g.op('Mul', [dy!, sin])], { axis: -1 }, 2);
      return [this.g.op('Add', [this.g.op('Mul', [dy!, cos]), this.g.op('Concat', [u2, this.g.op('Neg', [u1])], { axis: -1 })])];
    });
    return y;
  }

  /**
   * Scaled dot-product attention, rank 4: q [B, Hkv, group·T, hd] (a KV head's queries stacked along time),
   * k, v [B, Hkv, T, hd], an additive bias [B, 1, group·T, T] (causal, padding, window). P = softmax(q kᵀ·s + bias),
   * out = P v. Backward: dv = Pᵀ dout; dP = dout vᵀ; dS = P ⊙ (dP − Σ_j dP ⊙ P); dq = dS k·s; dk = dSᵀ q·s.
   */
  attention(q: string, k: string, v: string, bias: string, scale: number): string {
    const s = this.scalar(scale);
    const swap = [0, 1, 3, 2];
    const scores = this.g.op('Add', [this.g.op('Mul', [this.g.op('MatMul', [q, this.g.op('Transpose', [k], { perm: swap })]), s]), bias]);
    const probabilities = this.g.op('Softmax', [scores], { axis: -1 });
    const y = this.g.op('MatMul', [probabilities, v]);
    this.record([q, k, v], [y], ([dy], need) => {
      const dv = need[2] ? this.g.op('MatMul', [this.g.op('Transpose', [probabilities], { perm: swap }), dy!]) : null;
      const dp = this.g.op('MatMul', [dy!, this.g.op('Transpose', [v], { perm: swap })]);
      const rowDot = this.g.op('ReduceSum', [this.g.op('Mul', [dp, probabilities]), this.g.int64([-1])], { keepdims: 1 });
      const dScores = this.g.op('Mul', [this.g.op('Mul', [probabilities, this.g.op('Sub', [dp, rowDot])]), s]);
      const dq = need[0] ? this.g.op('MatMul', [dScores, k]) : null;
      const dk = need[1] ? this.g.op('MatMul', [this.g.op('Transpose', [dScores], { perm: swap }), q]) : null;
      return [dq, dk, dv];
    });
    return y;
  }

  // ---- losses (scalars) ----------------------------------------------------------------------------

  /** Σ mask · (prediction − target)² · scale; mask [.., 1] broadcasts over the last axis, scale is a scalar input. */
  maskedSquaredError(prediction: string, target: string, mask: string, scale: string): string {
    const difference = this.g.op('Sub', [prediction, target]);
    const masked = this.g.op('Mul', [difference, mask]);
    const loss = this.g.op('Mul', [this.g.op('ReduceSum', [this.g.op('Mul', [masked, difference])], { keepdims: 0 }), scale]);
    this.record([prediction], [loss], ([dl]) => [this.g.op('Mul', [masked, this.g.op('Mul', [dl!, this.g.op('Mul', [scale, this.scalar(2)])])])]);
    return loss;
  }

  /**
   * Σ_rows weight · (−log softmax(logits)[label]) · scale: next-token cross-entropy; logits [N, V], labels [N] int64,
   * weight [N] (0 for padding), scale a scalar input (1 / real tokens). d logits = (softmax − onehot) · weight · scale.
   */
  crossEntropy(logits: string, labels: string, weight: string, scale: string, vocab: number): string {
    const logProbabilities = this.g.op('LogSoftmax', [logits], { axis: -1 });
    const onehot = this.oneHot(labels, vocab);
    const picked = this.g.op('ReduceSum', [this.g.op('Mul', [logProbabilities, onehot]), this.g.int64([-1])], { keepdims: 0 });
    const loss = this.g.op('Mul', [this.g.op('Neg', [this.g.op('ReduceSum', [this.g.op('Mul', [picked, weight])], { keepdims: 0 })]), scale]);
    this.record([logits], [loss], ([dl]) => {
      const rowScale = this.g.op('Unsqueeze', [this.g.op('Mul', [weight, this.g.op('Mul', [dl!, scale])]), this.g.int64([-1])]);
      return [this.g.op('Mul', [this.g.op('Sub', [this.g.op('Exp', [logProbabilities]), onehot]), rowScale])];
    });
    return loss;
  }

  /**
   * Σ_rows weight · KL(p_teacher ‖ softmax(logits)) · scale, teacher given as log-probabilities [N, V] (a constant).
   * d logits = (softmax(logits) − p_teacher) · weight · scale.
   */
  klDivergence(logits: string, teacherLogProbabilities: string, weight: string, scale: string): string {
    const logProbabilities = this.g.op('LogSoftmax', [logits], { axis: -1 });
    const teacher = this.g.op('Exp', [teacherLogProbabilities]);
    const perRow = this.g.op('ReduceSum', [this.g.op('Mul', [teacher, this.g.op('Sub', [teacherLogProbabilities, logProbabilities])]), this.g.int64([-1])], { keepdims: 0 });
    const loss = this.g.op('Mul', [this.g.op('ReduceSum', [this.g.op('Mul', [perRow, weight])], { keepdims: 0 }), scale]);
    this.record([logits], [loss], ([dl]) => {
      const rowScale = this.g.op('Unsqueeze', [this.g.op('Mul', [weight, this.g.op('Mul', [dl!, scale])]), this.g.int64([-1])]);
      return [this.g.op('Mul', [this.g.op('Sub', [this.g.op('Exp', [logProbabilities]), teacher]), rowScale])];
    });
    return loss;
  }

  // ---- helpers ---------------------------------------------------------------------------------------

  /** Σ over every axis but the last: [.., n] → [n]. */
  private sumRows(t: string, dim: number): string {
    return this.g.op('ReduceSum', [this.g.op('Reshape', [t, this.g.int64([-1, dim])]), this.g.int64([0])], { keepdims: 0 });
  }

  /** [N] int64 → [N, vocab] of 0/1 (ORT's CPU OneHot has no float64 kernel, so Equal against 0..vocab-1). */
  private oneHot(labels: string, vocab: number): string {
    const ids = this.g.int64(Array.from({ length: vocab }, (_, i) => i));
    const equal = this.g.op('Equal', [this.g.op('Unsqueeze', [labels, this.g.int64([-1])]), ids]);
    return this.g.op('Cast', [equal], { to: this.elem === 'float' ? 1 : 11 });
  }
}

function swapLastTwo(rank: number): number[] {
  const perm = [...Array(rank).keys()];
  [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1], perm[rank - 2]];
  return perm;
}
