/**
 * The worker protocol: engine workers claim plans under a lease, renew it with heartbeats (learning of
 * cancellations), post progress, and complete, fail or release them. A lease that runs out puts the
 * plan back within reach of the next claim; that worker resumes from the checkpoint in the plan's work
 * directory.
 */
import type { ImportanceService } from '../importance/importance.service.js';
import { ImportanceMetric } from '../importance/importance.type.js';
import { EngineError, parsePlanResult, parsePlanResultWire, PLAN_CONTRACT_VERSION, type ImportanceProfileResult, type EngineErrorCode, type FileAccess, type PlanAssignment, type PlanResult, type PlanResultWire, type PlanSpec } from '../engine.js';
import { badInput, conflict, ErrorCode, errorCodeOfEngine } from '../errors.js';
import type { ModelService } from '../models/model.service.js';
import type { Model } from '../models/model.type.js';
import type { PlanLifecycle } from '../plans/plan.lifecycle.js';
import type { PlanService } from '../plans/plan.service.js';
import type { FinishRecord, PlanStore } from '../plans/plan.store.js';
import { FINAL_STATUSES, PlanStatus, type PruningPlan } from '../plans/plan.type.js';
import type { ProgressService } from '../progress/progress.service.js';
import type { ProgressReport } from '../progress/progress.type.js';
import { workerPathOf } from '../sources/source-uri.js';
import type { StabilityService } from '../stability/stability.service.js';
import type { Db } from '../store/database.js';
import { checkInteger } from '../validation.js';

export interface WorkerServiceOptions {
  /** How long a claim or heartbeat keeps a plan; default 30 s. */
  readonly leaseMs?: number;
  /**
   * Sent with every plan so the worker checks its local inputs again when it opens them: the file roots
   * (empty: none), the denied directories, and the operator's default calibration set (not confined).
   */
  readonly fileAccess?: { readonly roots: readonly string[]; readonly denied: readonly string[]; readonly defaultCalibrationSource: string | null };
  /** STREAMLINE_TENANT_MAX_RUNNING: a tenant with this many running plans has its queued ones skipped; default no limit. */
  readonly maxRunningPerTenant?: number;
}

export class WorkerService {
  private readonly leaseMs: number;
  private readonly fileAccess: WorkerServiceOptions['fileAccess'];
  private readonly maxRunningPerTenant: number | undefined;

  constructor(
    private readonly lifecycle: PlanLifecycle,
    private readonly planStore: PlanStore,
    private readonly plans: PlanService,
    private readonly progress: ProgressService,
    private readonly models: ModelService,
    private readonly importance: ImportanceService,
    private readonly stability: StabilityService,
    options: WorkerServiceOptions = {},
  ) {
    this.leaseMs = options.leaseMs ?? 30_000;
    this.fileAccess = options.fileAccess;
    this.maxRunningPerTenant = options.maxRunningPerTenant;
  }

  /**
   * Workers that asked this replica for a plan within the lease time, busy or idle (an idle worker
   * holds no lease, so the store does not know of it): for /metrics and `streamline doctor`.
   */
  recentlySeen(now = Date.now()): string[] {
    for (const [workerId, at] of this.lastClaimAt) if (now - at > this.leaseMs) this.lastClaimAt.delete(workerId);
    return [...this.lastClaimAt.keys()];
  }

  private readonly lastClaimAt = new Map<string, number>();

  /** The next plan, leased to this worker, with what it runs on: its spec, its model's sources and the files it may open. */
  async claim(workerId: string): Promise<{ planId: string; config: PlanAssignment; contractVersion: number } | null> {
    this.lastClaimAt.set(workerId, Date.now());
    const plan = await this.lifecycle.claimNext(workerId, this.leaseMs, this.maxRunningPerTenant);
    if (!plan) return null;
    this.plans.publish(plan);
    const model = await this.models.require(plan.modelId, 'modelId');
    const config: PlanAssignment = {
      spec: plan.config,
      model: { source: model.source, tokenizer: model.tokenizer },
      fileAccess: this.planFileAccess(plan.config, model),
    };
    return { planId: plan.id, config, contractVersion: PLAN_CONTRACT_VERSION };
  }

  async heartbeat(planId: string, workerId: string): Promise<{ cancelled: boolean; ended: boolean; cancelledCandidates: string[] }> {
    // A plan that is no longer this worker's (cancelled, or its lease ran out and another took it) is one to stop.
    const renewed = await this.lifecycle.renew(planId, workerId, this.leaseMs);
    if (renewed !== null) return { cancelled: false, ended: false, cancelledCandidates: renewed.cancelledCandidates };
    // Only an ended plan's work may be thrown away: one that another worker now holds resumes from it.
    const plan = await this.planStore.read(planId);
    return { cancelled: true, ended: plan === null || FINAL_STATUSES.has(plan.status), cancelledCandidates: [] };
  }

  /** With `batch` (its run and the first event's index), events of that run already stored are skipped. */
  async report(planId: string, workerId: string, events: readonly ProgressReport[], batch?: { run: string; firstIndex: number }): Promise<void> {
    await this.requireHolder(planId, workerId);
    if (batch) checkInteger('firstIndex', batch.firstIndex, 1);
    for (const [i, event] of events.entries()) {
      await this.progress.appendProgress(planId, event, batch ? { run: batch.run, index: batch.firstIndex + i } : undefined, workerId);
    }
  }

  /**
   * The plan SUCCEEDED with the worker's result (checked by the contract's parser: a malformed one is
   * BAD_USER_INPUT and the plan stays RUNNING), its reports stored in the same transaction.
   */
  async complete(planId: string, workerId: string, value: unknown): Promise<PruningPlan> {
    const plan = await this.requireHolder(planId, workerId);
    const wire = parseResult(() => parsePlanResultWire(value));
    // Finite weights can still overflow float32 in the forward pass; NaN arrives here as null (JSON) and
    // would answer INTERNAL wherever a score is read. Such a model is as unusable as one holding NaN.
    const nonFinite = nonFiniteResult(wire);
    if (nonFinite) return this.failWithInvalidWeights(plan, workerId, `the model's forward pass produced NaN/infinite values (${nonFinite}); its weights overflow float32`);
    const result = parseResult(() => parsePlanResult(wire));
    const { outcome } = result;
    // The reports are written in the finishing UPDATE's transaction, only when it applied (see finishByHolder).
    if (outcome.dryRun) {
      return this.finishByHolder(planId, workerId, PlanStatus.SUCCEEDED, { outputUri: null, sweepEstimate: outcome.sweepEstimate ?? null }, (trx) => this.storeProfile(plan, outcome.profile, trx));
    }
    // A sweep: its candidates, and the profile of every swept block size; its outputs are the candidates' weights.
    if ('sweep' in outcome) {
      const { sweep } = outcome;
      return this.finishByHolder(planId, workerId, PlanStatus.SUCCEEDED, { outputUri: result.outputUri, candidates: sweep.candidates }, (trx) => this.storeProfile(plan, sweep.profile, trx));
    }
    const { pruned } = outcome;
    const saveReports = async (trx: Db) => {
      if (pruned.importance) {
        const { samples, seqLen } = plan.config.calibration;
        await this.importance.save({ modelId: plan.modelId, planId, metric: ImportanceMetric.COSINE, blockSize: pruned.importance.blockSize, samples, seqLen, startScores: pruned.importance.scores }, trx);
      }
      await this.stability.save({
        planId,
        perplexity: pruned.stability.perplexity,
        tasks: pruned.stability.tasks,
        hiddenStateCosine: pruned.stability.hiddenStateCosine,
        parameterReduction: 1 - pruned.numParameters.after / pruned.numParameters.before,
      }, trx);
    };
    return this.finishByHolder(planId, workerId, PlanStatus.SUCCEEDED, {
      startLayer: pruned.block.start,
      removedLayers: pruned.removedLayers,
      outputUri: result.outputUri,
      prunedParameters: pruned.numParameters.after,
    }, saveReports);
  }

  /**
   * The plan FAILED with the worker's message and the engine's code mapped onto the gateway's (INTERNAL
   * when the worker gave none). INVALID_WEIGHTS is the model's fault, not the plan's: the model becomes
   * FAILED with the same error, its other queued plans fail with it, and new plans on it are refused.
   */
  async fail(planId: string, workerId: string, message: string, engineCode?: EngineErrorCode): Promise<PruningPlan> {
    const plan = await this.requireHolder(planId, workerId);
    // A failure without a code is an error the engine did not anticipate.
    const errorCode = engineCode === undefined ? ErrorCode.INTERNAL : errorCodeOfEngine(engineCode);
    if (errorCode === ErrorCode.INVALID_WEIGHTS) return this.failWithInvalidWeights(plan, workerId, message);
    return this.finishByHolder(planId, workerId, PlanStatus.FAILED, { error: message, errorCode });
  }

  /** The plan and the model FAILED with INVALID_WEIGHTS; the model's other queued plans too. */
  private async failWithInvalidWeights(plan: PruningPlan, workerId: string, message: string): Promise<PruningPlan> {
    const errorCode = ErrorCode.INVALID_WEIGHTS;
    const failed = await this.finishByHolder(plan.id, workerId, PlanStatus.FAILED, { error: message, errorCode });
    await this.models.markFailed(plan.modelId, errorCode, message);
    for (const queued of await this.plans.list({ modelId: plan.modelId, status: PlanStatus.QUEUED })) {
      const other = await this.lifecycle.failQueued(queued.id, message, errorCode); // null: claimed or cancelled meanwhile
      if (other) this.plans.publish(other);
    }
    return failed;
  }

  /**
   * Ends the plan, in one UPDATE guarded by this worker's live lease: a worker whose lease ran out or was
   * taken over (even between requireHolder's read and this write) gets CONFLICT, and the plan is untouched.
   * `saveReports` writes the results in the same transaction, only when the UPDATE applied.
   */
  private async finishByHolder(
    planId: string,
    workerId: string,
    status: PlanStatus.SUCCEEDED | PlanStatus.FAILED,
    outcome: FinishRecord,
    saveReports?: (trx: Db) => Promise<void>,
  ): Promise<PruningPlan> {
    const finished = await this.lifecycle.finishByHolder(planId, workerId, status, outcome, saveReports);
    if (!finished) {
      const current = await this.plans.require(planId, 'planId');
      throw conflict(`plan ${planId} is ${current.status} and no longer under a live lease of worker ${workerId}; it cannot become ${status}`);
    }
    this.plans.publish(finished);
    return finished;
  }

  async release(planId: string, workerId: string): Promise<void> {
    const plan = await this.lifecycle.release(planId, workerId);
    if (plan) this.plans.publish(plan);
  }

  /** What the worker checks local inputs against; the paths the gateway vouches for are `unconfined`. */
  private planFileAccess(spec: PlanSpec, model: Model): FileAccess | null {
    if (!this.fileAccess) return null;
    const { roots, denied, defaultCalibrationSource } = this.fileAccess;
    const unconfined: string[] = [];
    if (defaultCalibrationSource !== null && spec.calibration.source === defaultCalibrationSource) unconfined.push(workerPathOf('calibration.source', defaultCalibrationSource));
    if (model.inspection?.fromPlan) unconfined.push(workerPathOf('model.source', model.source));
    return { roots: [...roots], denied: [...denied], unconfined };
  }

  private async requireHolder(planId: string, workerId: string): Promise<PruningPlan> {
    const plan = await this.plans.require(planId, 'planId');
    const holder = await this.planStore.holder(planId);
    if (plan.status !== PlanStatus.RUNNING || holder !== workerId) {
      throw conflict(`plan ${planId} is ${plan.status}${holder ? ` and leased to ${holder}` : ''}, not running under worker ${workerId}`);
    }
    return plan;
  }

  private async storeProfile(plan: PruningPlan, profile: ImportanceProfileResult, trx: Db): Promise<void> {
    const base = { modelId: plan.modelId, planId: plan.id, samples: profile.samples, seqLen: profile.seqLen };
    for (const block of profile.blocks) await this.importance.save({ ...base, metric: ImportanceMetric.COSINE, blockSize: block.blockSize, startScores: block.scores }, trx);
    for (const block of profile.angularDistance) await this.importance.save({ ...base, metric: ImportanceMetric.ANGULAR_DISTANCE, blockSize: block.blockSize, startScores: block.scores }, trx);
    await this.importance.save({ ...base, metric: ImportanceMetric.BLOCK_INFLUENCE, blockSize: 1, startScores: profile.blockInfluence }, trx);
  }
}

/**
 * Where a worker's result holds a number that is not finite (NaN and ±Infinity arrive as null through
 * JSON), among those the gateway stores as non-null scores; null when there is none.
 */
function nonFiniteResult({ outcome }: PlanResultWire): string | null {
  const finite = (value: unknown) => typeof value === 'number' && Number.isFinite(value);
  const checks: [string, unknown[]][] = [];
  const profile = outcome.dryRun ? outcome.profile : 'sweep' in outcome ? outcome.sweep.profile : null;
  if (profile) {
    for (const block of profile.blocks) checks.push([`importance scores of block size ${block.blockSize}`, block.scores]);
    for (const block of profile.angularDistance) checks.push([`angular distances of block size ${block.blockSize}`, block.scores]);
    checks.push(['block influence', profile.blockInfluence]);
  }
  if (outcome.dryRun && outcome.sweepEstimate) checks.push(['sweep estimate', [outcome.sweepEstimate.hiddenStateBytes, outcome.sweepEstimate.seconds]]);
  if ('sweep' in outcome) {
    for (const c of outcome.sweep.candidates) {
      checks.push([`candidate ${c.id}`, [c.parametersBefore, c.parametersAfter, c.perplexityOriginal, c.perplexity, c.trainingLoss, c.validationLoss].filter((v) => v !== null)]);
      for (const t of c.tasks) checks.push([`candidate ${c.id} task ${t.task}`, [t.accuracyOriginal, t.accuracy, t.stability]]);
    }
  } else if ('pruned' in outcome) {
    const { pruned } = outcome;
    if (pruned.importance) checks.push([`importance scores of block size ${pruned.importance.blockSize}`, pruned.importance.scores]);
    for (const p of pruned.stability.perplexity) checks.push([`perplexity on ${p.dataset}`, [p.original, p.pruned]]);
    for (const t of pruned.stability.tasks) checks.push([`task ${t.task}`, [t.accuracyOriginal, t.accuracyPruned, t.agreement, t.stability]]);
    if (pruned.stability.hiddenStateCosine !== null) checks.push(['hidden-state cosine', [pruned.stability.hiddenStateCosine]]);
    checks.push(['parameter counts', [pruned.numParameters.before, pruned.numParameters.after]]);
  }
  const bad = checks.find(([, values]) => !values.every(finite));
  return bad ? bad[0] : null;
}

/** A result that does not fit the contract is the worker's input error, not the gateway's. */
function parseResult<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof EngineError) throw badInput('result', error.message);
    throw error;
  }
}
