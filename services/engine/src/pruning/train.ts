/**
 * Training a replacement on hidden-state pairs: MSE between its output on h[s] and h[s+n] over real
 * tokens; AdamW; linear warm-up then cosine decay to a floor; gradient clipping and accumulation; a
 * validation pass each epoch, keeping the best weights; a seed that fixes initialisation and data order.
 *
 * Every `checkpointEvery` optimizer steps, at each epoch's end and when cancelled, the whole state
 * (weights, optimizer moments, step, position in the epoch's order, best weights, loss history) is
 * written to `dir/checkpoint`; a run started with the same directory and settings resumes from it and
 * ends with the same weights as an uninterrupted run.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { EngineError, throwIfCancelled } from '../errors.js';
import type { HostTensor } from '../formats/host-tensor.js';
import { SafetensorsFile, writeSafetensors } from '../formats/safetensors.js';
import type { LoadedModel } from '../models/model.js';

type ModelShape = Pick<LoadedModel, 'family' | 'config'>;
import { layerContext } from '../runtime/tfjs/decoder-layer.js';
import { tfjsForTraining } from '../runtime/tfjs/training.js';
import { mulberry32 } from '../random.js';
import { AdamW } from './adamw.js';
import { DEFAULT_WARMUP_RATIO } from './defaults.js';
import type { PairReader } from './hidden-state-pairs.js';
import { replacementForward, type TrainedKind } from './replacement.js';

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
  readonly initial: ReadonlyMap<string, HostTensor>;
  readonly pairs: PairReader;
  /** Where checkpoints live. */
  readonly dir: string;
  /** Identifies model, block, data and settings; a checkpoint with another key is not resumed. */
  readonly key: string;
  readonly settings: TrainingSettings;
  readonly onProgress?: (progress: TrainingProgress) => void;
  /** Called right after each checkpoint is written, with the directory that holds it (until the next one replaces it). */
  readonly onCheckpoint?: (step: number, checkpointDir: string) => void;
  readonly signal?: AbortSignal;
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
  await tfjsForTraining();
  const { model, pairs, settings } = job;
  const train = pairs.indices('train');
  const validation = pairs.indices('val');
  if (train.length === 0) throw new EngineError('BAD_INPUT', 'no training samples left after the validation split; use more samples or a smaller --val-fraction');
  const microBatches = Math.ceil(train.length / settings.batchSize);
  const stepsPerEpoch = Math.ceil(microBatches / settings.gradAccum);
  const epochs = settings.epochs ?? Math.max(1, Math.ceil(settings.minSteps / stepsPerEpoch));
  const totalSteps = epochs * stepsPerEpoch;
  const warmupSteps = settings.warmupSteps ?? Math.max(1, Math.round((settings.warmupRatio ?? DEFAULT_WARMUP_RATIO) * totalSteps));

  // Matrices train as [in, out] (fast on wasm) and go back to [out, in] on the way out.
  const params = new Map<string, tf.Variable>();
  for (const [name, t] of job.initial) params.set(name, tf.variable(toTraining(t), true));
  const optimizer = new AdamW(params, settings);
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
  const resumed = loadCheckpoint(job.dir, job.key, params, optimizer);
  if (resumed) {
    state = resumed.state;
    best = resumed.best;
  }
  const resumedFromStep = resumed ? state.step : null;

  const weight = (name: string) => params.get(name)!;
  const started = performance.now();
  let tokensSeen = 0;
  try {
    while (state.epoch < epochs) {
      const order = shuffled(train, settings.seed * 1_000_003 + state.epoch);
      while (state.position < microBatches) {
        // One optimizer step: up to gradAccum micro-batches, gradients averaged.
        const group = Math.min(settings.gradAccum, microBatches - state.position);
        const summed = new Map<string, tf.Tensor>();
        let lossSum = 0;
        for (let i = 0; i < group; i++) {
          throwIfCancelled(job.signal, 'training');
          const first = (state.position + i) * settings.batchSize;
          const batch = loadBatch(pairs, order.slice(first, first + settings.batchSize));
          const { value, grads } = tf.variableGrads(() => tf.tidy(() => mseLoss(job.kind, model, batch, weight)), [...params.values()]);
          lossSum += value.dataSync()[0];
          value.dispose();
          for (const [name, p] of params) {
            const g = grads[p.name];
            const previous = summed.get(name);
            summed.set(name, previous ? tf.add(previous, g) : tf.clone(g));
            previous?.dispose();
            g.dispose();
          }
          batch.dispose();
          tokensSeen += batch.tokens;
        }
        const averaged = new Map([...summed].map(([name, g]) => [name, tf.div(g, group)]));
        summed.forEach((g) => g.dispose());
        const learningRate = learningRateAt(state.step, totalSteps, warmupSteps, settings.learningRate, settings.minLearningRate);
        optimizer.apply(averaged, learningRate);
        averaged.forEach((g) => g.dispose());
        state.step += 1;
        state.position += group;
        state.epochLossSum += lossSum;
        state.epochLossCount += group;
        state.optimizerStep = optimizer.step;
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
        if (state.step % settings.checkpointEvery === 0 && state.position < microBatches) {
          saveCheckpoint(job.dir, state, params, optimizer, best);
          job.onCheckpoint?.(state.step, join(job.dir, 'checkpoint'));
        }
      }
      // End of epoch: validate, keep the best weights.
      const { loss: validationLoss, cosine: validationCosine } = validation.length > 0 ? validate(job.kind, model, pairs, validation, settings.batchSize, weight) : { loss: null, cosine: null };
      state.history.push({ epoch: state.epoch + 1, trainLoss: state.epochLossSum / state.epochLossCount, validationLoss, validationCosine });
      if (validationLoss === null || state.bestValidationLoss === null || validationLoss < state.bestValidationLoss) {
        state.bestValidationLoss = validationLoss;
        state.bestEpoch = state.epoch + 1;
        best = snapshot(params);
      }
      state.epoch += 1;
      state.position = 0;
      state.epochLossSum = 0;
      state.epochLossCount = 0;
      saveCheckpoint(job.dir, state, params, optimizer, best);
      job.onCheckpoint?.(state.step, join(job.dir, 'checkpoint'));
    }
    return { params: best ?? snapshot(params), epochs: state.history, steps: state.step, bestEpoch: state.bestEpoch, resumedFromStep };
  } catch (error) {
    // Cancelled (a cancelled plan, a worker told to stop): the state is at an optimizer-step boundary —
    // a half-accumulated step is simply dropped — so save it and lose nothing.
    if (error instanceof EngineError && error.code === 'CANCELLED') {
      saveCheckpoint(job.dir, state, params, optimizer, best);
      job.onCheckpoint?.(state.step, join(job.dir, 'checkpoint'));
    }
    throw error;
  } finally {
    params.forEach((p) => p.dispose());
    optimizer.dispose();
  }
}

interface Batch {
  inputs: tf.Tensor;
  targets: tf.Tensor;
  /** [B, T, 1]: 1 for real tokens. */
  mask: tf.Tensor;
  attentionMask: Uint8Array;
  batchSize: number;
  seqLen: number;
  tokens: number;
  dispose(): void;
}

function loadBatch(pairs: PairReader, indices: number[]): Batch {
  const sequences = indices.map((i) => pairs.read(i));
  const d = pairs.manifest.hiddenSize;
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
  const tensors = {
    inputs: tf.tensor3d(inputs, [B, T, d]),
    targets: tf.tensor3d(targets, [B, T, d]),
    mask: tf.tensor3d(Float32Array.from(attentionMask), [B, T, 1]),
  };
  return {
    ...tensors,
    attentionMask,
    batchSize: B,
    seqLen: T,
    tokens: sequences.reduce((n, s) => n + s.length, 0),
    dispose: () => Object.values(tensors).forEach((t) => t.dispose()),
  };
}

function predict(kind: TrainedKind, model: ModelShape, batch: Batch, weight: (name: string) => tf.Tensor): tf.Tensor {
  const ctx = layerContext(model.config, model.family, batch);
  return replacementForward(kind, batch.inputs, weight, ctx);
}

/** Mean squared error over real tokens and hidden dimensions. */
function mseLoss(kind: TrainedKind, model: ModelShape, batch: Batch, weight: (name: string) => tf.Tensor): tf.Scalar {
  const error = tf.mul(tf.squaredDifference(predict(kind, model, batch, weight), batch.targets), batch.mask);
  return tf.div(tf.sum(error), batch.tokens * model.config.hiddenSize) as tf.Scalar;
}

function validate(kind: TrainedKind, model: ModelShape, pairs: PairReader, indices: number[], batchSize: number, weight: (name: string) => tf.Tensor) {
  let errorSum = 0;
  let cosineSum = 0;
  let tokens = 0;
  for (let first = 0; first < indices.length; first += batchSize) {
    const batch = loadBatch(pairs, indices.slice(first, first + batchSize));
    const [error, cosine] = tf.tidy(() => {
      const output = predict(kind, model, batch, weight);
      const squared = tf.sum(tf.mul(tf.squaredDifference(output, batch.targets), batch.mask));
      const cosines = tf.div(tf.sum(tf.mul(output, batch.targets), -1, true), tf.maximum(tf.mul(tf.norm(output, 'euclidean', -1, true), tf.norm(batch.targets, 'euclidean', -1, true)), 1e-12));
      return [squared.dataSync()[0], tf.sum(tf.mul(cosines, batch.mask)).dataSync()[0]];
    });
    errorSum += error;
    cosineSum += cosine;
    tokens += batch.tokens;
    batch.dispose();
  }
  return { loss: errorSum / (tokens * model.config.hiddenSize), cosine: cosineSum / tokens };
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

function toTraining(t: HostTensor): tf.Tensor {
  const tensor = tf.tensor(t.data, [...t.shape], 'float32');
  if (t.shape.length !== 2) return tensor;
  const transposed = tf.transpose(tensor);
  tensor.dispose();
  return transposed;
}

function toHost(t: tf.Tensor): HostTensor {
  const host = t.rank === 2 ? tf.tidy(() => tf.transpose(t)) : t;
  const result = { shape: host.shape, data: host.dataSync() as Float32Array };
  if (host !== t) host.dispose();
  return { shape: [...result.shape], data: Float32Array.from(result.data) };
}

function snapshot(params: ReadonlyMap<string, tf.Variable>): Map<string, HostTensor> {
  return new Map([...params].map(([name, p]) => [name, toHost(p)]));
}

// Checkpoints: dir/checkpoint/{state.json, tensors.safetensors}, replaced through checkpoint.tmp so a
// crash mid-write leaves the previous checkpoint intact.
function saveCheckpoint(dir: string, state: TrainingState, params: ReadonlyMap<string, tf.Variable>, optimizer: AdamW, best: Map<string, HostTensor> | null): void {
  const tmp = join(dir, 'checkpoint.tmp');
  const final = join(dir, 'checkpoint');
  const old = join(dir, 'checkpoint.old');
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  // Stored exactly as trained (matrices [in, out]); only this module reads them.
  const raw = (t: tf.Tensor): HostTensor => ({ shape: [...t.shape], data: Float32Array.from(t.dataSync() as Float32Array) });
  const tensors = [];
  for (const [name, p] of params) {
    tensors.push({ name: `param.${name}`, tensor: raw(p) });
    tensors.push({ name: `m.${name}`, tensor: raw(optimizer.firstMoments.get(name)!) });
    tensors.push({ name: `v.${name}`, tensor: raw(optimizer.secondMoments.get(name)!) });
  }
  for (const [name, t] of best ?? []) tensors.push({ name: `best.${name}`, tensor: t });
  writeSafetensors(join(tmp, 'tensors.safetensors'), tensors, 'F32');
  writeFileSync(join(tmp, 'state.json'), JSON.stringify(state));
  rmSync(old, { recursive: true, force: true });
  if (existsSync(final)) renameSync(final, old);
  renameSync(tmp, final);
  rmSync(old, { recursive: true, force: true });
}

function loadCheckpoint(dir: string, key: string, params: Map<string, tf.Variable>, optimizer: AdamW): { state: TrainingState; best: Map<string, HostTensor> | null } | null {
  // A crash between the two renames leaves only checkpoint.old.
  const found = [join(dir, 'checkpoint'), join(dir, 'checkpoint.old')].find((path) => existsSync(join(path, 'state.json')) && existsSync(join(path, 'tensors.safetensors')));
  if (!found) return null;
  let state: TrainingState;
  try {
    state = JSON.parse(readFileSync(join(found, 'state.json'), 'utf8'));
  } catch {
    return null;
  }
  if (state.key !== key) return null;
  const file = SafetensorsFile.open(join(found, 'tensors.safetensors'));
  try {
    const read = (name: string) => {
      const t = file.read(name);
      return tf.tensor(t.data, [...t.shape], 'float32');
    };
    for (const [name, p] of params) {
      const value = read(`param.${name}`);
      p.assign(value);
      value.dispose();
      optimizer.firstMoments.get(name)!.dispose();
      optimizer.secondMoments.get(name)!.dispose();
      optimizer.firstMoments.set(name, read(`m.${name}`));
      optimizer.secondMoments.set(name, read(`v.${name}`));
    }
    optimizer.step = state.optimizerStep;
    let best: Map<string, HostTensor> | null = null;
    if (file.has(`best.${[...params.keys()][0]}`)) best = new Map([...params.keys()].map((name) => [name, file.read(`best.${name}`)]));
    return { state, best };
  } finally {
    file.close();
  }
}
