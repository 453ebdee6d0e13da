/**
 * Replacements that are not a decoder layer (LINEAR, FFN) sit in the residual stream where the pruned
 * block was. These are their forward passes in TensorFlow.js (used in training and by the pruned model's
 * forward pass); ../onnx/decoder-graph.ts and ../onnx/layer-graph.ts build the same two as ONNX nodes.
 *
 *   LINEAR: y = W x + b                        (W [d, d], fitted in closed form; includes the identity)
 *   FFN:    y = x + W2 silu(W1 rms(x)·g + b1) + b2
 *
 * Tensor names (stored [out, in] like Hugging Face linears): linear.weight, linear.bias; norm.weight,
 * fc1.weight, fc1.bias, fc2.weight, fc2.bias.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { ModelConfig } from '../../models/architecture.js';
import type { InsertedKind } from '../../models/inserted-module.js';
import { dense, rmsNorm, silu } from './decoder-layer.js';

/** `weight(name)` returns matrices as [in, out]. */
export function applyReplacement(x: tf.Tensor, weight: (name: string) => tf.Tensor, kind: InsertedKind, config: ModelConfig): tf.Tensor {
  if (kind === 'LINEAR') return dense(x, weight('linear.weight'), weight('linear.bias'));
  const hidden = silu(dense(rmsNorm(x, weight('norm.weight'), config.normEps), weight('fc1.weight'), weight('fc1.bias')));
  return tf.add(x, dense(hidden, weight('fc2.weight'), weight('fc2.bias')));
}
