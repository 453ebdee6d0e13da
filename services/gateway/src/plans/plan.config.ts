/**
 * Turns a CreatePruningPlanInput into the plan's spec (the plan contract's PlanSpec, in the API's own
 * names): every field checked against the model it prunes, every default filled in (the engine's own
 * defaults), so that `PruningPlan.config` says exactly what a worker will run.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { badInput } from '../errors.js';
import {
  blockSizeForSparsity,
  checkReplacementFits,
  DEFAULT_PLAN_BOUNDS,
  EngineError,
  PLAN_DEFAULTS,
  PLAN_SPEC_VERSION,
  planSpecSources,
  REPLACEMENT_KINDS,
  ReplacementKind,
  type DatasetSpec,
  type EvaluationSpec,
  type HealingSpec,
  type ModelInfo,
  type PlanBounds,
  type PlanSpec,
  type SweepSpec,
  type TrainingSpec,
  checkSweep,
} from '../engine.js';
import type { Model } from '../models/model.type.js';
import { parseSourceUri } from '../sources/source-uri.js';
import { checkInteger, checkNumber } from '../validation.js';
import type { CreatePruningPlanInput, DatasetInput, EvaluationInput, HealingInput, SweepInput, TrainingInput } from './plan.input.js';

export const DATASET_SCHEMES = ['file://', 's3://'] as const;
const TEXT_EXTENSIONS = ['.txt', '.jsonl'] as const;

export interface PlanSpecContext {
  readonly model: Model;
  /** The model inspected again now (config only): block arithmetic and replacement checks need its family. */
  readonly info: ModelInfo;
  /** Used when the input has no calibration dataset; null means the input must give one. */
  readonly defaultCalibrationSource: string | null;
  /** Upper bounds on the settings (STREAMLINE_PLAN_MAX_*); default the engine's defaults. */
  readonly bounds?: PlanBounds;
}

export function resolvePlanSpec(input: CreatePruningPlanInput, context: PlanSpecContext): PlanSpec {
  if (input.sweep !== undefined && input.sweep !== null) return resolveSweepSpec(input, input.sweep, context);
  const { info } = context;
  const bounds = context.bounds ?? DEFAULT_PLAN_BOUNDS;
  const numLayers = info.config.numLayers;
  const contextLength = info.config.maxPositionEmbeddings;
  const replacement = input.replacement ?? ReplacementKind.LAYER;
  if (!REPLACEMENT_KINDS.includes(replacement)) {
    throw badInput('input.replacement', `${JSON.stringify(replacement)} is not one of ${REPLACEMENT_KINDS.join(', ')}`);
  }
  try {
    checkReplacementFits(replacement, info.family);
  } catch (error) {
    if (error instanceof EngineError) throw badInput('input.replacement', error.message);
    throw error;
  }

  const hasLayers = input.layersToPrune !== undefined && input.layersToPrune !== null;
  const hasSparsity = input.targetSparsity !== undefined && input.targetSparsity !== null;
  if (hasLayers === hasSparsity) {
    throw badInput(
      'input.layersToPrune',
      `give exactly one of layersToPrune (an integer from 1 to ${numLayers - 1}) and targetSparsity (a fraction in (0, 1)); got ${hasLayers ? 'both' : 'neither'}`,
    );
  }
  let layersToPrune: number;
  let estimatedSparsity: number | null = null;
  if (hasLayers) {
    layersToPrune = checkInteger('input.layersToPrune', input.layersToPrune!, 1, numLayers - 1);
  } else {
    const target = checkNumber('input.targetSparsity', input.targetSparsity!, { min: 0, max: 1, minExclusive: true, maxExclusive: true });
    try {
      const choice = blockSizeForSparsity(target, replacement, info.family, info.config, info.numParameters);
      layersToPrune = choice.size;
      estimatedSparsity = choice.sparsity;
    } catch (error) {
      if (error instanceof EngineError) throw badInput('input.targetSparsity', error.message);
      throw error;
    }
  }
  let startLayer: number | null = null;
  if (input.startLayer !== undefined && input.startLayer !== null) {
    const last = numLayers - layersToPrune;
    if (!Number.isInteger(input.startLayer) || input.startLayer < 0 || input.startLayer > last) {
      throw badInput(
        'input.startLayer',
        `${input.startLayer} does not fit: a block of ${layersToPrune} layers in a ${numLayers}-layer model starts at 0 to ${last} (layers are 0-based)`,
      );
    }
    startLayer = input.startLayer;
  }

  const calibrationInput = input.calibration ?? (context.defaultCalibrationSource ? { source: context.defaultCalibrationSource } : null);
  if (!calibrationInput) {
    throw badInput('input.calibration', 'required: this gateway has no default calibration dataset (give input.calibration.source, a file:// URI of a .txt or .jsonl file)');
  }
  const calibration = resolveDataset('input.calibration', calibrationInput, PLAN_DEFAULTS.calibration, contextLength, bounds.maxSamples);
  const training = resolveTraining(input.training ?? {}, calibration, bounds);

  return {
    version: PLAN_SPEC_VERSION,
    layersToPrune,
    targetSparsity: hasSparsity ? input.targetSparsity! : null,
    estimatedSparsity,
    startLayer,
    replacement,
    dryRun: input.dryRun ?? false,
    calibration,
    training,
    healing: input.healing ? resolveHealing(input.healing, replacement, training, bounds) : null,
    evaluation: resolveEvaluation(input.evaluation ?? {}, contextLength, bounds),
  };
}

/**
 * A sweep's spec: the swept sizes and kinds checked against the model and the candidate bound; the
 * block fields describe none (layersToPrune holds the largest size, replacement the first kind).
 */
function resolveSweepSpec(input: CreatePruningPlanInput, sweepInput: SweepInput, context: PlanSpecContext): PlanSpec {
  for (const field of ['layersToPrune', 'targetSparsity', 'startLayer'] as const) {
    if (input[field] !== undefined && input[field] !== null) throw badInput(`input.${field}`, 'not with input.sweep: a sweep chooses its blocks (give sweep.blockSizes and sweep.topStarts)');
  }
  if (input.healing) throw badInput('input.healing', "not with input.sweep: a sweep's candidates are not healed (set input.healing to null)");
  const { info } = context;
  const bounds = context.bounds ?? DEFAULT_PLAN_BOUNDS;
  const numLayers = info.config.numLayers;
  if (sweepInput.blockSizes.length === 0) throw badInput('input.sweep.blockSizes', `give at least one block size from 1 to ${numLayers - 1}`);
  if (sweepInput.replacements.length === 0) throw badInput('input.sweep.replacements', `give at least one of ${REPLACEMENT_KINDS.join(', ')}`);
  const sweep: SweepSpec = {
    blockSizes: [...sweepInput.blockSizes].sort((a, b) => a - b),
    topStarts: checkInteger('input.sweep.topStarts', sweepInput.topStarts ?? 1, 1, numLayers),
    replacements: sweepInput.replacements,
    iterative: sweepInput.iterative ?? false,
  };
  try {
    for (const kind of sweep.replacements) checkReplacementFits(kind, info.family);
    checkSweep(sweep, numLayers, bounds.maxSweepCandidates);
  } catch (error) {
    if (error instanceof EngineError) {
      const field = /^sweep\.(\w+)/.exec(error.message)?.[1];
      throw badInput(field ? `input.sweep.${field}` : 'input.sweep', error.message);
    }
    throw error;
  }
  const single = resolvePlanSpec({ ...input, sweep: null, layersToPrune: Math.max(...sweep.blockSizes), replacement: sweep.replacements[0] }, context);
  return { ...single, sweep };
}

function resolveDataset(
  field: string,
  input: Pick<DatasetInput, 'source'> & Partial<DatasetInput>,
  defaults: { samples: number; seqLen: number },
  contextLength: number,
  maxSamples: number,
): DatasetSpec {
  checkDataSource(`${field}.source`, input.source, TEXT_EXTENSIONS);
  return {
    source: input.source,
    samples: checkInteger(`${field}.samples`, input.samples ?? Math.min(defaults.samples, maxSamples), 1, maxSamples),
    seqLen: checkInteger(`${field}.seqLen`, input.seqLen ?? Math.min(defaults.seqLen, contextLength), 2, contextLength),
  };
}

/** Checked here by name only; the plan service asks where each one lives (confinement, existence: see `planDatasets`). */
function checkDataSource(field: string, source: string, extensions: readonly string[]): void {
  const location = parseSourceUri(field, source, DATASET_SCHEMES);
  const name = location.kind === 'file' ? location.path : location.uri;
  if (!extensions.some((ext) => name.toLowerCase().endsWith(ext))) {
    throw badInput(field, `${JSON.stringify(source)} is not a ${extensions.join(' or ')} file`);
  }
}

/**
 * A local data file (already confined by the source service) must hold some text: an empty or blank
 * one would "calibrate" on BOS tokens alone. Refused here at creation; the engine refuses it too.
 */
export function checkHasTextSamples(field: string, source: string): void {
  const location = parseSourceUri(field, source, DATASET_SCHEMES);
  if (location.kind === 'file' && !hasTextSamples(location.path)) {
    throw badInput(field, `${JSON.stringify(source)} has no text samples: the file is empty, or every line or record in it is blank`);
  }
}

/** Files up to this size are read at creation to see that they hold some text; larger ones are left to the engine. */
const CHECKED_FILE_BYTES = 1 << 20;

/**
 * Whether a local data file holds anything to calibrate or evaluate on: not empty, not only blank lines,
 * and (.jsonl) not only records with blank "text" or empty "input_ids". Cheap: larger files pass here
 * and the engine, which reads them anyway, refuses them the same way.
 */
function hasTextSamples(path: string): boolean {
  let size: number;
  try {
    const stat = statSync(path);
    if (!stat.isFile()) return true; // not this check's business; the engine says what is wrong
    size = stat.size;
  } catch {
    return true;
  }
  if (size === 0) return false;
  if (size > CHECKED_FILE_BYTES) return true;
  const buffer = Buffer.alloc(size);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, buffer, 0, size, 0);
  } finally {
    closeSync(fd);
  }
  const text = buffer.toString('utf8');
  if (text.trim() === '') return false;
  if (!path.toLowerCase().endsWith('.jsonl')) return true;
  return text.split('\n').some((line) => {
    if (line.trim() === '') return false;
    try {
      const record = JSON.parse(line) as { text?: unknown; input_ids?: unknown };
      if (typeof record.text === 'string') return record.text.trim() !== '';
      if (Array.isArray(record.input_ids)) return record.input_ids.length > 0;
      return true; // malformed records (the engine names them), or multiple-choice items
    } catch {
      return true; // not JSON: the engine names the line
    }
  });
}

/** Every dataset and task file of the spec, with the input field each came from and the extensions it may have. */
export function planDatasets(spec: PlanSpec): { field: string; uri: string; extensions: readonly string[] }[] {
  return planSpecSources(spec).map((source) => ({
    field: `input.${source.field}`,
    uri: source.source,
    extensions: source.kind === 'task' ? ['.jsonl'] : TEXT_EXTENSIONS,
  }));
}

function resolveTraining(input: TrainingInput, calibration: DatasetSpec, bounds: PlanBounds): TrainingSpec {
  const field = (name: string) => `input.training.${name}`;
  const defaults = PLAN_DEFAULTS.training;
  // Training uses every calibration window not held out for validation; a different count was never honoured.
  if (input.samples !== undefined && input.samples !== null) {
    const samples = checkInteger(field('samples'), input.samples, 1, bounds.maxSamples);
    if (samples !== calibration.samples) {
      throw badInput(field('samples'), `${samples} differs from input.calibration.samples (${calibration.samples}): training uses the calibration windows (less the validation share); set input.calibration.samples instead`);
    }
  }
  const learningRate = checkNumber(field('learningRate'), input.learningRate ?? defaults.learningRate, { min: 0, minExclusive: true, max: bounds.maxLearningRate });
  const minLearningRate = checkNumber(field('minLearningRate'), input.minLearningRate ?? Math.min(defaults.minLearningRate, learningRate), {
    min: 0,
    max: learningRate,
  });
  return {
    epochs: input.epochs === undefined || input.epochs === null ? null : checkInteger(field('epochs'), input.epochs, 1, bounds.maxEpochs),
    minSteps: checkInteger(field('minSteps'), input.minSteps ?? Math.min(defaults.minSteps, bounds.maxSteps), 1, bounds.maxSteps),
    batchSize: checkInteger(field('batchSize'), input.batchSize ?? Math.min(defaults.batchSize, bounds.maxBatchSize), 1, bounds.maxBatchSize),
    learningRate,
    minLearningRate,
    weightDecay: checkNumber(field('weightDecay'), input.weightDecay ?? defaults.weightDecay, { min: 0, max: bounds.maxWeightDecay }),
    warmupRatio: checkNumber(field('warmupRatio'), input.warmupRatio ?? defaults.warmupRatio, { min: 0, max: 1, maxExclusive: true }),
    gradientAccumulation: checkInteger(field('gradientAccumulation'), input.gradientAccumulation ?? defaults.gradientAccumulation, 1, bounds.maxGradientAccumulation),
    maxGradNorm: checkNumber(field('maxGradNorm'), input.maxGradNorm ?? defaults.maxGradNorm, { min: 0, minExclusive: true, max: bounds.maxGradNorm }),
    validationFraction: checkNumber(field('validationFraction'), input.validationFraction ?? defaults.validationFraction, { min: 0, max: 1, maxExclusive: true }),
    seed: checkInteger(field('seed'), input.seed ?? defaults.seed, 0),
    checkpointEvery: checkInteger(field('checkpointEvery'), input.checkpointEvery ?? defaults.checkpointEvery, 1, bounds.maxSteps),
  };
}

function resolveHealing(input: HealingInput, replacement: ReplacementKind, training: TrainingSpec, bounds: PlanBounds): HealingSpec {
  const field = (name: string) => `input.healing.${name}`;
  if (replacement === ReplacementKind.NONE || replacement === ReplacementKind.LINEAR) {
    throw badInput('input.healing', `healing fine-tunes a trained replacement (FFN, SWIGLU or LAYER); the ${replacement} replacement has nothing to heal (set input.healing to null or choose another replacement)`);
  }
  const defaults = PLAN_DEFAULTS.healing;
  return {
    steps: checkInteger(field('steps'), input.steps ?? Math.min(defaults.steps, bounds.maxSteps), 1, bounds.maxSteps),
    learningRate: checkNumber(field('learningRate'), input.learningRate ?? defaults.learningRate, { min: 0, minExclusive: true, max: bounds.maxLearningRate }),
    // Default: the windows training held out, so early stopping judges on windows no stage trained on.
    validationFraction: checkNumber(field('validationFraction'), input.validationFraction ?? training.validationFraction, { min: 0, max: 1, maxExclusive: true }),
    patience: checkInteger(field('patience'), input.patience ?? defaults.patience, 1),
  };
}

function resolveEvaluation(input: EvaluationInput, contextLength: number, bounds: PlanBounds): EvaluationSpec {
  const texts = input.perplexity ?? [];
  const tasks = input.tasks ?? [];
  if (texts.length > bounds.maxEvaluationTexts) {
    throw badInput('input.evaluation.perplexity', `${texts.length} text datasets is out of range; expected at most ${bounds.maxEvaluationTexts}`);
  }
  if (tasks.length > bounds.maxEvaluationTasks) {
    throw badInput('input.evaluation.tasks', `${tasks.length} tasks is out of range; expected at most ${bounds.maxEvaluationTasks}`);
  }
  const perplexity = texts.map((dataset, i) =>
    resolveDataset(`input.evaluation.perplexity[${i}]`, dataset, PLAN_DEFAULTS.evaluationText, contextLength, bounds.maxEvaluationWindows),
  );
  tasks.forEach((task, i) => checkDataSource(`input.evaluation.tasks[${i}]`, task, ['.jsonl']));
  const limit = input.limit === undefined || input.limit === null ? null : checkInteger('input.evaluation.limit', input.limit, 1, bounds.maxEvaluationItems);
  return { perplexity, tasks, limit };
}

