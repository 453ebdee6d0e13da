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
import { copyFileSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PlanSpec } from './contract/plan-spec.js';
import type { PlanStage } from './contract/plan-stage.js';
import { openCalibrationSession } from './calibration-session.js';
import { checkPlanBounds, planBoundsFromEnv, type PlanBounds } from './plan-bounds.js';
import { computeImportance, type ImportanceProfile } from './importance.js';
import { formatBytes, prune, type PruneEvent, type PruneOptions, type PruneSummary } from './pruning/prune.js';
import { loadTrainedCandidate, sweep, type SweepEvent } from './pruning/sweep.js';
import { estimateSweep } from './pruning/sweep-estimate.js';
import { DEFAULT_EVAL_WINDOWS } from './pruning/defaults.js';
import type { ModelInfo } from './models/model.js';

/** A spec with its inputs made local (see worker/plan-inputs.ts). */
export interface LocalPlan {
  readonly spec: PlanSpec;
  readonly model: { readonly path: string; readonly tokenizer: string | null };
  /** Each dataset and task source of the spec (a URI) → the local file that holds it. */
  readonly files: ReadonlyMap<string, string>;
  /** spec.fromCandidate: the local folder holding that candidate's saved replacement (see sweepOutputFiles). */
  readonly candidateDir?: string;
}

/**
 * A sweep's published outputs: per candidate `candidate-<id>.json` (figures and training record) and
 * `candidate-<id>.safetensors` (its trained replacement; absent for NONE), and `candidates.json`.
 * The object store publishes flat folders, so candidates are files, not folders.
 */
export const sweepOutputFiles = (candidateId: string) => ({ record: `candidate-${candidateId}.json`, weights: `candidate-${candidateId}.safetensors` });

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
  /** Sweeps: a candidate's own cancellation (see SweepOptions.candidateSignal). */
  readonly candidateSignal?: (candidateId: string) => AbortSignal | undefined;
}

export async function runPlan(plan: LocalPlan, options: RunPlanOptions): Promise<PlanOutcome> {
  const { onEvent, signal } = options;
  const { spec } = plan;
  const bounds = options.bounds ?? planBoundsFromEnv();
  checkPlanBounds(spec, bounds);
  if (spec.dryRun) {
    const { profile, model } = await profileEveryBlockSize(plan, onEvent, signal);
    const sweepEstimate = spec.sweep
      ? estimateSweep({ sweep: spec.sweep, profile, model, training: spec.training, samples: spec.calibration.samples, seqLen: spec.calibration.seqLen, evalWindows: DEFAULT_EVAL_WINDOWS })
      : undefined;
    return { dryRun: true, profile: profileResult(profile), ...(sweepEstimate && { sweepEstimate }) };
  }
  const t = spec.training;
  const evaluation = spec.evaluation;
  const common = {
    modelPath: plan.model.path,
    tokenizerPath: plan.model.tokenizer ?? undefined,
    dataPath: localFile(plan, spec.calibration.source),
    workDir: options.workDir,
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
  } satisfies Partial<PruneOptions>;
  if (spec.sweep) {
    const candidatesDir = join(options.workDir, 'candidates');
    // A sweep's candidates are not healed (the API refuses healing with a sweep).
    const summary = await sweep({
      ...common,
      healing: null,
      sweep: spec.sweep,
      maxCandidates: bounds.maxSweepCandidates,
      candidatesDir,
      candidateSignal: options.candidateSignal,
      onProgress: (event) => onEvent(planEvent(event, sweepProgress(event))),
    });
    publishSweep(candidatesDir, options.outDir, summary.candidates);
    return { dryRun: false, sweep: { profile: profileResult(summary.profile), candidates: summary.candidates } };
  }
  const trained = spec.fromCandidate ? loadTrainedCandidate(requireCandidateDir(plan)).trained : undefined;
  const summary = await prune({
    ...common,
    outDir: options.outDir,
    layers: spec.layersToPrune,
    start: spec.startLayer ?? undefined,
    replacement: spec.replacement,
    trained,
    onProgress: (event) => onEvent(planEvent(event, stageProgress(event.stage, event.training ? event.training.step / event.training.totalSteps : 0, spec.healing !== null))),
  });
  return { dryRun: false, pruned: prunedResult(spec, summary) };
}

/** An engine event as the contract's progress event, at `progress` of the whole plan. */
function planEvent(event: PruneEvent & Pick<SweepEvent, 'candidateId'>, progress: number): PlanEvent {
  const training = event.training;
  return {
    stage: event.stage,
    progress,
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
    ...(event.candidateId !== undefined && { candidateId: event.candidateId }),
  };
}

/** A sweep's progress: its candidates share the training-to-evaluation span equally, in order. */
function sweepProgress(event: SweepEvent): number {
  if (!event.candidate) return stageProgress(event.stage);
  const { index, count } = event.candidate;
  const within = event.training ? 0.8 * (event.training.step / event.training.totalSteps) : event.stage === 'ASSEMBLING' ? 0.8 : event.stage === 'EVALUATING' ? 0.9 : 0;
  const from = STAGE_START.TRAINING;
  return from + (STAGE_START.UPLOADING - from) * Math.min(1, (index + within) / count);
}

/** The sweep's candidates as flat files in the output folder (see sweepOutputFiles). */
function publishSweep(candidatesDir: string, outDir: string, candidates: readonly unknown[]): void {
  mkdirSync(outDir, { recursive: true });
  if (existsSync(candidatesDir)) {
    for (const id of readdirSync(candidatesDir)) {
      const names = sweepOutputFiles(id);
      if (existsSync(join(candidatesDir, id, 'candidate.json'))) copyFileSync(join(candidatesDir, id, 'candidate.json'), join(outDir, names.record));
      if (existsSync(join(candidatesDir, id, 'replacement.safetensors'))) copyFileSync(join(candidatesDir, id, 'replacement.safetensors'), join(outDir, names.weights));
    }
  }
  writeFileSync(join(outDir, 'candidates.json'), `${JSON.stringify(candidates, null, 2)}
`);
}

function requireCandidateDir(plan: LocalPlan): string {
  if (plan.candidateDir === undefined) throw new Error(`no local copy of candidate ${plan.spec.fromCandidate?.candidateId} was made for this plan`);
  return plan.candidateDir;
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

async function profileEveryBlockSize(plan: LocalPlan, onEvent: (event: PlanEvent) => void, signal?: AbortSignal): Promise<{ profile: ImportanceProfile; model: Pick<ModelInfo, 'family' | 'config'> }> {
  const { spec } = plan;
  onEvent({ stage: 'LOADING', progress: 0, message: `inspecting ${plan.model.path}` });
  const { seqLen, samples } = spec.calibration;
  // The same calibration session prune() opens: model inspected once, weights streamed layer by layer.
  const session = await openCalibrationSession({ modelPath: plan.model.path, tokenizerPath: plan.model.tokenizer, dataPath: localFile(plan, spec.calibration.source), samples, seqLen });
  try {
    const runtime = await session.runtime();
    onEvent({ stage: 'PROFILING', progress: stageProgress('PROFILING'), message: `dry run: scoring every block size on ${runtime.description}` });
    const profile = await computeImportance(runtime, session.info.config.numLayers, session.data, seqLen, {
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
    return { profile, model: session.info };
  } finally {
    await session.close();
  }
}
