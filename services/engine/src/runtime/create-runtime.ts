/**
 * Picks the runtime for the frozen model's forward passes: ONNX Runtime when its native binding loads,
 * else TensorFlow.js. STREAMLINE_RUNTIME=onnx|tfjs (or the `runtime` option) overrides.
 */
import { EngineError } from '../errors.js';
import type { LoadedModel } from '../models/model.js';
import type { ForwardRuntime, RuntimeName } from './runtime.js';

export interface RuntimeOptions {
  readonly runtime?: RuntimeName;
  /** ONNX: intra-op threads. TensorFlow.js on wasm: worker threads, each running a slice of every batch. */
  readonly workers?: number;
}

const RUNTIMES: RuntimeName[] = ['onnx', 'tfjs'];

/** wasm's heap is 4 GiB; the weights (float32) must leave room for activations in it. */
export const TFJS_MAX_WEIGHT_BYTES = 3 * 1024 ** 3;

export async function createRuntime(model: LoadedModel, options: RuntimeOptions = {}): Promise<ForwardRuntime> {
  const requested = options.runtime ?? (process.env.STREAMLINE_RUNTIME as RuntimeName | undefined);
  if (requested !== undefined && !RUNTIMES.includes(requested)) {
    throw new EngineError('BAD_INPUT', `runtime ${JSON.stringify(requested)} is not supported; accepted: ${RUNTIMES.join(', ')}`);
  }
  if (options.workers !== undefined && !(Number.isInteger(options.workers) && options.workers >= 1)) {
    throw new EngineError('BAD_INPUT', `workers must be a positive integer, got ${options.workers}`);
  }
  if (requested !== 'tfjs') {
    try {
      const { OnnxForward } = await import('./onnx/onnx-forward.js');
      return new OnnxForward(model, { threads: options.workers });
    } catch (error) {
      if (requested === 'onnx' || error instanceof EngineError) throw error;
      // No usable native binding: fall through to the portable runtime.
    }
  }
  const weightBytes = model.numParameters * 4;
  if (weightBytes > TFJS_MAX_WEIGHT_BYTES && process.env.STREAMLINE_BACKEND !== 'tensorflow') {
    throw new EngineError('BAD_INPUT', `the TensorFlow.js runtime cannot hold this model: ${(weightBytes / 1024 ** 3).toFixed(1)} GiB of float32 weights, more than the ${TFJS_MAX_WEIGHT_BYTES / 1024 ** 3} GiB its wasm heap (4 GiB) leaves for them; use the ONNX runtime (layer-streamed)`);
  }
  const { createTfjsRuntime } = await import('./tfjs/tfjs-runtime.js');
  return createTfjsRuntime(model, options.workers ?? 1);
}
