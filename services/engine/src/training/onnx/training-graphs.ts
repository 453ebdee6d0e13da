/**
 * The ONNX graphs that train a replacement:
 *
 *   step      inputs x, target [B, T, d], mask [B, T, 1], loss_scale (1 / (real tokens · d)), attention_bias,
 *             rope_cos / rope_sin, param.<name> and acc.<name>; outputs loss (the masked MSE) and
 *             grad.<name> = acc.<name> + d loss / d param — gradient accumulation happens in the graph.
 *   evaluate  the same inputs without accumulators; outputs squared_error (Σ over real tokens) and
 *             cosine_sum (Σ over real tokens of cos(prediction, target)).
 *   adamw     param / m / v / grad (the accumulated sum) and the scalars grad_scale (1 / micro-batches),
 *             lr, correction1, correction2; outputs param_out / m_out / v_out and grad_norm — PyTorch's
 *             AdamW with clipping by global norm, as ../../pruning/adamw.ts computes it.
 *
 * Parameters are named as ../../pruning/replacement.ts names them; matrices are [in, out] (the layout the
 * tfjs trainer and the resumable checkpoints use).
 */
import type { LayerPart } from '../../models/architecture.js';
import type { LoadedModel } from '../../models/model.js';
import { relativeName, type TrainedKind } from '../../pruning/replacement.js';
import { DiffGraph, type FloatType } from './diff-graph.js';
import { attentionInputs, decoderLayer, ffnReplacement, mlpBlock, type DiffLayerContext } from './decoder-ops.js';

/** LayerNormalization-free graphs; opset 17 like the forward graph. */
export const TRAINING_OPSET = 17;

export type ParamShapes = ReadonlyMap<string, readonly number[]>;

export interface ReplacementGraphSpec {
  readonly kind: TrainedKind;
  readonly model: Pick<LoadedModel, 'config' | 'family'>;
  /** Trained layout ([in, out] matrices). */
  readonly shapes: ParamShapes;
  readonly elem?: FloatType;
}

/** The replacement's output on x; `ctx` when the graph already has its attention inputs (healing's does). */
export function replacementOutput(dg: DiffGraph, spec: ReplacementGraphSpec, x: string, param: (name: string) => string, shared?: DiffLayerContext): string {
  const { config, family } = spec.model;
  if (spec.kind === 'FFN') return ffnReplacement(dg, x, param, config);
  const ctx: DiffLayerContext = shared ?? { config, family, ...attentionInputs(dg, config, family) };
  const byPart = (part: LayerPart, kind: 'weight' | 'bias' = 'weight') => param(relativeName(family, part, kind));
  return spec.kind === 'SWIGLU' ? mlpBlock(dg, x, byPart, ctx) : decoderLayer(dg, x, byPart, ctx);
}

export function commonInputs(dg: DiffGraph, spec: ReplacementGraphSpec) {
  const d = spec.model.config.hiddenSize;
  const x = dg.input('x', ['batch', 'seq', d]);
  const target = dg.input('target', ['batch', 'seq', d]);
  const mask = dg.input('mask', ['batch', 'seq', 1]);
  const params = new Map<string, string>();
  for (const [name, shape] of spec.shapes) params.set(name, dg.param(`param.${name}`, [...shape]));
  const param = (name: string) => {
    const value = params.get(name);
    if (!value) throw new Error(`the ${spec.kind} replacement has no parameter ${name}`);
    return value;
  };
  return { x, target, mask, params, param };
}

/** Forward, loss, backward and accumulation for one micro-batch. */
export function buildStepGraph(spec: ReplacementGraphSpec): Uint8Array {
  const elem = spec.elem ?? 'float';
  const dg = new DiffGraph(elem);
  const { x, target, mask, params, param } = commonInputs(dg, spec);
  const lossScale = dg.input('loss_scale', []);
  const prediction = replacementOutput(dg, spec, x, param);
  const loss = dg.maskedSquaredError(prediction, target, mask, lossScale);
  const grads = dg.gradients(loss, [...params.values()]);
  dg.g.output(loss, 'loss', [], elem);
  for (const [name, value] of params) {
    const accumulator = dg.input(`acc.${name}`, [...spec.shapes.get(name)!]);
    dg.g.output(dg.g.op('Add', [accumulator, grads.get(value)!]), `grad.${name}`, [...spec.shapes.get(name)!], elem);
  }
  return dg.g.encode(`${spec.kind.toLowerCase()}-train-step`, TRAINING_OPSET);
}

/** Forward only: the validation sums. */
export function buildEvaluateGraph(spec: ReplacementGraphSpec): Uint8Array {
  const elem = spec.elem ?? 'float';
  const dg = new DiffGraph(elem);
  const { x, target, mask, param } = commonInputs(dg, spec);
  const prediction = replacementOutput(dg, spec, x, param);
  const g = dg.g;
  const difference = g.op('Sub', [prediction, target]);
  g.output(g.op('ReduceSum', [g.op('Mul', [g.op('Mul', [difference, difference]), mask])], { keepdims: 0 }), 'squared_error', [], elem);
  const length = (t: string) => g.op('Sqrt', [g.op('ReduceSum', [g.op('Mul', [t, t]), g.int64([-1])], { keepdims: 1 })]);
  const dot = g.op('ReduceSum', [g.op('Mul', [prediction, target]), g.int64([-1])], { keepdims: 1 });
  const cosine = g.op('Div', [dot, g.op('Max', [g.op('Mul', [length(prediction), length(target)]), dg.scalar(1e-12)])]);
  g.output(g.op('ReduceSum', [g.op('Mul', [cosine, mask])], { keepdims: 0 }), 'cosine_sum', [], elem);
  return g.encode(`${spec.kind.toLowerCase()}-evaluate`, TRAINING_OPSET);
}

export interface AdamWGraphSettings {
  readonly weightDecay: number;
  readonly gradClip: number;
  readonly beta1?: number;
  readonly beta2?: number;
  readonly epsilon?: number;
}

/** One AdamW update of every parameter, with the global-norm clip computed in the graph. */
export function buildAdamWGraph(shapes: ParamShapes, settings: AdamWGraphSettings): Uint8Array {
  const dg = new DiffGraph('float');
  const g = dg.g;
  const beta1 = settings.beta1 ?? 0.9;
  const beta2 = settings.beta2 ?? 0.999;
  const epsilon = settings.epsilon ?? 1e-8;
  const gradScale = g.input('grad_scale', 'float', []);
  const lr = g.input('lr', 'float', []);
  const correction1 = g.input('correction1', 'float', []);
  const correction2 = g.input('correction2', 'float', []);
  const averaged = new Map<string, string>();
  for (const [name, shape] of shapes) averaged.set(name, g.op('Mul', [g.input(`grad.${name}`, 'float', [...shape]), gradScale]));
  const squares = [...averaged.values()].map((grad) => g.op('ReduceSum', [g.op('Mul', [grad, grad])], { keepdims: 0 }));
  const norm = g.op('Sqrt', [squares.length > 1 ? g.op('Sum', squares) : squares[0]]);
  g.output(norm, 'grad_norm', []);
  const clip = dg.scalar(settings.gradClip);
  const clipScale =
    settings.gradClip > 0 ? g.op('Where', [g.op('Greater', [norm, clip]), g.op('Div', [clip, g.op('Add', [norm, dg.scalar(1e-6)])]), dg.scalar(1)]) : dg.scalar(1);
  const decay = g.op('Sub', [dg.scalar(1), g.op('Mul', [lr, dg.scalar(settings.weightDecay)])]);
  for (const [name, shape] of shapes) {
    const p = g.input(`param.${name}`, 'float', [...shape]);
    const m = g.input(`m.${name}`, 'float', [...shape]);
    const v = g.input(`v.${name}`, 'float', [...shape]);
    const clipped = g.op('Mul', [averaged.get(name)!, clipScale]);
    const mNext = g.op('Add', [g.op('Mul', [m, dg.scalar(beta1)]), g.op('Mul', [clipped, dg.scalar(1 - beta1)])]);
    const vNext = g.op('Add', [g.op('Mul', [v, dg.scalar(beta2)]), g.op('Mul', [g.op('Mul', [clipped, clipped]), dg.scalar(1 - beta2)])]);
    const update = g.op('Div', [g.op('Div', [mNext, correction1]), g.op('Add', [g.op('Sqrt', [g.op('Div', [vNext, correction2])]), dg.scalar(epsilon)])]);
    g.output(g.op('Sub', [g.op('Mul', [p, decay]), g.op('Mul', [update, lr])]), `param_out.${name}`, [...shape]);
    g.output(mNext, `m_out.${name}`, [...shape]);
    g.output(vNext, `v_out.${name}`, [...shape]);
  }
  return g.encode('adamw', TRAINING_OPSET);
}
