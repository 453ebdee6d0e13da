/**
 * The decoder as an ONNX graph, built from the architecture table — the same computation as
 * ../tfjs/tfjs-forward.ts, node for node. Inputs: input_ids [B, T] (int64), attention_bias [B, 1, T, T],
 * and rope_cos / rope_sin [T, headDim] or position_ids [T] (learned positions). Outputs: hidden_0..hidden_L
 * and/or logits, as requested when the graph is built.
 */
import { transpose2d } from '../../formats/host-tensor.js';
import { hasBias, layerWeightName, type LayerPart } from '../../models/architecture.js';
import type { LoadedModel } from '../../models/model.js';
import type { ForwardRequest } from '../runtime.js';
import { attention, biasForStackedScores, mlpActivation, norm, rotateHalf, splitHeads } from './decoder-ops.js';
import { OnnxGraph, type ExternalWeights } from './onnx-graph.js';

/** LayerNormalization needs opset 17; everything else here is older. */
export const OPSET = 17;

/**
 * `kvCache`: the incremental-decoding variant (batch of one sequence, no padding): inputs past_key_i /
 * past_value_i [B, Hkv, P, hd] per layer, attention_bias [B, 1, T, P + T], RoPE tables (or position ids)
 * for positions P..P+T-1; outputs present_key_i / present_value_i [B, Hkv, P + T, hd] beside the logits.
 */
export function buildDecoderGraph(model: LoadedModel, request: ForwardRequest & { readonly kvCache?: boolean }, external: ExternalWeights | null = null): Uint8Array {
  const { config, family } = model;
  const H = config.numAttentionHeads;
  const Hkv = config.numKeyValueHeads;
  const hd = config.headDim;
  const d = config.hiddenSize;
  const g = new OnnxGraph(external);
  const tensor = (name: string) => model.weights.get(name)!;

  const ids = g.input('input_ids', 'int64', ['batch', 'seq']);
  const bias = g.input('attention_bias', 'float', ['batch', 1, 'seq', request.kvCache ? 'total' : 'seq']);

  // Linear weights are stored [out, in] (Hugging Face); MatMul wants [in, out].
  const linear = (x: string, layer: number, part: LayerPart) => {
    const name = layerWeightName(family, layer, part);
    const t = transpose2d(tensor(name));
    const y = g.op('MatMul', [x, g.weight(name, [...t.shape], t.data)]);
    if (!hasBias(family, config, part)) return y;
    const biasName = layerWeightName(family, layer, part, 'bias');
    return g.op('Add', [y, g.weight(biasName, [...tensor(biasName).shape], tensor(biasName).data)]);
  };
  // Projections that read the same input run as one wider MatMul, then split: fewer, larger GEMMs.
  const fusedLinear = (x: string, layer: number, parts: LayerPart[]): string[] => {
    const transposed = parts.map((part) => transpose2d(tensor(layerWeightName(family, layer, part))));
    const inputs = transposed[0].shape[0];
    const widths = transposed.map((t) => t.shape[1]);
    const total = widths.reduce((a, b) => a + b, 0);
    const fused = new Float32Array(inputs * total);
    for (let row = 0; row < inputs; row++) {
      let column = row * total;
      transposed.forEach((t, i) => {
        fused.set(t.data.subarray(row * widths[i], (row + 1) * widths[i]), column);
        column += widths[i];
      });
    }
    const fusedName = parts.map((part) => layerWeightName(family, layer, part)).join('+');
    let y = g.op('MatMul', [x, g.weight(fusedName, [inputs, total], fused)]);
    if (hasBias(family, config, parts[0])) {
      const biases = parts.map((part) => tensor(layerWeightName(family, layer, part, 'bias')).data);
      const bias = new Float32Array(total);
      let offset = 0;
      for (const b of biases) {
        bias.set(b, offset);
        offset += b.length;
      }
      y = g.op('Add', [y, g.weight(`${fusedName}.bias`, [total], bias)]);
    }
    return g.opMulti('Split', [y, g.int64(widths)], { axis: -1 }, parts.length);
  };
  const vector = (name: string) => g.weight(name, [...tensor(name).shape], tensor(name).data);
  const normAt = (x: string, prefix: string) =>
    norm(g, family, config, x, vector(`${prefix}.weight`), family.norm === 'layernorm' ? vector(`${prefix}.bias`) : null);
  const layerNormPrefix = (layer: number, part: 'attentionNorm' | 'mlpNorm') => layerWeightName(family, layer, part).replace(/\.weight$/, '');

  let x = g.op('Gather', [vector(family.weights.embedTokens), ids], { axis: 0 });
  if (family.weights.embedPositions) {
    const positions = g.input('position_ids', 'int64', ['seq']);
    x = g.op('Add', [x, g.op('Gather', [vector(family.weights.embedPositions), positions], { axis: 0 })]);
  }
  const hiddenStates = [x];

  const rope = family.positions === 'rope';
  const cos = rope ? g.input('rope_cos', 'float', ['seq', hd]) : '';
  const sin = rope ? g.input('rope_sin', 'float', ['seq', hd]) : '';
  const stackedBias = biasForStackedScores(g, config, bias);

  // A LINEAR or FFN replacement (extension format), as ../tfjs/inserted-forward.ts defines it.
  const inserted = model.replacement;
  const insertedModule = (input: string): string => {
    const t = (name: string) => inserted!.weights.get(name)!;
    const matrix = (name: string) => {
      const transposed = transpose2d(t(name));
      return g.weight(`replacement.${name}`, [...transposed.shape], transposed.data);
    };
    const vec = (name: string) => g.weight(`replacement.${name}`, [...t(name).shape], t(name).data);
    if (inserted!.kind === 'LINEAR') return g.op('Add', [g.op('MatMul', [input, matrix('linear.weight')]), vec('linear.bias')]);
    const meanSquare = g.op('ReduceMean', [g.op('Mul', [input, input])], { axes: [-1], keepdims: 1 });
    const normalized = g.op('Mul', [g.op('Div', [input, g.op('Sqrt', [g.op('Add', [meanSquare, g.scalar(config.normEps)])])]), vec('norm.weight')]);
    const fc1 = g.op('Add', [g.op('MatMul', [normalized, matrix('fc1.weight')]), vec('fc1.bias')]);
    const hidden = g.op('Mul', [fc1, g.op('Sigmoid', [fc1])]);
    return g.op('Add', [input, g.op('Add', [g.op('MatMul', [hidden, matrix('fc2.weight')]), vec('fc2.bias')])]);
  };

  for (let layer = 0; layer < config.numLayers; layer++) {
    if (inserted?.position === layer) x = insertedModule(x);
    const h = normAt(x, layerNormPrefix(layer, 'attentionNorm'));
    const [qProjected, kProjected, vProjected] = fusedLinear(h, layer, ['q', 'k', 'v']);
    let q = splitHeads(g, qProjected, H, hd);
    let k = splitHeads(g, kProjected, Hkv, hd);
    let v = splitHeads(g, vProjected, Hkv, hd);
    if (rope) {
      q = rotateHalf(g, q, cos, sin);
      k = rotateHalf(g, k, cos, sin);
    }
    if (request.kvCache) {
      k = g.op('Concat', [g.input(`past_key_${layer}`, 'float', ['batch', Hkv, 'past', hd]), k], { axis: 2 });
      v = g.op('Concat', [g.input(`past_value_${layer}`, 'float', ['batch', Hkv, 'past', hd]), v], { axis: 2 });
      g.output(k, `present_key_${layer}`, ['batch', Hkv, 'total', hd]);
      g.output(v, `present_value_${layer}`, ['batch', Hkv, 'total', hd]);
    }
    const merged = attention(g, config, q, k, v, stackedBias);
    x = g.op('Add', [x, linear(merged, layer, 'o')]);

    const m = normAt(x, layerNormPrefix(layer, 'mlpNorm'));
    const [gate, up] = family.mlp === 'gated' ? fusedLinear(m, layer, ['gate', 'up']) : [null, linear(m, layer, 'up')];
    const activated = mlpActivation(g, family, gate, up);
    x = g.op('Add', [x, linear(activated, layer, 'down')]);
    hiddenStates.push(x);
  }
  if (inserted?.position === config.numLayers) x = insertedModule(x);

  if (request.hiddenStates) hiddenStates.forEach((state, i) => g.output(state, `hidden_${i}`, ['batch', 'seq', d]));
  if (request.hiddenStateCosines) {
    // Unit vectors stacked as [B, T, L+1, d]; their Gram matrix per token is every pairwise cosine.
    const tiny = g.scalar(1e-12);
    const units = hiddenStates.map((state) => {
      const length = g.op('Sqrt', [g.op('ReduceSum', [g.op('Mul', [state, state]), g.int64([-1])], { keepdims: 1 })]);
      return g.op('Unsqueeze', [g.op('Div', [state, g.op('Max', [length, tiny])]), g.int64([2])]);
    });
    const stacked = g.op('Concat', units, { axis: 2 });
    const gram = g.op('MatMul', [stacked, g.op('Transpose', [stacked], { perm: [0, 1, 3, 2] })]);
    g.output(gram, 'hidden_cosines', ['batch', 'seq', config.numLayers + 1, config.numLayers + 1]);
  }
  if (request.logits) {
    const y = normAt(x, family.weights.finalNorm);
    const headName = config.tieWordEmbeddings ? family.weights.embedTokens : family.weights.lmHead;
    const head = transpose2d(tensor(headName));
    g.output(g.op('MatMul', [y, g.weight(`${headName}.lm_head_T`, [...head.shape], head.data)]), 'logits', ['batch', 'seq', config.vocabSize]);
  }
  return g.encode(`${family.modelType}-decoder`, OPSET);
}
