/**
 * Evaluation of an original model and, optionally, its pruned version on the same inputs: perplexity on
 * held-out text windows, multiple-choice accuracy in perplexity mode, agreement and stability between
 * the two, and the forward-pass latency of each.
 *
 * The models are run one at a time — create a runtime, score everything, dispose it — so two models are
 * never resident in a runtime together. Every input is checked before the first model runs.
 */
import { basename } from 'node:path';
import { EngineError, throwIfCancelled } from '../errors.js';
import type { LoadedModel } from '../models/model.js';
import type { ModelConfig } from '../models/architecture.js';
import { createRuntime, type RuntimeOptions } from '../runtime/create-runtime.js';
import { makeBatch, type ForwardRuntime } from '../runtime/runtime.js';
import type { Tokenizer } from '../tokenizers/tokenizer.js';
import { heldOutStart, type CalibrationSource } from '../data/held-out.js';
import { checkMultipleChoiceTask, scoreMultipleChoice, type MultipleChoiceResult } from './multiple-choice.js';
import { computePerplexity, loadTextWindows, type PerplexityResult } from './perplexity.js';
import { checkTokenIds } from './sequence-nll.js';
import { computeAgreement, computeStability, stabilityEffectiveItems } from './stability.js';
import { DEFAULT_EVALUATION_SEQ_LEN, DEFAULT_SKIP_WINDOWS, DEFAULT_TEXT_WINDOWS } from './defaults.js';

export { DEFAULT_EVALUATION_SEQ_LEN } from './defaults.js';

export type EvaluatedModel = 'original' | 'pruned' | 'pruned before healing';

export interface EvaluationProgress {
  readonly model: EvaluatedModel;
  readonly phase: 'perplexity' | 'task' | 'latency';
  /** The text or task file (absent for latency). */
  readonly file?: string;
  /** Windows (perplexity), items (task) or timed passes (latency) done so far, out of `total`. */
  readonly done: number;
  readonly total: number;
}

/** One text for perplexity: a path, or a path with its own window count and length. */
export type EvaluationText = string | { readonly path: string; readonly samples?: number | null; readonly seqLen?: number | null };
/**
 * A model to evaluate: loaded (run by `createRuntime`), or described with a way to open it — a
 * layer-streamed runtime over its files, a pruned model that reads its layers from the source's.
 */
export type EvaluatedModelSource = LoadedModel | OpenableModel;

export interface OpenableModel {
  readonly path: string;
  readonly numParameters: number;
  readonly config: ModelConfig;
  open(): Promise<ForwardRuntime>;
}

export interface EvaluateOptions {
  readonly original: EvaluatedModelSource;
  readonly pruned?: EvaluatedModelSource;
  /** A healed pruned model's version before healing: scored on the perplexity texts only (`prunedBeforeHealing`). */
  readonly beforeHealing?: EvaluatedModelSource;
  readonly tokenizer: Tokenizer;
  /**
   * Text files (.txt, or .jsonl as calibration data reads them) for perplexity: paths, or paths with
   * their own window count (`samples`, instead of `textWindows`) and window length (`seqLen`).
   */
  readonly texts: readonly EvaluationText[];
  /** Multiple-choice JSONL files. */
  readonly tasks: readonly string[];
  /** Score only the first `limit` items of each task. */
  readonly limit?: number;
  /** Tokens per perplexity window; default 256, or the models' context when shorter. */
  readonly seqLen?: number;
  /** Held-out windows per text file; default 64. */
  readonly textWindows?: number;
  /**
   * The calibration the evaluated model was pruned with. A text that IS this file (same bytes, by
   * sha256, whatever its path) skips the calibration windows; every other text is held out from its
   * first window. Given, it replaces `skipWindows`.
   */
  readonly calibration?: CalibrationSource;
  /** Without `calibration`: windows skipped at the start of every text file; default 32. */
  readonly skipWindows?: number;
  /** Sequences per forward pass; default 8 perplexity windows, 16 multiple-choice sequences. */
  readonly batchSize?: number;
  /** Time each model's forward pass; default true when there is a pruned model. */
  readonly latency?: boolean;
  readonly runtime?: RuntimeOptions;
  readonly onProgress?: (progress: EvaluationProgress) => void;
  readonly signal?: AbortSignal;
  /**
   * The original's scores shared by calls that evaluate it on the same texts, tasks and settings (a
   * sweep's candidates): the first call fills it, the others reuse it instead of scoring the original again.
   */
  readonly originalScores?: { scores?: ModelScores };
}

export interface ModelSummary {
  readonly path: string;
  readonly numParameters: number;
  readonly numLayers: number;
}

export interface PerplexityFigures {
  readonly perplexity: number;
  /** Mean next-token NLL, nats per token. */
  readonly meanNll: number;
}

export interface PerplexityReport {
  readonly file: string;
  readonly windows: number;
  /**
   * Windows of this text's seq-len skipped at its start: the calibration ones when the text is the
   * calibration source, 0 for a distinct (held-out) file; `skipWindows` for every text when no
   * calibration was given.
   */
  readonly skippedCalibrationWindows: number;
  /** Tokens per window. */
  readonly seqLen: number;
  /** Predicted tokens (windows × (seqLen − 1)). */
  readonly tokens: number;
  readonly original: PerplexityFigures;
  readonly pruned?: PerplexityFigures;
  /** A healed pruned model before healing (the fitted replacement). */
  readonly prunedBeforeHealing?: PerplexityFigures;
}

export interface TaskItemReport {
  readonly index: number;
  readonly gold: number;
  readonly predOriginal: number;
  readonly predPruned?: number;
  /** The original model's per-choice perplexities (what stability weights are computed from). */
  readonly scoresOriginal: number[];
  readonly scoresPruned?: number[];
}

export interface TaskReport {
  /** The file's name without .jsonl. */
  readonly task: string;
  readonly file: string;
  /** How many items were scored. */
  readonly numItems: number;
  /** Prediction = lowest per-choice perplexity (mean NLL of the continuation). */
  readonly accuracyOriginal: number;
  /** Prediction = lowest summed NLL of the continuation. */
  readonly accuracyOriginalSummed: number;
  readonly accuracyPruned?: number;
  readonly accuracyPrunedSummed?: number;
  /** Fraction of items where both models predict the same choice. */
  readonly agreement?: number;
  /** The paper's stability (see stability.ts). */
  readonly stability?: number;
  /**
   * 1 / Σ w_i²: how many items stability effectively rests on. exp(σ) weights on raw perplexities often
   * give one item nearly all the weight, and then stability is about 0 or 1 (see stability.ts).
   */
  readonly stabilityEffectiveItems?: number;
  readonly items: TaskItemReport[];
}

export interface LatencyReport {
  readonly original: { readonly msPerBatch: number };
  readonly pruned: { readonly msPerBatch: number };
  /** original ms / pruned ms. */
  readonly speedup: number;
  /** What was timed: the median of `passes` forward passes of this batch, after one warm-up pass. */
  readonly batch: { readonly batchSize: number; readonly seqLen: number; readonly passes: number };
}

export interface EvaluationReport {
  readonly models: { readonly original: ModelSummary; readonly pruned?: ModelSummary };
  /** The runtime the forward passes ran on. */
  readonly backend: string;
  /**
   * `skipWindows`: with a calibration, its windows (skipped only in the calibration file itself, see each
   * text's `skippedCalibrationWindows`); without one, the windows skipped at the start of every text.
   */
  readonly settings: { readonly seqLen: number; readonly textWindows: number; readonly skipWindows: number; readonly limit: number | null };
  readonly perplexity: PerplexityReport[];
  readonly tasks: TaskReport[];
  /** Means over the tasks; absent when no task was evaluated. */
  readonly averages?: { readonly accuracyOriginal: number; readonly accuracyPruned?: number; readonly agreement?: number; readonly stability?: number };
  readonly latency?: LatencyReport;
}

/** What latency times: the median of `passes` forward passes of this batch of seeded random tokens. */
export const LATENCY_BATCH = { batchSize: 4, seqLen: 128, passes: 5 };

/** Everything one model produced. */
export interface ModelScores {
  readonly backend: string;
  readonly perplexity: PerplexityResult[];
  readonly tasks: MultipleChoiceResult[];
  readonly msPerBatch?: number;
}

export async function evaluateModels(options: EvaluateOptions): Promise<EvaluationReport> {
  const { original, pruned, tokenizer, tasks } = options;
  if (options.texts.length === 0 && tasks.length === 0) throw new EngineError('BAD_INPUT', 'evaluation needs at least one text file (perplexity) or task file (multiple choice)');
  const vocabSize = original.config.vocabSize;
  if (pruned && pruned.config.vocabSize !== vocabSize) {
    throw new EngineError('BAD_INPUT', `the pruned model's vocabulary (${pruned.config.vocabSize}) differs from the original's (${vocabSize}); they must share one tokenizer`);
  }
  const maxPositions = Math.min(original.config.maxPositionEmbeddings, pruned?.config.maxPositionEmbeddings ?? Infinity);
  const seqLen = options.seqLen ?? Math.min(DEFAULT_EVALUATION_SEQ_LEN, maxPositions);
  if (!(Number.isInteger(seqLen) && seqLen >= 2 && seqLen <= maxPositions)) {
    throw new EngineError('BAD_INPUT', `seq-len must be an integer from 2 to ${maxPositions} (the models' context), got ${seqLen}`);
  }
  const textWindows = options.textWindows ?? DEFAULT_TEXT_WINDOWS;
  const skipWindows = options.skipWindows ?? DEFAULT_SKIP_WINDOWS;
  const textSpecs = options.texts.map((text, i) => {
    const spec = typeof text === 'string' ? { path: text } : text;
    const specSeqLen = spec.seqLen ?? seqLen;
    const specWindows = spec.samples ?? textWindows;
    if (!(Number.isInteger(specSeqLen) && specSeqLen >= 2 && specSeqLen <= maxPositions)) {
      throw new EngineError('BAD_INPUT', `texts[${i}].seqLen must be an integer from 2 to ${maxPositions} (the models' context), got ${specSeqLen}`);
    }
    if (!(Number.isInteger(specWindows) && specWindows >= 1)) throw new EngineError('BAD_INPUT', `texts[${i}].samples must be a positive integer, got ${specWindows}`);
    return { path: spec.path, seqLen: specSeqLen, windows: specWindows, skipWindows };
  });
  // With the calibration known, only the calibration file itself skips its calibration windows.
  if (options.calibration) {
    for (const spec of textSpecs) spec.skipWindows = await heldOutStart(spec.path, spec.seqLen, options.calibration);
  }
  const texts = textSpecs.map((spec) => spec.path);

  // Read and check every input before any model runs: a bad task file should not cost a model's run.
  const windowsPerText: number[][][] = [];
  for (const spec of textSpecs) {
    const windows = await loadTextWindows(spec.path, tokenizer, { seqLen: spec.seqLen, windows: spec.windows, skipWindows: spec.skipWindows, vocabSize });
    windows.forEach((window) => checkTokenIds(window, vocabSize, spec.path));
    windowsPerText.push(windows);
  }
  const itemsPerTask: number[] = [];
  for (const task of tasks) itemsPerTask.push(await checkMultipleChoiceTask(task, options.limit));

  const wantLatency = options.latency ?? pruned !== undefined;
  const latencyBatch = { ...LATENCY_BATCH, seqLen: Math.min(LATENCY_BATCH.seqLen, maxPositions) };
  const scoreModel = async (model: EvaluatedModelSource, which: EvaluatedModel, perplexityOnly = false): Promise<ModelScores> => {
    const report = (progress: Omit<EvaluationProgress, 'model'>) => options.onProgress?.({ model: which, ...progress });
    const runtime = 'open' in model ? await model.open() : await createRuntime(model, options.runtime);
    try {
      const perplexity: PerplexityResult[] = [];
      for (let t = 0; t < texts.length; t++) {
        throwIfCancelled(options.signal, 'evaluation');
        perplexity.push(
          await computePerplexity(runtime, windowsPerText[t], {
            batchSize: options.batchSize,
            signal: options.signal,
            onProgress: (p) => report({ phase: 'perplexity', file: texts[t], done: p.windowsDone, total: p.windows }),
          }),
        );
      }
      const taskResults: MultipleChoiceResult[] = [];
      for (let t = 0; t < (perplexityOnly ? 0 : tasks.length); t++) {
        throwIfCancelled(options.signal, 'evaluation');
        taskResults.push(
          await scoreMultipleChoice(runtime, tokenizer, tasks[t], {
            limit: options.limit,
            batchSize: options.batchSize,
            maxPositions, // the shorter context of the two, so both models score the same tokens
            vocabSize,
            signal: options.signal,
            onProgress: (p) => report({ phase: 'task', file: tasks[t], done: p.itemsDone, total: itemsPerTask[t] }),
          }),
        );
      }
      const msPerBatch = wantLatency && !perplexityOnly ? await timeForwardPass(runtime, vocabSize, latencyBatch, report) : undefined;
      return { backend: runtime.description, perplexity, tasks: taskResults, msPerBatch };
    } finally {
      await runtime.dispose();
    }
  };

  const originalScores = options.originalScores?.scores ?? (await scoreModel(original, 'original'));
  if (options.originalScores) options.originalScores.scores = originalScores;
  const prunedScores = pruned ? await scoreModel(pruned, 'pruned') : undefined;
  const unhealedScores = options.beforeHealing ? await scoreModel(options.beforeHealing, 'pruned before healing', true) : undefined;
  const settings = { seqLen, textWindows, skipWindows: options.calibration ? options.calibration.windows : skipWindows, limit: options.limit ?? null };
  return buildReport(options, textSpecs, { original: originalScores, pruned: prunedScores, beforeHealing: unhealedScores }, settings, windowsPerText, latencyBatch);
}

function buildReport(
  options: EvaluateOptions,
  textSpecs: readonly { readonly path: string; readonly seqLen: number; readonly skipWindows: number }[],
  scores: { readonly original: ModelScores; readonly pruned?: ModelScores; readonly beforeHealing?: ModelScores },
  settings: EvaluationReport['settings'],
  windowsPerText: number[][][],
  latencyBatch: LatencyReport['batch'],
): EvaluationReport {
  const { original: originalScores, pruned: prunedScores, beforeHealing: unhealedScores } = scores;
  const summary = (model: EvaluatedModelSource): ModelSummary => ({ path: model.path, numParameters: model.numParameters, numLayers: model.config.numLayers });
  const figures = (result: PerplexityResult): PerplexityFigures => ({ perplexity: result.perplexity, meanNll: result.meanNll });

  const perplexity: PerplexityReport[] = textSpecs.map(({ path: file, seqLen, skipWindows }, t) => ({
    file,
    windows: windowsPerText[t].length,
    skippedCalibrationWindows: skipWindows,
    seqLen,
    tokens: originalScores.perplexity[t].tokens,
    original: figures(originalScores.perplexity[t]),
    ...(prunedScores && { pruned: figures(prunedScores.perplexity[t]) }),
    ...(unhealedScores && { prunedBeforeHealing: figures(unhealedScores.perplexity[t]) }),
  }));

  const tasks: TaskReport[] = options.tasks.map((file, t) => {
    const originalTask = originalScores.tasks[t];
    const prunedTask = prunedScores?.tasks[t];
    const items: TaskItemReport[] = originalTask.items.map((item, i) => ({
      index: item.index,
      gold: item.gold,
      predOriginal: item.prediction,
      ...(prunedTask && { predPruned: prunedTask.items[i].prediction }),
      scoresOriginal: item.perplexities,
      ...(prunedTask && { scoresPruned: prunedTask.items[i].perplexities }),
    }));
    return {
      task: basename(file).replace(/\.jsonl$/, ''),
      file,
      numItems: items.length,
      accuracyOriginal: originalTask.accuracy,
      accuracyOriginalSummed: originalTask.accuracySummed,
      ...(prunedTask && {
        accuracyPruned: prunedTask.accuracy,
        accuracyPrunedSummed: prunedTask.accuracySummed,
        agreement: computeAgreement(originalTask.items.map((item, i) => ({ predOriginal: item.prediction, predPruned: prunedTask.items[i].prediction }))),
        stability: recomputeStability(items),
        stabilityEffectiveItems: stabilityEffectiveItems(items.map((item) => item.scoresOriginal)),
      }),
      items,
    };
  });

  const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
  const averages =
    tasks.length === 0
      ? undefined
      : {
          accuracyOriginal: mean(tasks.map((task) => task.accuracyOriginal)),
          ...(prunedScores && {
            accuracyPruned: mean(tasks.map((task) => task.accuracyPruned!)),
            agreement: mean(tasks.map((task) => task.agreement!)),
            stability: mean(tasks.map((task) => task.stability!)),
          }),
        };

  let latency: LatencyReport | undefined;
  if (originalScores.msPerBatch !== undefined && prunedScores?.msPerBatch !== undefined) {
    latency = {
      original: { msPerBatch: originalScores.msPerBatch },
      pruned: { msPerBatch: prunedScores.msPerBatch },
      speedup: originalScores.msPerBatch / prunedScores.msPerBatch,
      batch: latencyBatch,
    };
  }

  return {
    models: { original: summary(options.original), ...(options.pruned && { pruned: summary(options.pruned) }) },
    backend: originalScores.backend,
    settings,
    perplexity,
    tasks,
    ...(averages && { averages }),
    ...(latency && { latency }),
  };
}

/**
 * Stability of a task from its reported items alone: what a reader of the report can check. Every item
 * needs predPruned.
 */
export function recomputeStability(items: readonly TaskItemReport[]): number {
  return computeStability(
    items.map((item) => {
      if (item.predPruned === undefined) throw new EngineError('BAD_INPUT', `item ${item.index} has no pruned prediction; stability compares two models`);
      return { gold: item.gold, predOriginal: item.predOriginal, predPruned: item.predPruned, scoresOriginal: item.scoresOriginal };
    }),
  );
}

/** Median wall time of forward passes over one fixed batch of random tokens, after a warm-up pass. */
export async function timeForwardPass(
  runtime: ForwardRuntime,
  vocabSize: number,
  latencyBatch: LatencyReport['batch'],
  report: (progress: Omit<EvaluationProgress, 'model'>) => void,
): Promise<number> {
  // The same seeded tokens for every model, so both time identical work.
  let state = 0x2545f491;
  const nextRandom = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
  const sequences = Array.from({ length: latencyBatch.batchSize }, () => Array.from({ length: latencyBatch.seqLen }, () => Math.floor(nextRandom() * vocabSize)));
  const batch = makeBatch(sequences);
  await runtime.forward(batch, { logits: true }); // warm-up: session creation, first-run allocations
  const times: number[] = [];
  for (let pass = 0; pass < latencyBatch.passes; pass++) {
    const started = performance.now();
    await runtime.forward(batch, { logits: true });
    times.push(performance.now() - started);
    report({ phase: 'latency', done: pass + 1, total: latencyBatch.passes });
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}
