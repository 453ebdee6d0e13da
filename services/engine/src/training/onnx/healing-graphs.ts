/**
 * The ONNX graphs that heal a replacement by distillation: the pruned model's next-token distribution
 * pulled towards the original's, KL(original ‖ pruned) over real tokens, with gradients reaching only the
 * replacement's parameters.
 *
 *   step      inputs x = h[s] and target = h[s+n] [B, T, d], mask [B, T, 1], loss_scale (1 / real tokens),
 *             attention_bias, rope_cos / rope_sin, param.<name> / acc.<name> as in training-graphs.ts, and
 *             frozen.<weight> — the layers after the block, the final norm and the LM head (matrices
 *             [in, out]); outputs loss (the mean KL) and grad.<name> = acc.<name> + d loss / d param.
 *   evaluate  the same inputs without accumulators; output kl_sum (Σ over real tokens, loss_scale 1).
 *
 * Both models share everything before the block, so h[s] is the pruned model's input to the replacement
 * and h[s+n] is the original's state after the block: the original's logits are the frozen tail run on
 * h[s+n] inside the same graph (no gradient: it depends on nothing trainable), and the pruned model's are
 * the tail run on the replacement's output. Nothing of vocabulary size is stored between steps.
 */
import { hasBias, layerWeightName, type LayerPart } from '../../models/architecture.js';
import { DiffGraph } from './diff-graph.js';
import { attentionInputs, decoderLayer, lmHead, type DiffLayerContext } from './decoder-ops.js';
import { commonInputs, replacementOutput, TRAINING_OPSET, type ParamShapes, type ReplacementGraphSpec } from './training-graphs.js';

export interface HealingGraphSpec extends ReplacementGraphSpec {
  /** 0-based indices (in the original model) of the layers after the replaced block. */
  readonly tailLayers: readonly number[];
  /** Every frozen tensor the graph reads (frozenWeightNames), as fed: matrices [in, out]. */
  readonly frozenShapes: ParamShapes;
}

/** The model's tensors the healing graphs read: the tail layers, the final norm and the LM head. */
export function frozenWeightNames(spec: Pick<HealingGraphSpec, 'model' | 'tailLayers'>): string[] {
  const { family, config } = spec.model;
  const names: string[] = [];
  for (const layer of spec.tailLayers) {
    for (const part of Object.keys(family.weights.layer) as LayerPart[]) {
      if (family.weights.layer[part] === null) continue;
      names.push(layerWeightName(family, layer, part));
      if (hasBias(family, config, part)) names.push(layerWeightName(family, layer, part, 'bias'));
    }
  }
  names.push(`${family.weights.finalNorm}.weight`);
  if (family.norm === 'layernorm') names.push(`${family.weights.finalNorm}.bias`);
  names.push(headWeightName(spec.model));
  return names;
}

export function headWeightName(model: HealingGraphSpec['model']): string {
  return model.config.tieWordEmbeddings ? model.family.weights.embedTokens : model.family.weights.lmHead;
}

/** Logits [B·T, V] of the frozen tail (layers, final norm, LM head) on hidden states [B, T, d]. */
function tailLogits(dg: DiffGraph, spec: HealingGraphSpec, ctx: DiffLayerContext, hidden: string, frozen: (name: string) => string): string {
  const { family } = spec.model;
  let h = hidden;
  for (const layer of spec.tailLayers) h = decoderLayer(dg, h, (part, kind = 'weight') => frozen(layerWeightName(family, layer, part, kind)), ctx);
  const finalNorm = family.weights.finalNorm;
  const logits = lmHead(dg, h, ctx, frozen(`${finalNorm}.weight`), family.norm === 'layernorm' ? frozen(`${finalNorm}.bias`) : null, frozen(headWeightName(spec.model)));
  return dg.reshape(logits, [-1, spec.model.config.vocabSize]);
}

function healingGraph(spec: HealingGraphSpec, withGradients: boolean): Uint8Array {
  const elem = spec.elem ?? 'float';
  const dg = new DiffGraph(elem);
  const { x, target, mask, params, param } = commonInputs(dg, spec);
  const lossScale = dg.input('loss_scale', []);
  const frozenInputs = new Map<string, string>();
  for (const [name, shape] of spec.frozenShapes) frozenInputs.set(name, dg.input(`frozen.${name}`, [...shape]));
  const frozen = (name: string) => {
    const value = frozenInputs.get(name);
    if (!value) throw new Error(`the healing graph was not given the frozen tensor ${name}`);
    return value;
  };
  const { config, family } = spec.model;
  const ctx: DiffLayerContext = { config, family, ...attentionInputs(dg, config, family) };
  const teacher = dg.g.op('LogSoftmax', [tailLogits(dg, spec, ctx, target, frozen)], { axis: -1 });
  const student = tailLogits(dg, spec, ctx, replacementOutput(dg, spec, x, param, ctx), frozen);
  const rowWeight = dg.g.op('Reshape', [mask, dg.g.int64([-1])]);
  const loss = dg.klDivergence(student, teacher, rowWeight, lossScale);
  if (!withGradients) {
    dg.g.output(loss, 'kl_sum', [], elem);
    return dg.g.encode(`${spec.kind.toLowerCase()}-healing-evaluate`, TRAINING_OPSET);
  }
  const grads = dg.gradients(loss, [...params.values()]);
  dg.g.output(loss, 'loss', [], elem);
  for (const [name, value] of params) {
    const shape = [...spec.shapes.get(name)!];
    dg.g.output(dg.g.op('Add', [dg.input(`acc.${name}`, shape), grads.get(value)!]), `grad.${name}`, shape, elem);
  }
  return dg.g.encode(`${spec.kind.toLowerCase()}-healing-step`, TRAINING_OPSET);
}

/** Forward (teacher and student), KL, backward into the replacement and accumulation for one micro-batch. */
export function buildHealingStepGraph(spec: HealingGraphSpec): Uint8Array {
  return healingGraph(spec, true);
}

/** Forward only: the validation KL sum. */
export function buildHealingEvaluateGraph(spec: HealingGraphSpec): Uint8Array {
  return healingGraph(spec, false);
}
