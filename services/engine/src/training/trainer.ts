/**
 * The replacement trainers behind one interface: `onnx` (forward, backward and AdamW as ONNX graphs run by
 * ONNX Runtime — MLAS on every allowed core, or the CUDA provider) and `tfjs` (TensorFlow.js autodiff —
 * the portable trainer and the gradient oracle). STREAMLINE_TRAINER=onnx|tfjs picks one (default onnx,
 * falling back to tfjs when the native binding does not load). Both keep parameters and AdamW moments in
 * the same layout (matrices [in, out]), so a resumable checkpoint written by one is resumed by the other.
 */
import { EngineError } from '../errors.js';
import type { HostTensor } from '../formats/host-tensor.js';
import type { LoadedModel } from '../models/model.js';

/** What a trainer needs of the model: its family and sizes (the replacement trains on hidden states). */
export type ModelShape = Pick<LoadedModel, 'family' | 'config'>;
import type { AdamWSettings } from '../pruning/adamw.js';
import type { TrainedKind } from '../pruning/replacement.js';

export type TrainerName = 'onnx' | 'tfjs';
export const TRAINERS: readonly TrainerName[] = ['onnx', 'tfjs'];

/** One padded micro-batch of hidden-state pairs on the host. */
export interface HostBatch {
  /** [B, T, d] */
  readonly inputs: Float32Array;
  readonly targets: Float32Array;
  /** [B, T]: 1 for real tokens. */
  readonly attentionMask: Uint8Array;
  readonly batchSize: number;
  readonly seqLen: number;
  /** Real tokens. */
  readonly tokens: number;
}

/** Parameters and AdamW state as trained (matrices [in, out]). */
export interface TrainerState {
  readonly params: Map<string, HostTensor>;
  readonly firstMoments: Map<string, HostTensor>;
  readonly secondMoments: Map<string, HostTensor>;
  readonly step: number;
}

export interface ReplacementTrainer {
  /** e.g. `onnxruntime cpu, 2 threads`. */
  readonly description: string;
  /** Adds the gradient of the batch's masked MSE to the accumulated gradient; returns that MSE. */
  accumulate(batch: HostBatch): Promise<number>;
  /** One AdamW step with the accumulated gradient averaged over `microBatches`; clears the accumulator. */
  step(microBatches: number, learningRate: number): Promise<void>;
  /** Σ squared error and Σ cosine over the batch's real tokens. */
  evaluate(batch: HostBatch): Promise<{ squaredError: number; cosineSum: number }>;
  /** Valid until the trainer's next accumulate, step or restore (it may share the trainer's buffers): write it out, or copy it. */
  state(): Promise<TrainerState>;
  /** Parameters only, as trained. */
  params(): Promise<Map<string, HostTensor>>;
  restore(state: TrainerState): Promise<void>;
  dispose(): Promise<void>;
}

export interface TrainerOptions {
  readonly kind: TrainedKind;
  readonly model: ModelShape;
  /** Initial parameters as trained (matrices [in, out]). */
  readonly initial: ReadonlyMap<string, HostTensor>;
  readonly optimizer: AdamWSettings;
  readonly trainer?: TrainerName;
  readonly threads?: number;
}

export function requestedTrainer(value = process.env.STREAMLINE_TRAINER): TrainerName | undefined {
  if (value === undefined || value === '') return undefined;
  if (!TRAINERS.includes(value as TrainerName)) {
    throw new EngineError('BAD_INPUT', `STREAMLINE_TRAINER=${value} is not a trainer; accepted: ${TRAINERS.join(', ')}`);
  }
  return value as TrainerName;
}

export async function createTrainer(options: TrainerOptions): Promise<ReplacementTrainer> {
  const requested = options.trainer ?? requestedTrainer();
  if (requested !== 'tfjs') {
    let onnxTrainer: typeof import('./onnx/onnx-trainer.js') | null = null;
    try {
      onnxTrainer = await import('./onnx/onnx-trainer.js');
    } catch (error) {
      if (requested === 'onnx') throw error;
      // No usable native binding: the portable trainer.
    }
    if (onnxTrainer) return onnxTrainer.OnnxReplacementTrainer.create(options);
  }
  const { TfjsReplacementTrainer } = await import('./tfjs-trainer.js');
  return TfjsReplacementTrainer.create(options);
}
