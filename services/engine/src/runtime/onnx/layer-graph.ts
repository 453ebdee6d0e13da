/**
 * ONNX graphs for the layer-streamed forward pass (./streamed-forward.ts): one decoder layer, the final
 * norm with the LM head, and an inserted LINEAR/FFN replacement — each with its weights as graph
 * *inputs*, so that one session per graph serves every layer of a pass (the weights are fed with each
 * run) and nothing of the model is copied into a graph. Linear weights are fed in their stored
 * Hugging Face layout [out, in] and multiplied transposed (com.microsoft FusedMatMul, transB), so the host
 * never transposes them. The computation is ./decoder-graph.ts's, node for node.
 */
import { hasBias, type ArchitectureFamily, type LayerPart, type ModelConfig } from '../../models/architecture.js';
import type { InsertedKind } from '../../models/inserted-module.js';
import { attention, biasForStackedScores, mlpActivation, norm, rotateHalf, splitHeads } from './decoder-ops.js';
import { OnnxGraph } from './onnx-graph.js';
import { OPSET } from './decoder-graph.js';

/** A weight input of a layer graph: the graph input name and the tensor it is fed from. */
export interface WeightInput {
  readonly input: string;
  /** The tensor's name relative to the layer prefix (decoder layer), or its full name (head, inserted). */
  readonly tensor: string;
}

export interface LayerGraph {
  readonly bytes: Uint8Array;
  readonly weights: readonly WeightInput[];
}

const PARTS: readonly LayerPart[] = ['attentionNorm', 'q', 'k', 'v', 'o', 'mlpNorm', 'gate', 'up', 'down'];

/** x·Wᵀ (+ b) with W fed as [out, in]. */
function linearT(g: OnnxGraph, x: string, weight: string, bias: string | null): string {
  const y = g.op('FusedMatMul', [x, weight], { transB: 1, alpha: 1 }, 1, 'com.microsoft');
  return bias ? g.op('Add', [y, bias]) : y;
}

/**
 * One decoder layer: hidden [B, T, d] → hidden_out [B, T, d]. With `weightType` 'float16' the weights are
 * fed as float16 and cast to float32 inside the graph, where they are used: an F16 model's weights stay
 * narrow up to the execution provider (on CUDA, on the GPU).
 */
export function buildLayerGraph(family: ArchitectureFamily, config: ModelConfig, weightType: 'float' | 'float16' = 'float'): LayerGraph {
  const g = new OnnxGraph();
  const H = config.numAttentionHeads;
  const Hkv = config.numKeyValueHeads;
  const hd = config.headDim;
  const d = config.hiddenSize;
  const weights: WeightInput[] = [];
  const names = family.weights.layer;
  const input = (part: LayerPart, kind: 'weight' | 'bias', dims: (number | string)[]) => {
    const tensor = `${names[part]}.${kind}`;
    const name = g.input(`${part}.${kind}`, weightType, dims);
    weights.push({ input: name, tensor });
    return weightType === 'float' ? name : g.op('Cast', [name], { to: 1 }); // 1 = FLOAT
  };
  const w: Partial<Record<LayerPart, { weight: string; bias: string | null }>> = {};
  for (const part of PARTS) {
    if (names[part] === null) continue;
    const vector = part === 'attentionNorm' || part === 'mlpNorm';
    w[part] = {
      weight: input(part, 'weight', vector ? [d] : [`${part}_out`, `${part}_in`]),
      bias: hasBias(family, config, part) ? input(part, 'bias', [vector ? d : `${part}_out`]) : null,
    };
  }

  const x0 = g.input('hidden', 'float', ['batch', 'seq', d]);
  const bias = g.input('attention_bias', 'float', ['batch', 1, 'seq', 'seq']);
  const rope = family.positions === 'rope';
  const cos = rope ? g.input('rope_cos', 'float', ['seq', hd]) : '';
  const sin = rope ? g.input('rope_sin', 'float', ['seq', hd]) : '';
  const stackedBias = biasForStackedScores(g, config, bias);

  const h = norm(g, family, config, x0, w.attentionNorm!.weight, w.attentionNorm!.bias);
  let q = splitHeads(g, linearT(g, h, w.q!.weight, w.q!.bias), H, hd);
  let k = splitHeads(g, linearT(g, h, w.k!.weight, w.k!.bias), Hkv, hd);
  const v = splitHeads(g, linearT(g, h, w.v!.weight, w.v!.bias), Hkv, hd);
  if (rope) {
    q = rotateHalf(g, q, cos, sin);
    k = rotateHalf(g, k, cos, sin);
  }
  const merged = attention(g, config, q, k, v, stackedBias);
  const x1 = g.op('Add', [x0, linearT(g, merged, w.o!.weight, w.o!.bias)]);

  const m = norm(g, family, config, x1, w.mlpNorm!.weight, w.mlpNorm!.bias);
  const gate = family.mlp === 'gated' ? linearT(g, m, w.gate!.weight, w.gate!.bias) : null;
  const activated = mlpActivation(g, family, gate, linearT(g, m, w.up!.weight, w.up!.bias));
  const x2 = g.op('Add', [x1, linearT(g, activated, w.down!.weight, w.down!.bias)]);
  g.output(x2, 'hidden_out', ['batch', 'seq', d]);
  return { bytes: g.encode(`${family.modelType}-layer`, OPSET), weights };
}

/** Final norm and LM head: hidden [B, T, d] → logits [B, T, vocab]. */
export function buildHeadGraph(family: ArchitectureFamily, config: ModelConfig): LayerGraph {
  const g = new OnnxGraph();
  const d = config.hiddenSize;
  const weights: WeightInput[] = [];
  const input = (name: string, tensor: string, dims: (number | string)[]) => {
    weights.push({ input: g.input(name, 'float', dims), tensor });
    return name;
  };
  const normWeight = input('norm.weight', `${family.weights.finalNorm}.weight`, [d]);
  const normBias = family.norm === 'layernorm' ? input('norm.bias', `${family.weights.finalNorm}.bias`, [d]) : null;
  const head = input('head.weight', config.tieWordEmbeddings ? family.weights.embedTokens : family.weights.lmHead, [config.vocabSize, d]);
  const x = g.input('hidden', 'float', ['batch', 'seq', d]);
  g.output(linearT(g, norm(g, family, config, x, normWeight, normBias), head, null), 'logits', ['batch', 'seq', config.vocabSize]);
  return { bytes: g.encode(`${family.modelType}-head`, OPSET), weights };
}

/** A LINEAR or FFN replacement on the residual stream (see ../tfjs/inserted-forward.ts). */
export function buildInsertedGraph(kind: InsertedKind, config: ModelConfig): LayerGraph {
  const g = new OnnxGraph();
  const d = config.hiddenSize;
  const weights: WeightInput[] = [];
  const input = (tensor: string, dims: (number | string)[]) => {
    weights.push({ input: g.input(tensor, 'float', dims), tensor });
    return tensor;
  };
  const x = g.input('hidden', 'float', ['batch', 'seq', d]);
  let y: string;
  if (kind === 'LINEAR') {
    y = linearT(g, x, input('linear.weight', [d, d]), input('linear.bias', [d]));
  } else {
    const meanSquare = g.op('ReduceMean', [g.op('Mul', [x, x])], { axes: [-1], keepdims: 1 });
    const normalized = g.op('Mul', [g.op('Div', [x, g.op('Sqrt', [g.op('Add', [meanSquare, g.scalar(config.normEps)])])]), input('norm.weight', [d])]);
    const fc1 = linearT(g, normalized, input('fc1.weight', ['ffn', d]), input('fc1.bias', ['ffn']));
    const hidden = g.op('Mul', [fc1, g.op('Sigmoid', [fc1])]);
    y = g.op('Add', [x, linearT(g, hidden, input('fc2.weight', [d, 'ffn']), input('fc2.bias', [d]))]);
  }
  g.output(y, 'hidden_out', ['batch', 'seq', d]);
  return { bytes: g.encode(`replacement-${kind.toLowerCase()}`, OPSET), weights };
}
