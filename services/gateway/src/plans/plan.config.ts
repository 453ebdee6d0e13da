/**
 * Turns a CreatePruningPlanInput into the plan's stored settings: every field checked against the model
 * it prunes, every default filled in (the engine's own defaults), so that `PruningPlan.config` says
 * exactly what a worker will run.
 */
import { badInput } from '../errors.js';
import { blockSizeForSparsity, checkReplacementFits, DEFAULT_CALIBRATION, DEFAULT_EVALUATION_WINDOWS, DEFAULT_RUN, DEFAULT_TRAINING, EngineError, type ModelInfo } from '../engine.js';
import type { Model } from '../models/model.type.js';
import { parseSourceUri } from '../source-uri.js';
import { checkInteger, checkNumber } from '../validation.js';
import type { CreatePruningPlanInput, DatasetInput, EvaluationInput, TrainingInput } from './plan.input.js';
import { ReplacementKind } from './plan.type.js';

export const DATASET_SCHEMES = ['file://', 's3://'] as const;
const TEXT_EXTENSIONS = ['.txt', '.jsonl'] as const;

export interface DatasetConfig {
  readonly source: string;
  readonly samples: number;
  readonly seqLen: number;
}

export interface PlanConfig {
  readonly layersToPrune: number;
  readonly targetSparsity: number | null;
  /** The sparsity the chosen block size gives (before any replacement is inserted), when the target was given. */
  readonly estimatedSparsity: number | null;
  readonly startLayer: number | null;
  readonly replacement: ReplacementKind;
  readonly dryRun: boolean;
  readonly calibration: DatasetConfig;
  readonly training: {
    readonly samples: number;
    /** null: as many epochs as it takes to make at least `minSteps` optimizer steps. */
    readonly epochs: number | null;
    readonly minSteps: number;
    readonly batchSize: number;
    readonly learningRate: number;
    readonly minLearningRate: number;
    readonly weightDecay: number;
    readonly warmupRatio: number;
    readonly gradientAccumulation: number;
    readonly maxGradNorm: number;
    readonly validationFraction: number;
    readonly seed: number;
    readonly checkpointEvery: number;
  };
  readonly evaluation: {
    readonly perplexity: DatasetConfig[];
    readonly tasks: string[];
    readonly limit: number | null;
  };
}

export interface PlanConfigContext {
  readonly model: Model;
  /** The model inspected again now (config only): block arithmetic and replacement checks need its family. */
  readonly info: ModelInfo;
  /** Used when the input has no calibration dataset; null means the input must give one. */
  readonly defaultCalibrationSource: string | null;
}

export function resolvePlanConfig(input: CreatePruningPlanInput, context: PlanConfigContext): PlanConfig {
  const { info } = context;
  const numLayers = info.config.numLayers;
  const contextLength = info.config.maxPositionEmbeddings;
  const replacement = input.replacement ?? ReplacementKind.LAYER;
  if (!Object.values(ReplacementKind).includes(replacement)) {
    throw badInput('input.replacement', `${JSON.stringify(replacement)} is not one of ${Object.values(ReplacementKind).join(', ')}`);
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
  const calibration = resolveDataset('input.calibration', calibrationInput, DEFAULT_CALIBRATION, contextLength);

  return {
    layersToPrune,
    targetSparsity: hasSparsity ? input.targetSparsity! : null,
    estimatedSparsity,
    startLayer,
    replacement,
    dryRun: input.dryRun ?? false,
    calibration,
    training: resolveTraining(input.training ?? {}, calibration),
    evaluation: resolveEvaluation(input.evaluation ?? {}, contextLength),
  };
}

function resolveDataset(field: string, input: Pick<DatasetInput, 'source'> & Partial<DatasetInput>, defaults: { samples: number; seqLen: number }, contextLength: number): DatasetConfig {
  checkDataSource(`${field}.source`, input.source, TEXT_EXTENSIONS);
  return {
    source: input.source,
    samples: checkInteger(`${field}.samples`, input.samples ?? defaults.samples, 1),
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

/** Every dataset of the plan, with the input field each came from. */
export function planDatasets(config: PlanConfig): { field: string; uri: string; extensions: readonly string[] }[] {
  const all = [
    { field: 'input.calibration.source', uri: config.calibration.source, extensions: TEXT_EXTENSIONS },
    ...config.evaluation.perplexity.map((d, i) => ({ field: `input.evaluation.perplexity[${i}].source`, uri: d.source, extensions: TEXT_EXTENSIONS })),
    ...config.evaluation.tasks.map((uri, i) => ({ field: `input.evaluation.tasks[${i}]`, uri, extensions: ['.jsonl'] as const })),
  ];
  return all;
}

function resolveTraining(input: TrainingInput, calibration: DatasetConfig): PlanConfig['training'] {
  const field = (name: string) => `input.training.${name}`;
  const learningRate = checkNumber(field('learningRate'), input.learningRate ?? DEFAULT_TRAINING.learningRate, { min: 0, minExclusive: true });
  const minLearningRate = checkNumber(field('minLearningRate'), input.minLearningRate ?? Math.min(DEFAULT_TRAINING.minLearningRate, learningRate), {
    min: 0,
    max: learningRate,
  });
  return {
    samples: checkInteger(field('samples'), input.samples ?? calibration.samples, 1),
    epochs: input.epochs === undefined || input.epochs === null ? null : checkInteger(field('epochs'), input.epochs, 1),
    minSteps: DEFAULT_TRAINING.minSteps,
    batchSize: checkInteger(field('batchSize'), input.batchSize ?? DEFAULT_RUN.batchSize, 1),
    learningRate,
    minLearningRate,
    weightDecay: checkNumber(field('weightDecay'), input.weightDecay ?? DEFAULT_TRAINING.weightDecay, { min: 0 }),
    warmupRatio: checkNumber(field('warmupRatio'), input.warmupRatio ?? DEFAULT_RUN.warmupRatio, { min: 0, max: 1, maxExclusive: true }),
    gradientAccumulation: checkInteger(field('gradientAccumulation'), input.gradientAccumulation ?? DEFAULT_TRAINING.gradAccum, 1),
    maxGradNorm: checkNumber(field('maxGradNorm'), input.maxGradNorm ?? DEFAULT_TRAINING.gradClip, { min: 0, minExclusive: true }),
    validationFraction: checkNumber(field('validationFraction'), input.validationFraction ?? DEFAULT_RUN.validationFraction, { min: 0, max: 1, maxExclusive: true }),
    seed: checkInteger(field('seed'), input.seed ?? DEFAULT_RUN.seed, 0),
    checkpointEvery: DEFAULT_TRAINING.checkpointEvery,
  };
}

function resolveEvaluation(input: EvaluationInput, contextLength: number): PlanConfig['evaluation'] {
  const perplexity = (input.perplexity ?? []).map((dataset, i) => resolveDataset(`input.evaluation.perplexity[${i}]`, dataset, DEFAULT_EVALUATION_WINDOWS, contextLength));
  const tasks = input.tasks ?? [];
  tasks.forEach((task, i) => checkDataSource(`input.evaluation.tasks[${i}]`, task, ['.jsonl']));
  const limit = input.limit === undefined || input.limit === null ? null : checkInteger('input.evaluation.limit', input.limit, 1);
  return { perplexity, tasks, limit };
}

