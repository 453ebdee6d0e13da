/**
 * A pruning plan as the gateway stores it, run by the engine: the bridge between the API's plan config
 * and `prune` / `computeImportance`. It turns the engine's stages into plan stages with an overall
 * progress fraction (0..1), which workers post as progress events. A dry run profiles every block size
 * and stops; nothing is trained or written.
 */
import { EngineError } from './errors.js';
import { openCalibrationSession } from './calibration-session.js';
import { checkPlanBounds, planBoundsFromEnv, type EvaluationText, type PlanBounds } from './plan-bounds.js';
import { computeImportance, type ImportanceProfile } from './importance.js';
import { formatBytes, prune, type PruneOptions, type PruneStage, type PruneSummary } from './pruning/prune.js';
import type { ReplacementKind } from './pruning/replacement-kinds.js';

export type PlanStage = 'LOADING' | 'PROFILING' | 'COLLECTING' | 'TRAINING' | 'ASSEMBLING' | 'EVALUATING' | 'UPLOADING' | 'DONE';

/**
 * The plan's `config`, defaults filled in (the gateway writes it). runPlan reads local paths; the worker
 * first turns s3:// and hf:// URIs in `model.path`, `model.tokenizer`, `calibration.path` and
 * `evaluation` into local copies (see worker/plan-inputs.ts).
 */
export interface PlanConfig {
  readonly model: { readonly path: string; readonly tokenizer?: string | null };
  readonly layersToPrune?: number | null;
  readonly targetSparsity?: number | null;
  readonly startLayer?: number | null;
  readonly replacement: ReplacementKind;
  readonly dryRun: boolean;
  readonly calibration: { readonly path: string; readonly samples: number; readonly seqLen: number };
  readonly training: {
    readonly epochs?: number | null;
    readonly batchSize: number;
    readonly learningRate: number;
    readonly minLearningRate: number;
    readonly weightDecay: number;
    readonly warmupRatio?: number | null;
    readonly gradientAccumulation: number;
    readonly maxGradNorm: number;
    readonly validationFraction: number;
    readonly seed: number;
    readonly minSteps?: number | null;
    readonly checkpointEvery?: number | null;
  };
  /** Texts for perplexity: paths, or paths with their own window count (`samples`) and `seqLen`. */
  readonly evaluation?: { readonly texts?: readonly EvaluationText[]; readonly tasks?: readonly string[]; readonly limit?: number | null } | null;
  /**
   * Set by the gateway: local inputs must lie under `roots` (real paths) and outside `denied`, checked
   * again by the worker when it opens them; `unconfined` lists the paths the operator vouches for (its
   * default calibration set, a tenant's own plan output). Absent (the engine CLI): no confinement.
   */
  readonly fileAccess?: PlanFileAccess | null;
}

export interface PlanFileAccess {
  readonly roots: readonly string[];
  readonly denied: readonly string[];
  readonly unconfined: readonly string[];
}

export interface PlanEvent {
  readonly stage: PlanStage;
  readonly progress: number;
  readonly message: string;
  readonly step?: number;
  readonly totalSteps?: number;
  readonly loss?: number;
  readonly validationLoss?: number | null;
  readonly learningRate?: number;
  readonly tokensPerSecond?: number;
}

export type PlanOutcome = { readonly dryRun: true; readonly profile: ImportanceProfile } | { readonly dryRun: false; readonly summary: PruneSummary };

/** Where each stage starts on the plan's 0..1 progress scale (training takes the largest share). */
const STAGE_START: Record<PlanStage, number> = {
  LOADING: 0,
  PROFILING: 0.05,
  COLLECTING: 0.15,
  TRAINING: 0.3,
  ASSEMBLING: 0.85,
  EVALUATING: 0.88,
  UPLOADING: 0.97,
  DONE: 1,
};
const ORDER = Object.keys(STAGE_START) as PlanStage[];

export function stageProgress(stage: PlanStage, fraction = 0): number {
  const next = ORDER[ORDER.indexOf(stage) + 1];
  const end = next ? STAGE_START[next] : 1;
  if (fraction >= 1) return end; // exactly, so the next stage never starts below it
  return STAGE_START[stage] + (end - STAGE_START[stage]) * Math.max(0, fraction);
}

export interface RunPlanOptions {
  readonly workDir: string;
  readonly outDir: string;
  readonly onEvent: (event: PlanEvent) => void;
  readonly signal?: AbortSignal;
  /** See PruneOptions: checkpoints kept in an object store, and the model's identity when it was fetched. */
  readonly checkpoints?: PruneOptions['checkpoints'];
  readonly modelFingerprint?: string;
  readonly modelUri?: string;
  /** Checked before anything runs; default: the STREAMLINE_PLAN_MAX_* settings of this process. */
  readonly bounds?: PlanBounds;
}

export async function runPlan(config: PlanConfig, options: RunPlanOptions): Promise<PlanOutcome> {
  const { onEvent, signal } = options;
  const bounds = options.bounds ?? planBoundsFromEnv();
  checkPlanBounds(config, bounds);
  if (config.dryRun) return { dryRun: true, profile: await profileEveryBlockSize(config, onEvent, signal) };
  const t = config.training;
  const summary = await prune({
    modelPath: config.model.path,
    tokenizerPath: config.model.tokenizer ?? undefined,
    dataPath: config.calibration.path,
    workDir: options.workDir,
    outDir: options.outDir,
    layers: config.layersToPrune ?? undefined,
    targetSparsity: config.targetSparsity ?? undefined,
    start: config.startLayer ?? undefined,
    replacement: config.replacement,
    samples: config.calibration.samples,
    seqLen: config.calibration.seqLen,
    batchSize: t.batchSize,
    valFraction: t.validationFraction,
    seed: t.seed,
    training: {
      ...(t.epochs ? { epochs: t.epochs } : {}),
      ...(t.minSteps ? { minSteps: t.minSteps } : {}),
      ...(t.checkpointEvery ? { checkpointEvery: t.checkpointEvery } : {}),
      ...(t.warmupRatio != null ? { warmupRatio: t.warmupRatio } : {}),
      learningRate: t.learningRate,
      minLearningRate: t.minLearningRate,
      weightDecay: t.weightDecay,
      gradAccum: t.gradientAccumulation,
      gradClip: t.maxGradNorm,
    },
    // No limit given: every item of each task, up to the bound on items.
    evaluation: config.evaluation ? { texts: config.evaluation.texts, tasks: config.evaluation.tasks, limit: config.evaluation.limit ?? bounds.maxEvaluationItems } : undefined,
    signal,
    checkpoints: options.checkpoints,
    modelFingerprint: options.modelFingerprint,
    modelUri: options.modelUri,
    onProgress: (event) => {
      const stage = planStage(event.stage);
      const training = event.training;
      onEvent({
        stage,
        progress: stageProgress(stage, training ? training.step / training.totalSteps : 0),
        message: event.message,
        ...(training && {
          step: training.step,
          totalSteps: training.totalSteps,
          loss: training.loss,
          validationLoss: training.validationLoss,
          learningRate: training.learningRate,
          tokensPerSecond: training.tokensPerSecond,
        }),
      });
    },
  });
  return { dryRun: false, summary };
}

/** The engine's EXPORTING is the plan's UPLOADING: writing the output where the plan says. */
function planStage(stage: PruneStage): PlanStage {
  return stage === 'EXPORTING' ? 'UPLOADING' : stage;
}

async function profileEveryBlockSize(config: PlanConfig, onEvent: (event: PlanEvent) => void, signal?: AbortSignal): Promise<ImportanceProfile> {
  onEvent({ stage: 'LOADING', progress: 0, message: `inspecting ${config.model.path}` });
  const { seqLen, samples } = config.calibration;
  // The same calibration session prune() opens: model inspected once, weights streamed layer by layer.
  const session = await openCalibrationSession({ modelPath: config.model.path, tokenizerPath: config.model.tokenizer, dataPath: config.calibration.path, samples, seqLen });
  try {
    const runtime = await session.runtime();
    onEvent({ stage: 'PROFILING', progress: stageProgress('PROFILING'), message: `dry run: scoring every block size on ${runtime.description}` });
    return await computeImportance(runtime, session.info.config.numLayers, session.data, seqLen, {
      batchSize: config.training.batchSize,
      signal,
      onProgress: (p) =>
        onEvent({
          stage: 'PROFILING',
          progress: stageProgress('PROFILING', p.samplesDone / p.samples),
          // Layer-streamed: the layer just computed and the weight bytes read so far.
          message: p.layer === undefined ? `${p.samplesDone}/${p.samples} samples` : `${p.layer < 0 ? 'embeddings' : `layer ${p.layer}/${p.layers! - 1}`}, ${formatBytes(p.bytesRead ?? 0)} read`,
        }),
    });
  } finally {
    await session.close();
  }
}
