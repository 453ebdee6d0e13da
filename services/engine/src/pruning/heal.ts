/**
 * Healing: after the replacement is fitted to the removed block's hidden states (MSE), fine-tune it end to
 * end so that the pruned model's next-token distribution matches the original's — KL(original ‖ pruned)
 * over real tokens of the calibration windows — with gradients reaching only the replacement, through the
 * layers after it, the final norm and the LM head (../training/onnx/healing-graphs.ts).
 *
 * It trains from the hidden-state pairs already on disk: h[s] is the replacement's input, and h[s+n] run
 * through the frozen tail gives the original's logits. Small calibration sets overfit, so a seeded share
 * of the windows is held out (the same windows the MSE stage validates on when the fractions are equal):
 * the validation KL is measured before the first step and every `validationInterval` steps, the best
 * weights are kept (the fitted ones when healing never improves on them), and healing stops after
 * `patience` validations without improvement.
 *
 * With a checkpoint directory, the whole state (weights, AdamW moments, step, best weights and KL,
 * early-stopping counters, validation history) is saved every `every` steps, when cancelled and at the
 * end (trainer-checkpoint.ts); a run started with the same directory and key resumes from it and ends
 * with the weights of an uninterrupted run. The data order needs no saved RNG: each epoch's is seeded.
 */
import { join } from 'node:path';
import { EngineError, throwIfCancelled } from '../errors.js';
import type { HostTensor } from '../formats/host-tensor.js';
import type { TrainedKind } from './replacement.js';
import type { HostBatch, ModelShape } from '../training/trainer.js';
import type { AdamWSettings } from './adamw.js';
import { layerParameters } from './block-choice.js';
import type { PairReader } from './hidden-state-pairs.js';
import { DEFAULT_WARMUP_RATIO } from './defaults.js';
import { learningRateAt, loadBatch, shuffled, toHuggingFace, type TrainingProgress } from './train.js';
import { loadCheckpoint, saveCheckpoint, type CheckpointState } from './trainer-checkpoint.js';

export interface HealingSettings {
  /** Optimizer steps at most (early stopping may end sooner). */
  readonly steps: number;
  /** Learning rate, after a linear warm-up over the first 5 % of the steps. */
  readonly learningRate: number;
  /** Seeded share of the calibration windows held out for early stopping. */
  readonly validationFraction: number;
  /** Validations without improvement before healing stops. */
  readonly patience: number;
}

export interface HealingRecord {
  readonly step: number;
  readonly trainLoss: number | null;
  /** Mean KL(original ‖ pruned) per validation token, in nats. */
  readonly validationKl: number | null;
}

export interface HealingResult {
  /** The best-validation weights (the last ones without a validation split), Hugging Face layout. */
  readonly params: Map<string, HostTensor>;
  readonly steps: number;
  /** The step whose weights were kept (0: the fitted replacement was never improved on). */
  readonly bestStep: number;
  readonly stoppedEarly: boolean;
  /** Validation KL of the fitted replacement and of the kept one (null without a validation split). */
  readonly validationKl: { readonly before: number | null; readonly after: number | null };
  readonly history: HealingRecord[];
  /** The step a checkpoint resumed healing from (null: it started afresh). */
  readonly resumedFromStep: number | null;
}

export interface HealingCheckpoints {
  /** Where they live (`dir/checkpoint`). */
  readonly dir: string;
  /** Identifies the fitted replacement, data and settings; a checkpoint with another key is not resumed. */
  readonly key: string;
  /** Steps between checkpoints. */
  readonly every: number;
  /** Called right after each checkpoint is written, with the directory that holds it. */
  readonly onSaved?: (step: number, checkpointDir: string) => void;
}

/** What healing's state.json holds: all that a resumed run needs to go on as if never stopped. */
interface HealingState extends CheckpointState {
  sinceBest: number;
  /** Train loss summed since the last validation. */
  lossSum: number;
  lossCount: number;
  history: HealingRecord[];
  bestKl: number | null;
  bestStep: number;
}

export interface HealingJob {
  readonly kind: TrainedKind;
  readonly model: ModelShape;
  /** The fitted replacement, Hugging Face layout. */
  readonly initial: ReadonlyMap<string, HostTensor>;
  /** 0-based indices of the original's layers after the replaced block. */
  readonly tailLayers: readonly number[];
  /** The original's tensors as stored (float32). */
  readonly read: (name: string) => HostTensor;
  readonly pairs: PairReader;
  readonly settings: HealingSettings;
  readonly batchSize: number;
  readonly seed: number;
  /** Weight decay and clipping, as the MSE stage used them. */
  readonly optimizer: AdamWSettings;
  readonly threads?: number;
  /** Absent: healing keeps no checkpoint and a stopped run starts again. */
  readonly checkpoints?: HealingCheckpoints;
  readonly signal?: AbortSignal;
  readonly onStart?: (trainer: string) => void;
  readonly onProgress?: (progress: TrainingProgress) => void;
}

/** The seeded held-out share of `count` windows: what the MSE stage and healing validate on. */
export function validationWindows(count: number, fraction: number, seed: number): Set<number> {
  const size = count >= 2 && fraction > 0 ? Math.max(1, Math.round(fraction * count)) : 0;
  return new Set(shuffled([...Array(count).keys()], seed).slice(0, size));
}

/** Validations spread over the run: one every twentieth of the steps. */
export function validationInterval(steps: number): number {
  return Math.max(1, Math.ceil(steps / 20));
}

export function checkHealingSettings(settings: HealingSettings, what = 'healing'): void {
  const problems: string[] = [];
  if (!(Number.isInteger(settings.steps) && settings.steps >= 1)) problems.push(`${what} steps must be a positive integer, got ${settings.steps}`);
  if (!(Number.isFinite(settings.learningRate) && settings.learningRate > 0)) problems.push(`${what} learning rate must be a positive number, got ${settings.learningRate}`);
  if (!(settings.validationFraction >= 0 && settings.validationFraction < 1)) problems.push(`${what} validation fraction must be in [0, 1), got ${settings.validationFraction}`);
  if (!(Number.isInteger(settings.patience) && settings.patience >= 1)) problems.push(`${what} patience must be a positive integer, got ${settings.patience}`);
  if (problems.length > 0) throw new EngineError('BAD_INPUT', problems.join('; '));
}

/**
 * Bytes healing holds at once, roughly: the frozen tail and head in float32 (fed to every run), the
 * replacement 10 times over (its parameters, AdamW moments and gradient buffers, the best-validation and
 * the fitted weights kept for the before-and-after figures), and one micro-batch's activations kept for
 * the backward pass (per tail layer and token ~12·d + 4·f + 2·H·T floats, twice: teacher and student)
 * plus ~6 vocabulary-wide rows per token (logits, log-softmax, their gradients). Measured on a
 * Llama-2-7B-shaped LAYER with one layer after it at 8 × 128 tokens (`bench:scale --heal`): a peak of
 * 9.7 GiB for the whole process against 10.3 GiB here (with 8 copies it said 8.8: under).
 */
export function healingMemoryBytes(model: ModelShape, tailLayers: number, replacementParameters: number, batchSize: number, seqLen: number): number {
  const { config } = model;
  const d = config.hiddenSize;
  const tokens = batchSize * seqLen;
  const perTokenFloats = 2 * tailLayers * (12 * d + 4 * config.intermediateSize + 2 * config.numAttentionHeads * seqLen) + 6 * config.vocabSize;
  const floats = tailLayers * layerParameters(model.family, config) + config.vocabSize * d + d + 10 * replacementParameters + tokens * perTokenFloats;
  return 4 * floats;
}

export async function healReplacement(job: HealingJob): Promise<HealingResult> {
  const { settings, pairs, batchSize } = job;
  checkHealingSettings(settings);
  const count = pairs.manifest.sequences.length;
  const held = validationWindows(count, settings.validationFraction, job.seed);
  const train = [...Array(count).keys()].filter((i) => !held.has(i));
  const validation = [...held].sort((a, b) => a - b);
  if (train.length === 0) throw new EngineError('BAD_INPUT', 'no calibration windows left for healing after its validation split; use more samples or a smaller healing validation fraction');
  const stepsPerEpoch = Math.ceil(train.length / batchSize);
  const epochs = Math.ceil(settings.steps / stepsPerEpoch);
  const warmupSteps = Math.max(1, Math.round(DEFAULT_WARMUP_RATIO * settings.steps));
  const interval = validationInterval(settings.steps);

  const { OnnxReplacementTrainer } = await import('../training/onnx/onnx-trainer.js');
  const trainer = await OnnxReplacementTrainer.createHealing(
    { kind: job.kind, model: job.model, initial: toHuggingFace(new Map(job.initial)) /* → [in, out] */, optimizer: job.optimizer, threads: job.threads },
    { layers: job.tailLayers, read: job.read },
  );
  job.onStart?.(trainer.description);
  const validate = async (): Promise<number | null> => {
    if (validation.length === 0) return null;
    let sum = 0;
    let tokens = 0;
    for (let first = 0; first < validation.length; first += batchSize) {
      const batch: HostBatch = loadBatch(pairs, validation.slice(first, first + batchSize));
      sum += await trainer.klSum(batch);
      tokens += batch.tokens;
    }
    return sum / tokens;
  };

  const resumed = job.checkpoints ? await loadCheckpoint<HealingState>(job.checkpoints.dir, job.checkpoints.key, trainer) : null;
  let state: HealingState;
  let bestParams: Map<string, HostTensor>;
  if (resumed) {
    state = resumed.state;
    bestParams = resumed.best!;
  } else {
    const before = await validate();
    state = { key: job.checkpoints?.key ?? '', step: 0, sinceBest: 0, lossSum: 0, lossCount: 0, history: [{ step: 0, trainLoss: null, validationKl: before }], bestKl: before, bestStep: 0 };
    bestParams = new Map(job.initial);
  }
  const resumedFromStep = resumed ? state.step : null;
  const save = async () => {
    if (!job.checkpoints) return;
    saveCheckpoint(job.checkpoints.dir, state, await trainer.state(), bestParams);
    job.checkpoints.onSaved?.(state.step, join(job.checkpoints.dir, 'checkpoint'));
  };

  try {
    let tokensSeen = 0;
    const started = performance.now();
    let order: number[] = [];
    let orderEpoch = -1;
    while (state.step < settings.steps && (validation.length === 0 || state.sinceBest < settings.patience)) {
      const epoch = Math.floor(state.step / stepsPerEpoch);
      // Each epoch its own seeded order, apart from the MSE stage's.
      if (epoch !== orderEpoch) {
        order = shuffled(train, job.seed * 1_000_003 + 7919 + epoch);
        orderEpoch = epoch;
      }
      const first = (state.step % stepsPerEpoch) * batchSize;
      throwIfCancelled(job.signal, 'healing');
      const batch = loadBatch(pairs, order.slice(first, first + batchSize));
      const loss = await trainer.accumulate(batch);
      // Warm-up, then the rate held: healing is short, and early stopping rather than decay ends it.
      const learningRate = learningRateAt(state.step, settings.steps, warmupSteps, settings.learningRate, settings.learningRate);
      await trainer.step(1, learningRate);
      state.step += 1;
      state.lossSum += loss;
      state.lossCount += 1;
      tokensSeen += batch.tokens;
      const validated = state.step % interval === 0 || state.step === settings.steps;
      const validationKl = validated ? await validate() : null;
      if (validated) {
        state.history.push({ step: state.step, trainLoss: state.lossSum / state.lossCount, validationKl });
        state.lossSum = 0;
        state.lossCount = 0;
        if (validationKl === null || state.bestKl === null || validationKl < state.bestKl) {
          state.bestKl = validationKl;
          state.bestStep = state.step;
          bestParams = toHuggingFace(await trainer.params());
          state.sinceBest = 0;
        } else {
          state.sinceBest += 1;
        }
      }
      job.onProgress?.({
        step: state.step,
        totalSteps: settings.steps,
        epoch: epoch + 1,
        epochs,
        loss,
        validationLoss: state.history.at(-1)!.validationKl,
        learningRate,
        tokensPerSecond: tokensSeen / ((performance.now() - started) / 1000),
      });
      await new Promise((resolve) => setImmediate(resolve)); // let heartbeats and progress reports run
      if (job.checkpoints && state.step % job.checkpoints.every === 0) await save();
    }
    // The end too: a run stopped later (evaluating, exporting) does not heal again.
    if (job.checkpoints && state.step % job.checkpoints.every !== 0) await save();
    const before = state.history[0].validationKl;
    return { params: bestParams, steps: state.step, bestStep: state.bestStep, stoppedEarly: state.step < settings.steps, validationKl: { before, after: state.bestKl }, history: state.history, resumedFromStep };
  } catch (error) {
    // Cancelled (a cancelled plan, a stopping worker): the state is at a step boundary, so save it.
    if (error instanceof EngineError && error.code === 'CANCELLED') await save();
    throw error;
  } finally {
    await trainer.dispose();
  }
}
