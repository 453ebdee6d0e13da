/**
 * Training a replacement on hidden-state pairs: MSE between its output on h[s] and h[s+n] over real
 * tokens; AdamW; linear warm-up then cosine decay to a floor; gradient clipping and accumulation; a
 * validation pass each epoch, keeping the best weights; a seed that fixes initialisation and data order.
 *
 * Every `checkpointEvery` optimizer steps, at each epoch's end and when cancelled, the whole state
 * (weights, optimizer moments, step, position in the epoch's order, best weights, loss history) is
 * written to `dir/checkpoint`; a run started with the same directory and settings resumes from it and
 * ends with the same weights as an uninterrupted run — on either trainer (../training/trainer.ts: ONNX
 * Runtime graphs by default, TensorFlow.js as the portable one), since both keep the same state.
 */
import { join } from 'node:path';
import { EngineError, throwIfCancelled } from '../errors.js';
import { transpose2d, type HostTensor } from '../formats/host-tensor.js';
import { mulberry32 } from '../random.js';
import { createTrainer, type HostBatch, type ModelShape, type ReplacementTrainer, type TrainerName } from '../training/trainer.js';
import { DEFAULT_WARMUP_RATIO } from './defaults.js';
import type { HiddenStatePairs } from './hidden-state-pairs.js';
import type { TrainedKind } from './replacement.js';
import { loadCheckpoint, saveCheckpoint } from './trainer-checkpoint.js';

export interface TrainingSettings {
  /** Default: as many as it takes to make at least `minSteps` optimizer steps. */
  readonly epochs?: number;
  readonly minSteps: number;
  readonly batchSize: number;
  readonly gradAccum: number;
  readonly learningRate: number;
  readonly minLearningRate: number;
  /** Default: `warmupRatio` of all steps. */
  readonly warmupSteps?: number;
  /** Fraction of all steps spent warming up when warmupSteps is not given; default DEFAULT_WARMUP_RATIO. */
  readonly warmupRatio?: number;
  readonly weightDecay: number;
  readonly gradClip: number;
  readonly seed: number;
  readonly checkpointEvery: number;
}

export interface TrainingProgress {
  readonly step: number;
  readonly totalSteps: number;
  readonly epoch: number;
  readonly epochs: number;
  readonly loss: number;
  readonly validationLoss: number | null;
  readonly learningRate: number;
  readonly tokensPerSecond: number;
}

export interface EpochRecord {
  readonly epoch: number;
  readonly trainLoss: number;
  readonly validationLoss: number | null;
  /** Mean cosine of the replacement's output and the original block's output on validation tokens. */
  readonly validationCosine: number | null;
}

export interface TrainingResult {
  /** The best-validation weights (the last ones without a validation split), Hugging Face layout. */
  readonly params: Map<string, HostTensor>;
  readonly epochs: EpochRecord[];
  readonly steps: number;
  readonly bestEpoch: number;
  readonly resumedFromStep: number | null;
}

export interface TrainingJob {
  readonly kind: TrainedKind;
  /** The model's sizes (the replacement is trained on its hidden states). */
  readonly model: ModelShape;
  /**
   * The initial parameters, made when the trainer is created and not held after: the trainer keeps its
   * own copy, and a 7B-class LAYER replacement is 0.8 GB per copy.
   */
  readonly initial: () => ReadonlyMap<string, HostTensor>;
  readonly pairs: HiddenStatePairs;
  /** Where checkpoints live. */
  readonly dir: string;
  /** Identifies model, block, data and settings; a checkpoint with another key is not resumed. */
  readonly key: string;
  readonly settings: TrainingSettings;
  readonly onProgress?: (progress: TrainingProgress) => void;
  /** Called right after each checkpoint is written, with the directory that holds it (until the next one replaces it). */
  readonly onCheckpoint?: (step: number, checkpointDir: string) => void;
  readonly signal?: AbortSignal;
  /** Default: STREAMLINE_TRAINER, else onnx when its binding loads, else tfjs. */
  readonly trainer?: TrainerName;
  /** Native threads; default: STREAMLINE_THREADS, else the CPU quota, else the cores. */
  readonly threads?: number;
  /** Called once the trainer is ready, with what it runs on (`onnxruntime cpu, 2 threads`). */
  readonly onStart?: (trainer: string) => void;
}

interface TrainingState {
  key: string;
  step: number;
  epoch: number;
  /** Micro-batches of the current epoch already consumed. */
  position: number;
  epochLossSum: number;
  epochLossCount: number;
  history: EpochRecord[];
  bestValidationLoss: number | null;
  bestEpoch: number;
  optimizerStep: number;
}

export function learningRateAt(step: number, totalSteps: number, warmupSteps: number, peak: number, floor: number): number {
  if (step < warmupSteps) return (peak * (step + 1)) / warmupSteps;
  const progress = (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
  return floor + (peak - floor) * 0.5 * (1 + Math.cos(Math.PI * Math.min(1, progress)));
}

export async function trainReplacement(job: TrainingJob): Promise<TrainingResult> {
  const { model, pairs, settings } = job;
  const train = pairs.indices('train');
  const validation = pairs.indices('val');
  if (train.length === 0) throw new EngineError('BAD_INPUT', 'no training samples left after the validation split; use more samples or a smaller --val-fraction');
  const microBatches = Math.ceil(train.length / settings.batchSize);
  const stepsPerEpoch = Math.ceil(microBatches / settings.gradAccum);
  const epochs = settings.epochs ?? Math.max(1, Math.ceil(settings.minSteps / stepsPerEpoch));
  const totalSteps = epochs * stepsPerEpoch;
  const warmupSteps = settings.warmupSteps ?? Math.max(1, Math.round((settings.warmupRatio ?? DEFAULT_WARMUP_RATIO) * totalSteps));

  // Matrices train as [in, out] and go back to [out, in] on the way out.
  const trainer = await createTrainer({ kind: job.kind, model, initial: asTrained(job.initial()), optimizer: settings, trainer: job.trainer, threads: job.threads });
  job.onStart?.(trainer.description);
  let best: Map<string, HostTensor> | null = null;
  let state: TrainingState = {
    key: job.key,
    step: 0,
    epoch: 0,
    position: 0,
    epochLossSum: 0,
    epochLossCount: 0,
    history: [],
    bestValidationLoss: null,
    bestEpoch: -1,
    optimizerStep: 0,
  };
  const resumed = await loadCheckpoint<TrainingState>(job.dir, job.key, trainer);
  if (resumed) {
    state = resumed.state;
    best = resumed.best;
  }
  const resumedFromStep = resumed ? state.step : null;
  const save = async () => {
    saveCheckpoint(job.dir, state, await trainer.state(), best);
    job.onCheckpoint?.(state.step, join(job.dir, 'checkpoint'));
  };

  const started = performance.now();
  let tokensSeen = 0;
  try {
    while (state.epoch < epochs) {
      const order = shuffled(train, settings.seed * 1_000_003 + state.epoch);
      while (state.position < microBatches) {
        // One optimizer step: up to gradAccum micro-batches, gradients averaged.
        const group = Math.min(settings.gradAccum, microBatches - state.position);
        let lossSum = 0;
        for (let i = 0; i < group; i++) {
          throwIfCancelled(job.signal, 'training');
          const first = (state.position + i) * settings.batchSize;
          const batch = loadBatch(pairs, order.slice(first, first + settings.batchSize));
          lossSum += await trainer.accumulate(batch);
          tokensSeen += batch.tokens;
        }
        const learningRate = learningRateAt(state.step, totalSteps, warmupSteps, settings.learningRate, settings.minLearningRate);
        await trainer.step(group, learningRate);
        state.step += 1;
        state.position += group;
        state.epochLossSum += lossSum;
        state.epochLossCount += group;
        state.optimizerStep += 1;
        job.onProgress?.({
          step: state.step,
          totalSteps,
          epoch: state.epoch + 1,
          epochs,
          loss: lossSum / group,
          validationLoss: state.history.at(-1)?.validationLoss ?? null,
          learningRate,
          tokensPerSecond: tokensSeen / ((performance.now() - started) / 1000),
        });
        // tfjs on wasm computes synchronously: let timers (lease heartbeats) and I/O (progress reports) run.
        await new Promise((resolve) => setImmediate(resolve));
        if (state.step % settings.checkpointEvery === 0 && state.position < microBatches) await save();
      }
      // End of epoch: validate, keep the best weights.
      const { loss: validationLoss, cosine: validationCosine } =
        validation.length > 0 ? await validate(trainer, pairs, validation, settings.batchSize, model.config.hiddenSize) : { loss: null, cosine: null };
      state.history.push({ epoch: state.epoch + 1, trainLoss: state.epochLossSum / state.epochLossCount, validationLoss, validationCosine });
      if (validationLoss === null || state.bestValidationLoss === null || validationLoss < state.bestValidationLoss) {
        state.bestValidationLoss = validationLoss;
        state.bestEpoch = state.epoch + 1;
        best = toHuggingFace(await trainer.params());
      }
      state.epoch += 1;
      state.position = 0;
      state.epochLossSum = 0;
      state.epochLossCount = 0;
      await save();
    }
    return { params: best ?? toHuggingFace(await trainer.params()), epochs: state.history, steps: state.step, bestEpoch: state.bestEpoch, resumedFromStep };
  } catch (error) {
    // Cancelled (a cancelled plan, a worker told to stop): the state is at an optimizer-step boundary —
    // a half-accumulated step is simply dropped — so save it and lose nothing.
    if (error instanceof EngineError && error.code === 'CANCELLED') await save();
    throw error;
  } finally {
    await trainer.dispose();
  }
}

export function loadBatch(pairs: HiddenStatePairs, indices: number[]): HostBatch {
  const sequences = indices.map((i) => pairs.read(i));
  const d = pairs.hiddenSize;
  const B = sequences.length;
  const T = Math.max(...sequences.map((s) => s.length));
  const inputs = new Float32Array(B * T * d);
  const targets = new Float32Array(B * T * d);
  const attentionMask = new Uint8Array(B * T);
  sequences.forEach((s, b) => {
    inputs.set(s.inputs, b * T * d);
    targets.set(s.targets, b * T * d);
    attentionMask.fill(1, b * T, b * T + s.length);
  });
  return { inputs, targets, attentionMask, batchSize: B, seqLen: T, tokens: sequences.reduce((n, s) => n + s.length, 0) };
}

async function validate(trainer: ReplacementTrainer, pairs: HiddenStatePairs, indices: number[], batchSize: number, hiddenSize: number) {
  let errorSum = 0;
  let cosineSum = 0;
  let tokens = 0;
  for (let first = 0; first < indices.length; first += batchSize) {
    const batch = loadBatch(pairs, indices.slice(first, first + batchSize));
    const sums = await trainer.evaluate(batch);
    errorSum += sums.squaredError;
    cosineSum += sums.cosineSum;
    tokens += batch.tokens;
  }
  return { loss: errorSum / (tokens * hiddenSize), cosine: cosineSum / tokens };
}

/** Deterministic Fisher–Yates shuffle. */
export function shuffled<T>(items: readonly T[], seed: number): T[] {
  const next = mulberry32(seed);
  const result = [...items];
  for (let i = result.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [result[i], result[j]] = [result[j], result[i]];
  }
  return result;
}

/** Trained layout ([in, out] matrices) → Hugging Face layout ([out, in]), and back: the transpose is its own inverse. */
export function toHuggingFace(params: Map<string, HostTensor>): Map<string, HostTensor> {
  return new Map([...params].map(([name, t]) => [name, t.shape.length === 2 ? transpose2d(t) : t]));
}

/** Parameters as the trainers hold them: matrices [in, out] (they go back to [out, in] on the way out). */
function asTrained(initial: ReadonlyMap<string, HostTensor>): Map<string, HostTensor> {
  return new Map([...initial].map(([name, t]) => [name, t.shape.length === 2 ? transpose2d(t) : t]));
}
