/**
 * "Open a calibration session": the first step of every run that profiles a model on calibration data —
 * `prune`, the plan runner's dry run and the CLI's `importance`. The model is inspected once, its
 * tokenizer and the calibration samples loaded and checked, and its weights opened for reading: a
 * layer-streamed reader of its files (the default), or the whole model in memory when the run asks for
 * the whole-model ONNX path (`streaming: 'off'`) or for TensorFlow.js. Runtimes for the model (and for
 * models derived from it, such as the pruned one) come from `session.runtimeFor`.
 */
import { EngineError } from './errors.js';
import { loadCalibrationSamples } from './data/calibration.js';
import type { HostTensor } from './formats/host-tensor.js';
import { inspectModel, loadModel, readInsertedModule, type LoadedModel, type ModelInfo } from './models/model.js';
import { expectedWeightShapes } from './models/weight-shapes.js';
import { MemoryWeightReader, openWeightReader, type WeightReader } from './models/weight-reader.js';
import { createRuntime } from './runtime/create-runtime.js';
import { memoryBudget as resolveMemoryBudget } from './runtime/memory-budget.js';
import type { OpenRuntimeOptions } from './runtime/open-runtime.js';
import { STREAMING_MODES } from './runtime/open-runtime.js';
import type { ForwardRuntime } from './runtime/runtime.js';
import type { StreamedModel } from './runtime/onnx/streamed-forward.js';
import { loadTokenizer, type Tokenizer } from './tokenizers/tokenizer.js';

export interface CalibrationSessionOptions {
  readonly modelPath: string;
  readonly tokenizerPath?: string | null;
  readonly dataPath: string;
  readonly samples: number;
  readonly seqLen: number;
  readonly runtime?: OpenRuntimeOptions;
  /** How errors name the sequence length setting (default "seq-len"; the CLI's "--seq-len"). */
  readonly seqLenSetting?: string;
  /** Checks to run once the data is loaded and before any weight is read. */
  readonly check?: (session: Pick<CalibrationSession, 'info' | 'tokenizer' | 'tokenizerPath' | 'data'>) => void | Promise<void>;
}

export interface CalibrationSession {
  readonly info: ModelInfo;
  readonly tokenizerPath: string | null;
  readonly tokenizer: Tokenizer | null;
  readonly data: number[][];
  /** True when forward passes are layer-streamed (ONNX Runtime); false for the whole-model paths. */
  readonly streaming: boolean;
  readonly memoryBudget: number;
  /** The model's weights, read on demand (streaming) or from memory. */
  readonly weights: WeightReader;
  /** The model as a streamed pass runs it. */
  readonly model: StreamedModel;
  /** The runtime for the model itself, opened on first use and kept until `close`. */
  runtime(): Promise<ForwardRuntime>;
  /** A runtime for `model` (the original, or one derived from it); the caller disposes it. */
  runtimeFor(model: StreamedModel): Promise<ForwardRuntime>;
  close(): Promise<void>;
}

export async function openCalibrationSession(options: CalibrationSessionOptions): Promise<CalibrationSession> {
  const info = inspectModel(options.modelPath);
  const { config } = info;
  if (options.seqLen > config.maxPositionEmbeddings) throw new EngineError('BAD_INPUT', `${options.seqLenSetting ?? 'seq-len'} ${options.seqLen} is beyond the model's context of ${config.maxPositionEmbeddings} positions`);
  const tokenizerPath = options.tokenizerPath ?? info.tokenizerPath;
  const tokenizer = tokenizerPath ? await loadTokenizer(tokenizerPath) : null;
  const data = await loadCalibrationSamples(options.dataPath, tokenizer, { samples: options.samples, seqLen: options.seqLen, vocabSize: config.vocabSize });
  await options.check?.({ info, tokenizer, tokenizerPath, data });

  const runtimeOptions = options.runtime ?? {};
  const streamingMode = runtimeOptions.streaming ?? 'on';
  if (!STREAMING_MODES.includes(streamingMode)) throw new EngineError('BAD_INPUT', `streaming ${JSON.stringify(streamingMode)} is not supported; accepted: ${STREAMING_MODES.join(', ')}`);
  const runtimeName = runtimeOptions.runtime ?? (process.env.STREAMLINE_RUNTIME as OpenRuntimeOptions['runtime']);
  let streamed: typeof import('./runtime/onnx/streamed-forward.js') | null = null;
  if (runtimeName !== 'tfjs' && streamingMode === 'on') {
    try {
      streamed = await import('./runtime/onnx/streamed-forward.js');
    } catch (error) {
      if (runtimeName === 'onnx') throw error; // else: no native binding, the portable runtime
    }
  }
  const budget = resolveMemoryBudget(runtimeOptions.memoryBudget);
  let loaded: LoadedModel | null = null;
  const weights = streamed ? openWeightReader(info) : new MemoryWeightReader((loaded = loadModel(info.path)).weights, config.dtype);
  const inserted = info.format === 'huggingface' ? readInsertedModule(info.path, config.numLayers) : undefined;
  const model: StreamedModel = { family: info.family, config, weights, ...(inserted ? { inserted } : {}) };

  // The session's runtimes (original, pruned) run one pass at a time: one set of widened-layer buffers serves them all.
  const layerBuffers = new Map<string, Float32Array>();
  const runtimeFor = async (target: StreamedModel): Promise<ForwardRuntime> => {
    if (streamed) return new streamed.StreamedOnnxForward(target, { threads: runtimeOptions.workers, memoryBudget: budget, spillDir: runtimeOptions.spillDir, layerBuffers });
    if (target === model && loaded) return createRuntime(loaded, runtimeOptions);
    return createRuntime(materialize(info, target), runtimeOptions);
  };
  let own: Promise<ForwardRuntime> | null = null;
  return {
    info,
    tokenizerPath,
    tokenizer,
    data,
    streaming: streamed !== null,
    memoryBudget: budget,
    weights,
    model,
    runtime: () => (own ??= runtimeFor(model)),
    runtimeFor,
    async close() {
      if (own) await (await own).dispose();
      own = null;
      layerBuffers.clear();
      weights.close();
    },
  };
}

/** A derived model (the pruned one) as a LoadedModel, for the whole-model runtimes: every tensor read once. */
export function materialize(source: ModelInfo, model: StreamedModel): LoadedModel {
  const weights = new Map<string, HostTensor>();
  for (const name of streamedModelTensorNames(model)) weights.set(name, model.weights.readFloat32(name));
  const numParameters = [...weights.values(), ...(model.inserted?.weights.values() ?? [])].reduce((n, t) => n + t.data.length, 0);
  return { ...source, config: model.config, hfConfig: { ...source.hfConfig, num_hidden_layers: model.config.numLayers }, weights, numParameters, replacement: model.inserted };
}

/** Every tensor name of a model of this family and config (the order Hugging Face writes them). */
export function streamedModelTensorNames(model: StreamedModel): string[] {
  return [...expectedWeightShapes(model.family, model.config).keys()];
}
