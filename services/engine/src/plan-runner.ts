/**
 * A plan as the gateway resolved it (contract/plan-spec.ts), run by the engine: the bridge between the
 * plan contract and `prune` / `computeImportance`, and the one place where a spec's settings become
 * the engine's options and the engine's summary becomes the contract's result (which perplexities are
 * the plan's, what a task's stability is). It turns the engine's stages into plan stages with an overall
 * progress fraction (0..1), which workers post as progress events. A dry run profiles every block size
 * and stops; nothing is trained or written.
 */
import type { PlanEvent } from './contract/plan-event.js';
import type { ImportanceProfileResult, PlanOutcome, PrunedResult } from './contract/plan-result.js';
import type { PlanSpec } from './contract/plan-spec.js';
import type { PlanStage } from './contract/plan-stage.js';
import { openCalibrationSession } from './calibration-session.js';
import { checkPlanBounds, planBoundsFromEnv, type PlanBounds } from './plan-bounds.js';
import { computeImportance, type ImportanceProfile } from './importance.js';
import { formatBytes, prune, type PruneOptions, type PruneSummary } from './pruning/prune.js';

/** A spec with its inputs made local (see worker/plan-inputs.ts). */
export interface LocalPlan {
  readonly spec: PlanSpec;
  readonly model: { readonly path: string; readonly tokenizer: string | null };
  /** Each dataset and task source of the spec (a URI) → the local file that holds it. */
  readonly files: ReadonlyMap<string, string>;
}

/**
 * Where each stage starts on the plan's 0..1 progress scale (training takes the largest share). HEALING
 * has no share unless the plan heals; then it takes the later part of training's.
 */
const STAGE_START: Record<PlanStage, number> = {
  LOADING: 0,
  PROFILING: 0.05,
  COLLECTING: 0.15,
  TRAINING: 0.3,
  HEALING: 0.85,
  ASSEMBLING: 0.85,
  EVALUATING: 0.88,
  UPLOADING: 0.97,
  DONE: 1,
};
const HEALING_START = 0.6;
const ORDER = Object.keys(STAGE_START) as PlanStage[];

export function stageProgress(stage: PlanStage, fraction = 0, heals = false): number {
  const starts = heals ? { ...STAGE_START, HEALING: HEALING_START } : STAGE_START;
  const next = ORDER[ORDER.indexOf(stage) + 1];
  const end = next ? starts[next] : 1;
  if (fraction >= 1) return end; // exactly, so the next stage never starts below it
  return starts[stage] + (end - starts[stage]) * Math.max(0, fraction);
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

export async function runPlan(plan: LocalPlan, options: RunPlanOptions): Promise<PlanOutcome> {
  const { onEvent, signal } = options;
  const { spec } = plan;
  const bounds = options.bounds ?? planBoundsFromEnv();
  checkPlanBounds(spec, bounds);
  if (spec.dryRun) return { dryRun: true, profile: profileResult(await profileEveryBlockSize(plan, onEvent, signal)) };
  const t = spec.training;
  const evaluation = spec.evaluation;
  const summary = await prune({
    modelPath: plan.model.path,
    tokenizerPath: plan.model.tokenizer ?? undefined,
    dataPath: localFile(plan, spec.calibration.source),
    workDir: options.workDir,
    outDir: options.outDir,
    layers: spec.layersToPrune,
    start: spec.startLayer ?? undefined,
    replacement: spec.replacement,
    samples: spec.calibration.samples,
    seqLen: spec.calibration.seqLen,
    batchSize: t.batchSize,
    valFraction: t.validationFraction,
    seed: t.seed,
    training: {
      ...(t.epochs ? { epochs: t.epochs } : {}),
      minSteps: t.minSteps,
      checkpointEvery: t.checkpointEvery,
      warmupRatio: t.warmupRatio,
      learningRate: t.learningRate,
      minLearningRate: t.minLearningRate,
      weightDecay: t.weightDecay,
      gradAccum: t.gradientAccumulation,
      gradClip: t.maxGradNorm,
    },
    healing: spec.healing,
    // No limit given: every item of each task, up to the bound on items.
    evaluation: {
      texts: evaluation.perplexity.map((text) => ({ path: localFile(plan, text.source), samples: text.samples, seqLen: text.seqLen })),
      tasks: evaluation.tasks.map((task) => localFile(plan, task)),
      limit: evaluation.limit ?? bounds.maxEvaluationItems,
    },
    signal,
    checkpoints: options.checkpoints,
    modelFingerprint: options.modelFingerprint,
    modelUri: options.modelUri,
    onProgress: (event) => {
      const training = event.training;
      onEvent({
        stage: event.stage,
        progress: stageProgress(event.stage, training ? training.step / training.totalSteps : 0, spec.healing !== null),
        message: event.message,
        ...(event.layer !== undefined && { layer: event.layer, layers: event.layers, bytesRead: event.bytesRead }),
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
  return { dryRun: false, pruned: prunedResult(spec, summary) };
}

function localFile(plan: LocalPlan, source: string): string {
  const path = plan.files.get(source);
  if (path === undefined) throw new Error(`no local copy of ${source} was made for this plan`);
  return path;
}

function profileResult(profile: ImportanceProfile): ImportanceProfileResult {
  const scores = ({ blockSize, scores }: { blockSize: number; scores: number[] }) => ({ blockSize, scores });
  return {
    samples: profile.samples,
    seqLen: profile.seqLen,
    blocks: profile.blocks.map(scores),
    angularDistance: profile.angularDistance.map(scores),
    blockInfluence: profile.blockInfluence,
  };
}

/**
 * The plan's result from the engine's summary. Perplexity: the full evaluation's texts (named by the
 * spec's sources, in its order), else the prune's quick check on held-out calibration windows. A plan
 * always evaluates the pruned model beside the original, so every pruned figure is there.
 */
function prunedResult(spec: PlanSpec, summary: PruneSummary): PrunedResult {
  const report = summary.report;
  const quick = summary.evaluation;
  const pruned = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`the evaluation has no pruned-model figure for ${what}`);
    return value;
  };
  const texts = (report?.perplexity ?? []).map((p, i) => ({
    dataset: spec.evaluation.perplexity[i]?.source ?? p.file,
    tokens: p.tokens,
    original: p.original.perplexity,
    pruned: pruned(p.pruned, p.file).perplexity,
    prunedBeforeHealing: p.prunedBeforeHealing?.perplexity ?? null,
  }));
  const perplexity =
    texts.length > 0 || !quick
      ? texts
      : [
          {
            dataset: 'calibration data (held-out windows)',
            tokens: quick.tokens,
            original: quick.perplexityOriginal,
            pruned: quick.perplexityPruned,
            prunedBeforeHealing: summary.healing?.perplexity?.before ?? null,
          },
        ];
  return {
    block: { start: summary.block.start, size: summary.block.size },
    removedLayers: summary.removedLayers,
    numParameters: { before: summary.numParameters.before, after: summary.numParameters.after },
    importance: summary.importance && { blockSize: summary.importance.blockSize, scores: summary.importance.scores },
    training: summary.training && { steps: summary.training.steps, resumedFromStep: summary.training.resumedFromStep },
    stability: {
      perplexity,
      tasks: (report?.tasks ?? []).map((t) => ({
        task: t.task,
        samples: t.numItems,
        accuracyOriginal: t.accuracyOriginal,
        accuracyPruned: pruned(t.accuracyPruned, t.task),
        agreement: pruned(t.agreement, t.task),
        stability: pruned(t.stability, t.task),
      })),
      hiddenStateCosine: summary.hiddenStateCosine,
    },
  };
}

async function profileEveryBlockSize(plan: LocalPlan, onEvent: (event: PlanEvent) => void, signal?: AbortSignal): Promise<ImportanceProfile> {
  const { spec } = plan;
  onEvent({ stage: 'LOADING', progress: 0, message: `inspecting ${plan.model.path}` });
  const { seqLen, samples } = spec.calibration;
  // The same calibration session prune() opens: model inspected once, weights streamed layer by layer.
  const session = await openCalibrationSession({ modelPath: plan.model.path, tokenizerPath: plan.model.tokenizer, dataPath: localFile(plan, spec.calibration.source), samples, seqLen });
  try {
    const runtime = await session.runtime();
    onEvent({ stage: 'PROFILING', progress: stageProgress('PROFILING'), message: `dry run: scoring every block size on ${runtime.description}` });
    return await computeImportance(runtime, session.info.config.numLayers, session.data, seqLen, {
      batchSize: spec.training.batchSize,
      signal,
      onProgress: (p) =>
        onEvent({
          stage: 'PROFILING',
          progress: stageProgress('PROFILING', p.samplesDone / p.samples),
          // Layer-streamed: the layer just computed and the weight bytes read so far.
          message: p.layer === undefined ? `${p.samplesDone}/${p.samples} samples` : `${p.layer < 0 ? 'embeddings' : `layer ${p.layer}/${p.layers! - 1}`}, ${formatBytes(p.bytesRead ?? 0)} read`,
          ...(p.layer !== undefined && { layer: p.layer, layers: p.layers, bytesRead: p.bytesRead }),
        }),
    });
  } finally {
    await session.close();
  }
}
