/**
 * A pruning sweep: many candidates of one model in one run, so a user sees how much each extra layer
 * removed costs and exports the candidate they want without training it again.
 *
 *   open model and data → importance of every swept size → candidates → every boundary h[s] to disk once
 *   → per candidate: fit its replacement, assemble, evaluate, keep its weights → the Pareto front
 *
 * The stages are prune()'s (prune.ts), run once per candidate on a copy of the run context; the
 * calibration windows, the validation split and the hidden states are shared, so a candidate's
 * replacement is the one a single plan for that block, kind, seed and data trains. Each finished
 * candidate is saved under `candidatesDir/<id>/` (its weights and figures): a resumed sweep skips it,
 * and `prune({ trained })` exports it later. With `checkpoints` (a worker's object store) each saved
 * candidate also goes to the store as it finishes (`candidates/<id>` beside the plan's training
 * checkpoints, integrity-checked like them), and a sweep resumed on another disk puts the stored ones
 * back under candidatesDir before anything runs, so they are skipped there too. A candidate cancelled
 * on its own is skipped (or stopped mid-training) and the sweep goes on.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EngineError } from '../errors.js';
import { contiguousCandidateId, iterativeCandidateId, type PlanCandidate } from '../contract/plan-candidate.js';
import { checkSweep, DEFAULT_MAX_SWEEP_CANDIDATES, type SweepSpec } from '../contract/sweep-spec.js';
import { SafetensorsFile, writeSafetensors } from '../formats/safetensors.js';
import type { HostTensor } from '../formats/host-tensor.js';
import { computeImportance, type ImportanceProfile } from '../importance.js';
import { prunedParameters } from './assemble.js';
import { removedLayers, validateBlock, type Block } from './block-choice.js';
import { collectBoundaryStates, BoundaryPairs, type BoundaryManifest } from './boundary-states.js';
import { assemble, evaluate, fitReplacement, formatBytes, hash, modelIdentity, openRun, reporters, validationSplit, type PruneEvent, type PruneOptions, type PruneRun, type TrainedReplacement } from './prune.js';
import type { ReplacementKind } from './replacement-kinds.js';
import type { CheckpointSync } from '../storage/checkpoint-store.js';
import { runIterative } from './iterative.js';

export interface SweepEvent extends PruneEvent {
  /** The candidate the event is about, and its place among them (absent: the sweep as a whole). */
  readonly candidateId?: string;
  readonly candidate?: { readonly index: number; readonly count: number };
}

export interface SweepOptions extends Omit<PruneOptions, 'layers' | 'start' | 'targetSparsity' | 'replacement' | 'outDir' | 'onAssembled' | 'trained' | 'onProgress'> {
  readonly sweep: SweepSpec;
  /** The most candidates a sweep may make (PlanBounds.maxSweepCandidates); default 16. An operator's setting. */
  readonly maxCandidates?: number;
  /** Each finished candidate's replacement and figures go to `<candidatesDir>/<id>/` (see loadTrainedCandidate). */
  readonly candidatesDir: string;
  /** A candidate's own cancellation: aborts skip it (before it starts) or stop its training. */
  readonly candidateSignal?: (candidateId: string) => AbortSignal | undefined;
  readonly onProgress?: (event: SweepEvent) => void;
}

export interface SweepSummary {
  /** Importance of every swept block size. */
  readonly profile: ImportanceProfile;
  readonly candidates: PlanCandidate[];
  /** Bytes of the hidden states the candidates shared. */
  readonly hiddenStateBytes: number;
  readonly seconds: number;
}

/** A contiguous candidate: its block and replacement. Iterative candidates are iterative.ts's. */
export interface CandidatePlan {
  readonly id: string;
  readonly block: Block;
  readonly kind: ReplacementKind;
}

const CANDIDATE_FILE = 'candidate.json';
const WEIGHTS_FILE = 'replacement.safetensors';

/** Each size's `topStarts` most redundant starts (highest cosine first), with each kind. */
export function contiguousCandidates(sweep: SweepSpec, profile: ImportanceProfile): CandidatePlan[] {
  const candidates: CandidatePlan[] = [];
  for (const size of [...sweep.blockSizes].sort((a, b) => a - b)) {
    const scores = profile.blocks.find((b) => b.blockSize === size)!.scores;
    const starts = scores
      .map((score, start) => ({ score, start }))
      .sort((a, b) => b.score - a.score || a.start - b.start)
      .slice(0, sweep.topStarts);
    for (const { start } of starts) for (const kind of sweep.replacements) candidates.push({ id: contiguousCandidateId(size, start, kind), block: { start, size }, kind });
  }
  return candidates;
}

/** Whether each point is on the front of parameters removed (more is better) vs perplexity (less is better). */
export function paretoFront(points: readonly { readonly removed: number; readonly perplexity: number | null }[]): boolean[] {
  return points.map((p) => {
    if (p.perplexity === null) return false;
    return !points.some((q) => q !== p && q.perplexity !== null && q.removed >= p.removed && q.perplexity <= p.perplexity! && (q.removed > p.removed || q.perplexity < p.perplexity!));
  });
}

export async function sweep(options: SweepOptions): Promise<SweepSummary> {
  const started = performance.now();
  const spec = options.sweep;
  const maxCandidates = options.maxCandidates ?? DEFAULT_MAX_SWEEP_CANDIDATES;
  const sweepReport = reporters(options.onProgress).report;
  // The session is opened for the largest block (its fit to the model is checked there) and every kind.
  const run = await openRun({ ...options, layers: Math.max(...spec.blockSizes), replacement: spec.replacements[0], outDir: join(options.candidatesDir, '.unused') }, spec.replacements);
  try {
    const { info, data } = run.session;
    const numLayers = info.config.numLayers;
    checkSweep(spec, numLayers, maxCandidates);
    const runtime = await run.session.runtime();
    sweepReport('PROFILING', `scoring blocks of ${spec.blockSizes.join(', ')} layers on ${runtime.description}`);
    const profile = await computeImportance(runtime, numLayers, data, run.settings.seqLen, {
      blockSizes: spec.blockSizes,
      batchSize: run.settings.batchSize,
      signal: options.signal,
      checkpoint: run.session.streaming ? { dir: join(options.workDir, 'importance-pass'), key: hash([modelIdentity(options, info), run.settings.batchSize, data, spec.blockSizes]) } : undefined,
      onLayer: run.layerReporter('PROFILING', 'importance'),
    });
    const plans = contiguousCandidates(spec, profile);
    const iterativeSizes = spec.iterative ? [...spec.blockSizes].sort((a, b) => a - b) : [];
    const count = plans.length + iterativeSizes.length;
    const ids = [...plans.map((c) => c.id), ...iterativeSizes.map(iterativeCandidateId)];
    sweepReport('PROFILING', `${count} candidates: ${ids.join(', ')}`);
    await restoreStoredCandidates(options, ids, sweepReport);

    // Every boundary a trained candidate reads, collected in one pass (h[s] once, however many blocks start or end there).
    const trained = plans.filter((c) => c.kind !== 'NONE');
    const boundaries = [...new Set(trained.flatMap((c) => [c.block.start, c.block.start + c.block.size]))];
    const validation = validationSplit(run);
    const statesDir = join(options.workDir, 'boundaries');
    const statesKey = hash([modelIdentity(options, info), hash(data), run.settings.pairsDtype, [...validation], boundaries]);
    let hiddenStateBytes = 0;
    // All trained candidates finished already (a resumed sweep): no hidden state is needed.
    const unfinished = trained.filter((c) => !readSavedCandidate(join(options.candidatesDir, c.id)));
    const states =
      boundaries.length === 0 || unfinished.length === 0
        ? null
        : await collectBoundaryStates(runtime, data, {
            dir: statesDir,
            key: statesKey,
            boundaries,
            hiddenSize: info.config.hiddenSize,
            dtype: run.settings.pairsDtype,
            validation,
            batchSize: run.settings.batchSize,
            signal: options.signal,
            passDir: run.session.streaming ? join(options.workDir, 'boundaries-pass') : undefined,
            onLayer: run.layerReporter('COLLECTING', 'hidden states'),
            onEstimate: (bytes) => {
              hiddenStateBytes = bytes;
              sweepReport('COLLECTING', `hidden states h[${[...boundaries].sort((a, b) => a - b).join('], h[')}] will take about ${formatBytes(bytes)} in ${statesDir}`);
            },
            onProgress: (done, total) => sweepReport('COLLECTING', `${done}/${total} samples`),
          });

    const results: Omit<PlanCandidate, 'pareto'>[] = [];
    for (const [index, plan] of plans.entries()) {
      const place = { index, count };
      results.push(await runCandidate(run, options, plan, place, states && { dir: statesDir, manifest: states, key: statesKey }));
    }
    // Beside each contiguous block, the same number of layers removed one at a time.
    for (const [i, size] of iterativeSizes.entries()) results.push(await runIterative(run, options, size, { index: plans.length + i, count }));
    const front = paretoFront(results.map((c) => ({ removed: c.parametersAfter === null ? 0 : c.parametersBefore - c.parametersAfter, perplexity: c.status === 'DONE' ? c.perplexity : null })));
    return { profile, candidates: results.map((c, i) => ({ ...c, pareto: front[i] })), hiddenStateBytes, seconds: (performance.now() - started) / 1000 };
  } finally {
    await options.checkpoints?.flush(); // the finished candidates stored before a stopping worker releases the plan
    await run.session.close();
  }
}

/** Where a finished candidate is kept in the object store: its own folder beside the plan's checkpoints. */
function storedCandidate(options: SweepOptions, id: string): CheckpointSync | undefined {
  return options.checkpoints?.beside(`candidates/${id}`);
}

/** Finished candidates a stopped run stored (from another disk, say) put back under candidatesDir, where the sweep skips them. */
async function restoreStoredCandidates(options: SweepOptions, ids: readonly string[], report: PruneRun['report']): Promise<void> {
  for (const id of ids) {
    const dir = join(options.candidatesDir, id);
    if (readSavedCandidate(dir)) continue;
    const restored = await storedCandidate(options, id)?.restore(dir);
    if (restored) report('PROFILING', `candidate ${id} finished before: restored from ${restored.from}`);
  }
}

/** A copy of the run for one candidate: its block and kind, its own results, its events tagged with its id. */
export function candidateRun(run: PruneRun, options: SweepOptions, id: string, place: SweepEvent['candidate'], block: Block, kind: ReplacementKind, signal: AbortSignal | undefined): PruneRun {
  const tagged = reporters((event) => options.onProgress?.({ ...event, candidateId: id, candidate: place }));
  return {
    ...run,
    ...tagged,
    // Checkpoints kept in an object store hold one training run: a sweep's candidates train in their own
    // folders (candidatesDir/<id>/train), and only finished candidates are stored (saveCandidate).
    options: { ...run.options, signal, checkpoints: undefined },
    settings: { ...run.settings, kind },
    block,
    size: block.size,
    importance: null,
    replacementWeights: null,
    trainingSummary: null,
    layout: undefined,
    pruned: undefined,
    evaluation: null,
    fullReport: null,
  };
}

/** A candidate's own signal joined with the sweep's: either stops it. */
export function candidateAbort(options: SweepOptions, id: string): { signal: AbortSignal | undefined; cancelled: () => boolean } {
  const own = options.candidateSignal?.(id);
  const signals = [options.signal, own].filter((s): s is AbortSignal => s !== undefined);
  return { signal: signals.length === 0 ? undefined : signals.length === 1 ? signals[0] : AbortSignal.any(signals), cancelled: () => own?.aborted === true && options.signal?.aborted !== true };
}

async function runCandidate(
  run: PruneRun,
  options: SweepOptions,
  plan: CandidatePlan,
  place: { index: number; count: number },
  states: { dir: string; manifest: BoundaryManifest; key: string } | null,
): Promise<Omit<PlanCandidate, 'pareto'>> {
  const dir = join(options.candidatesDir, plan.id);
  const done = readSavedCandidate(dir);
  if (done) return done;
  const { signal, cancelled } = candidateAbort(options, plan.id);
  validateBlock(plan.block, run.session.info.config.numLayers);
  const cancelledResult = (): Omit<PlanCandidate, 'pareto'> => ({ ...blankCandidate(run, plan.id, plan.block, plan.kind, false), status: 'CANCELLED' });
  if (cancelled()) return cancelledResult();
  const child = candidateRun(run, options, plan.id, place, plan.block, plan.kind, signal);
  child.report('TRAINING', `candidate ${plan.id}: layers ${plan.block.start}..${plan.block.start + plan.block.size - 1} with a ${plan.kind} replacement`);
  try {
    if (plan.kind !== 'NONE') {
      const pairs = new BoundaryPairs(states!.dir, states!.manifest, plan.block);
      try {
        await fitReplacement(child, pairs, hash([states!.key, plan.block]), join(dir, 'train'));
      } finally {
        pairs.close();
      }
    }
    await assemble(child);
    await evaluate(child);
  } catch (error) {
    if (error instanceof EngineError && error.code === 'CANCELLED' && cancelled()) {
      child.report('TRAINING', `candidate ${plan.id} cancelled`);
      rmSync(dir, { recursive: true, force: true });
      return cancelledResult();
    }
    throw error;
  }
  const result = candidateFigures(child, plan.id, false);
  saveCandidate(options, plan.id, result, { weights: child.replacementWeights, training: child.trainingSummary });
  return result;
}

/** A candidate's identity and parameter count before anything is measured. */
export function blankCandidate(run: PruneRun, id: string, block: Block, kind: ReplacementKind, iterative: boolean, removed = removedLayers(block)): Omit<PlanCandidate, 'pareto'> {
  return {
    id,
    status: 'DONE',
    start: removed[0] ?? block.start,
    blockSize: block.size,
    replacement: kind,
    iterative,
    removedLayers: removed,
    parametersBefore: run.session.info.numParameters,
    parametersAfter: null,
    perplexityOriginal: null,
    perplexity: null,
    tasks: [],
    trainingLoss: null,
    validationLoss: null,
  };
}

/**
 * A measured candidate's figures. Perplexity: the plan's first evaluation text when it gave any, else
 * the held-out calibration windows (as a single plan's stability report chooses).
 */
export function candidateFigures(child: PruneRun, id: string, iterative: boolean, removed?: number[]): Omit<PlanCandidate, 'pareto'> {
  const report = child.fullReport;
  const text = report?.perplexity[0];
  const quick = child.evaluation;
  const best = child.trainingSummary?.epochs[Math.max(0, child.trainingSummary.bestEpoch - 1)];
  return {
    ...blankCandidate(child, id, child.block!, child.settings.kind, iterative, removed),
    parametersAfter: prunedParameters(child.pruned!),
    perplexityOriginal: text ? text.original.perplexity : (quick?.perplexityOriginal ?? null),
    perplexity: text ? (text.pruned?.perplexity ?? null) : (quick?.perplexityPruned ?? null),
    tasks: (report?.tasks ?? []).map((t) => ({ task: t.task, accuracyOriginal: t.accuracyOriginal, accuracy: t.accuracyPruned ?? 0, stability: t.stability ?? 0 })),
    trainingLoss: best?.trainLoss ?? null,
    validationLoss: best?.validationLoss ?? null,
  };
}

/** A finished candidate saved under `candidatesDir/<id>/`, and queued for the object store when there is one. */
export function saveCandidate(options: SweepOptions, id: string, result: Omit<PlanCandidate, 'pareto'>, trained: TrainedReplacement): void {
  const dir = join(options.candidatesDir, id);
  mkdirSync(dir, { recursive: true });
  rmSync(join(dir, 'train'), { recursive: true, force: true }); // checkpoints: of no use once it is done
  if (trained.weights) writeSafetensors(join(dir, WEIGHTS_FILE), [...trained.weights].map(([name, tensor]) => ({ name, tensor })), 'F32');
  // Written last: a candidate is done once this file is there.
  writeFileSync(join(dir, CANDIDATE_FILE), `${JSON.stringify({ result, training: trained.training, ...(trained.removedLayers ? { removedLayers: trained.removedLayers } : {}) }, null, 2)}\n`);
  storedCandidate(options, id)?.saved(0, dir);
}

export function readSavedCandidate(dir: string): Omit<PlanCandidate, 'pareto'> | null {
  if (!existsSync(join(dir, CANDIDATE_FILE))) return null;
  return (JSON.parse(readFileSync(join(dir, CANDIDATE_FILE), 'utf8')) as { result: Omit<PlanCandidate, 'pareto'> }).result;
}

/**
 * A saved candidate (a folder under candidatesDir, or its copy from the object store) as prune()'s
 * `trained` option, with its block and kind: the export of a candidate without training it again.
 */
export function loadTrainedCandidate(dir: string): { candidate: Omit<PlanCandidate, 'pareto'>; trained: TrainedReplacement } {
  if (!existsSync(join(dir, CANDIDATE_FILE))) throw new EngineError('NOT_FOUND', `no finished sweep candidate in ${dir}`);
  const saved = JSON.parse(readFileSync(join(dir, CANDIDATE_FILE), 'utf8')) as { result: Omit<PlanCandidate, 'pareto'>; training: TrainedReplacement['training']; removedLayers?: number[] };
  let weights: Map<string, HostTensor> | null = null;
  if (existsSync(join(dir, WEIGHTS_FILE))) {
    const file = SafetensorsFile.open(join(dir, WEIGHTS_FILE));
    try {
      weights = new Map([...file.entries.keys()].map((name) => [name, file.read(name)]));
    } finally {
      file.close();
    }
  }
  return { candidate: saved.result, trained: { weights, training: saved.training, ...(saved.removedLayers ? { removedLayers: saved.removedLayers } : {}) } };
}
