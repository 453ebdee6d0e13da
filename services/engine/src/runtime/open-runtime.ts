/**
 * Opens the frozen model for forward passes, choosing how it runs:
 * - ONNX Runtime, layer-streamed (the default): weights read per layer from the model's files, nothing of
 *   the model kept between layers; memory is flat in depth (see ./onnx/streamed-forward.ts).
 * - ONNX Runtime, whole model (`streaming: 'off'`): every weight loaded once, widened to float32, in one
 *   graph — fastest for a small model used for many separate batches (generation with a KV cache of
 *   its own, for instance), and the reference the streamed pass is checked against.
 * - TensorFlow.js (`runtime: 'tfjs'`, or when the ONNX binding does not load): the whole model, for small
 *   models and tests; refused above what wasm's 4 GiB heap holds.
 */
import { EngineError } from '../errors.js';
import { loadModel, readInsertedModule, type ModelInfo } from '../models/model.js';
import { openWeightReader } from '../models/weight-reader.js';
import { createRuntime, TFJS_MAX_WEIGHT_BYTES, type RuntimeOptions } from './create-runtime.js';
import { memoryBudget } from './memory-budget.js';
import type { ForwardRuntime } from './runtime.js';

export type StreamingMode = 'on' | 'off';
export const STREAMING_MODES: readonly StreamingMode[] = ['on', 'off'];

export interface OpenRuntimeOptions extends RuntimeOptions {
  /** 'on' (default): layer-streamed in ONNX Runtime; 'off': the whole model in memory. */
  readonly streaming?: StreamingMode;
  /** Bytes, or a size such as "6GiB"; default STREAMLINE_MEMORY_BUDGET, else half the available memory. */
  readonly memoryBudget?: number | string;
  /** Where a streamed pass spills activations that do not fit the budget (default: the system's temporary directory). */
  readonly spillDir?: string;
}

export async function openRuntime(info: ModelInfo, options: OpenRuntimeOptions = {}): Promise<ForwardRuntime> {
  const streaming = options.streaming ?? 'on';
  if (!STREAMING_MODES.includes(streaming)) throw new EngineError('BAD_INPUT', `streaming ${JSON.stringify(streaming)} is not supported; accepted: ${STREAMING_MODES.join(', ')}`);
  const runtime = options.runtime ?? (process.env.STREAMLINE_RUNTIME as RuntimeOptions['runtime']);
  if (runtime === 'tfjs') checkFitsTfjs(info);
  if (runtime !== 'tfjs' && streaming === 'on') {
    let streamed: typeof import('./onnx/streamed-forward.js') | null = null;
    try {
      streamed = await import('./onnx/streamed-forward.js');
    } catch (error) {
      if (runtime === 'onnx') throw error;
      checkFitsTfjs(info); // no usable native binding: the portable runtime, if the model fits it
    }
    if (streamed) {
      const weights = openWeightReader(info);
      const inserted = info.format === 'huggingface' ? readInsertedModule(info.path, info.config.numLayers) : undefined;
      return new streamed.StreamedOnnxForward(
        { family: info.family, config: info.config, weights, ...(inserted ? { inserted } : {}) },
        { threads: options.workers, memoryBudget: memoryBudget(options.memoryBudget), spillDir: options.spillDir, ownsWeights: true },
      );
    }
  }
  return createRuntime(loadModel(info.path), options);
}

function checkFitsTfjs(info: ModelInfo): void {
  const bytes = info.numParameters * 4;
  if (bytes > TFJS_MAX_WEIGHT_BYTES && process.env.STREAMLINE_BACKEND !== 'tensorflow') {
    throw new EngineError(
      'BAD_INPUT',
      `the TensorFlow.js runtime holds the whole model as float32 (${(bytes / 1024 ** 3).toFixed(1)} GiB for ${info.numParameters} parameters), more than the ${TFJS_MAX_WEIGHT_BYTES / 1024 ** 3} GiB its wasm heap leaves for weights; use the ONNX runtime (layer-streamed) for this model`,
    );
  }
}
