import type { CacheCounts } from '../caching.js';
import type { Backpressure } from '../context.js';
import { conflict, ErrorCode, GatewayError, notFound } from '../errors.js';
import type { SourceService } from '../sources/source.service.js';
import { LiveQueue, withCleanup } from '../events/live-queue.js';
import type { ModelService } from '../models/model.service.js';
import type { ModelInfo, PlanSpec } from '../engine.js';
import { ModelStatus, type Model } from '../models/model.type.js';
import type { PlanEventBus, PlanMessage } from '../events/plan-events.js';
import type { ProgressStore } from '../progress/progress.store.js';
import type { ProgressEvent } from '../progress/progress.type.js';
import { checkInteger } from '../validation.js';
import { checkHasTextSamples, DATASET_SCHEMES, planDatasets, resolvePlanSpec } from './plan.config.js';
import type { PlanWorkCleanup } from './plan.cleanup.js';
import { checkTasksInThreads, countWindowsInThreads, type CheckTask, type CountWindows } from '../models/model-inspection.js';
import { checkTaskFiles } from './plan.tasks.js';
import { checkEvaluationWindows, localFile, localTokenizer, type ConfineReads } from './plan.windows.js';
import { DEFAULT_PLAN_LIMITS, type PlanLimits } from './plan.limits.js';
import type { CreatePruningPlanInput } from './plan.input.js';
import type { PlanLifecycle } from './plan.lifecycle.js';
import type { PlanStore } from './plan.store.js';
import { FINAL_STATUSES, PlanStatus, type PruningPlan } from './plan.type.js';

export const DEFAULT_EVENTS_LIMIT = 100;
export const MAX_EVENTS_LIMIT = 1000;
/** The plans retryPlan accepts: ended without an output. */
export const RETRYABLE_STATUSES: ReadonlySet<PlanStatus> = new Set([PlanStatus.FAILED, PlanStatus.CANCELLED]);

export interface PlanServiceOptions {
  readonly defaultCalibrationSource: string | null;
  /** Quotas and bounds on settings; default DEFAULT_PLAN_LIMITS. */
  readonly limits?: PlanLimits;
  /** Removes the work a plan cancelled while queued left behind (see plan.cleanup.ts). */
  readonly cleanup?: PlanWorkCleanup;
  /** Counts evaluation windows at creation; default: in worker threads (see plan.windows.ts). */
  readonly countWindows?: CountWindows;
  /** Reads task files at creation; default in the inspection threads. */
  readonly checkTask?: CheckTask;
}

export class PlanService {
  /** planUpdated streams open now, and those ended because their client was too slow (for /metrics). */
  readonly streams = { open: 0, slowDisconnects: 0 };
  private readonly countWindows: CountWindows;
  private readonly checkTask: CheckTask;

  constructor(
    private readonly store: PlanStore,
    private readonly lifecycle: PlanLifecycle,
    private readonly progress: ProgressStore,
    private readonly models: ModelService,
    private readonly bus: PlanEventBus,
    private readonly sources: SourceService,
    private readonly options: PlanServiceOptions,
  ) {
    this.countWindows = options.countWindows ?? countWindowsInThreads();
    this.checkTask = options.checkTask ?? checkTasksInThreads();
  }

  /** A plan of one of the tenant's models (another tenant's model is NOT_FOUND, as if absent). */
  async create(input: CreatePruningPlanInput, tenantId: string): Promise<PruningPlan> {
    const model = await this.requirePlannable(input.modelId, 'input.modelId', tenantId);
    const info = await this.inspect(model);
    const limits = this.options.limits ?? DEFAULT_PLAN_LIMITS;
    const spec = resolvePlanSpec(input, { model, info, defaultCalibrationSource: this.options.defaultCalibrationSource, bounds: limits.bounds });
    return this.enqueue(model, spec, info);
  }

  /**
   * A new QUEUED plan with the stored settings of one of the tenant's FAILED or CANCELLED plans, on the
   * same model (another tenant's plan is NOT_FOUND). Checked as a new plan is: the model must still be
   * there and READY (INVALID_WEIGHTS when it failed with those), its source and the data files must
   * still be within reach, and the tenant's queue quota applies. A queued, running or succeeded plan is
   * a CONFLICT. The failed plan stays as it was.
   */
  async retry(id: string, tenantId: string): Promise<PruningPlan> {
    const failed = await this.require(id, 'id', tenantId);
    if (!RETRYABLE_STATUSES.has(failed.status)) {
      throw conflict(`id: plan ${id} is ${failed.status}; only ${[...RETRYABLE_STATUSES].join(' or ')} plans can be retried`);
    }
    const model = await this.requirePlannable(failed.modelId, 'id', tenantId);
    const info = await this.inspect(model);
    // The stored spec, parsed when the plan was read: the same settings, checked against today's files.
    return this.enqueue(model, failed.config, info);
  }

  /** A new QUEUED plan with `spec` on one of the tenant's models, checked as a new plan is (exportCandidate's). */
  async enqueueSpec(modelId: string, spec: PlanSpec, tenantId: string): Promise<PruningPlan> {
    const model = await this.requirePlannable(modelId, 'planId', tenantId);
    return this.enqueue(model, spec, await this.inspect(model));
  }

  /** The tenant's model, READY for plans; `field` names the argument that led to it. */
  private async requirePlannable(modelId: string, field: string, tenantId: string): Promise<Model> {
    const model = await this.models.require(modelId, field, tenantId);
    if (model.status === ModelStatus.FAILED && model.errorCode === ErrorCode.INVALID_WEIGHTS) {
      throw new GatewayError(ErrorCode.INVALID_WEIGHTS, `${field}: model ${model.id} is FAILED: ${model.error}; register corrected weights as a new model`, { field });
    }
    if (model.status !== ModelStatus.READY) throw conflict(`${field}: model ${model.id} is ${model.status}; plans need a READY model`);
    return model;
  }

  /** The model inspected again (config and headers only): the source may have changed since it was registered. */
  private inspect(model: Model): Promise<ModelInfo> {
    // A plan output registered with fromPlan is the gateway's own location; every other source is the tenant's, confined.
    return this.sources.inspectModel(`model ${model.id} source`, model.source, { trusted: model.inspection?.fromPlan !== undefined });
  }

  private confineTenantFiles(spec: PlanSpec, model: Model, info: ModelInfo): ConfineReads {
    const calibration = spec.calibration.source === this.options.defaultCalibrationSource ? localFile('input.calibration.source', spec.calibration.source) : null;
    const tokenizer = model.inspection?.fromPlan !== undefined ? localTokenizer(model, info) : null;
    const trusted = new Set([calibration, tokenizer]);
    return (paths) => this.sources.confinedReads(paths.filter((path): path is string => path !== null && !trusted.has(path)));
  }

  /** Checks the plan's data files where they are now, then queues it within the tenant's quota. */
  private async enqueue(model: Model, spec: PlanSpec, info: ModelInfo): Promise<PruningPlan> {
    const limits = this.options.limits ?? DEFAULT_PLAN_LIMITS;
    for (const dataset of planDatasets(spec)) {
      // The operator's default calibration set is not confined (STREAMLINE_DEFAULT_CALIBRATION).
      const trusted = dataset.field === 'input.calibration.source' && dataset.uri === this.options.defaultCalibrationSource;
      await this.sources.checkFile(dataset.field, dataset.uri, { schemes: DATASET_SCHEMES, extensions: dataset.extensions, missing: ErrorCode.BAD_USER_INPUT, trusted });
      checkHasTextSamples(dataset.field, dataset.uri);
    }
    // The threads below read the tenant's files confined; what the operator or the gateway chose (the
    // default calibration set, a plan output's tokenizer) is read as it is.
    const confine = this.confineTenantFiles(spec, model, info);
    // Each local perplexity text yields the windows it asks for (off the event loop; see plan.windows.ts).
    await checkEvaluationWindows(spec, model, info, this.countWindows, confine);
    // Each local task file parses, up to the items the plan scores (see plan.tasks.ts).
    await checkTaskFiles(spec, limits.bounds.maxEvaluationItems, this.checkTask, confine);
    const inserted = await this.store.insertWithinQuota({ modelId: model.id, tenantId: model.tenantId, spec, originalParameters: info.numParameters }, limits.maxQueuedPerTenant);
    if ('refused' in inserted) {
      throw new GatewayError(
        ErrorCode.QUOTA_EXCEEDED,
        `tenant ${model.tenantId} already has ${inserted.refused.queued} queued plans, its limit (STREAMLINE_TENANT_MAX_QUEUED=${limits.maxQueuedPerTenant}); wait for some to start or cancel some`,
        { limit: 'STREAMLINE_TENANT_MAX_QUEUED', max: limits.maxQueuedPerTenant },
      );
    }
    const plan = inserted.plan;
    this.publish(plan);
    return plan;
  }

  /** `tenantId` limits the answer to that tenant's plans; another tenant's plan is as if absent. */
  get(id: string, tenantId: string | undefined): Promise<PruningPlan | null> {
    return this.store.get(id, tenantId);
  }

  async require(id: string, field = 'id', tenantId?: string): Promise<PruningPlan> {
    const plan = await this.store.get(id, tenantId);
    if (!plan) throw new GatewayError(ErrorCode.NOT_FOUND, `${field}: plan ${JSON.stringify(id)} not found`, { field });
    return plan;
  }

  list(filter: { status?: PlanStatus | null; modelId?: string; tenantId?: string } = {}): Promise<PruningPlan[]> {
    return this.store.list(filter);
  }

  /** With `tenantId`, only that tenant's plan (another tenant's is NOT_FOUND). */
  async cancel(id: string, tenantId?: string): Promise<PruningPlan> {
    if (tenantId !== undefined && !(await this.store.get(id, tenantId))) throw notFound('plan', id);
    // A queued plan has no worker to clean up after it (it may hold work from before a release).
    const queued = await this.lifecycle.cancel(id, [PlanStatus.QUEUED]);
    if (queued) {
      this.publish(queued);
      await this.options.cleanup?.discard(id);
      return queued;
    }
    // A running plan's worker learns of it at its next heartbeat, stops, and removes the plan's work.
    const cancelled = await this.lifecycle.cancel(id);
    if (!cancelled) {
      const current = await this.store.get(id);
      if (!current) throw notFound('plan', id);
      throw conflict(`plan ${id} is ${current.status}; only QUEUED or RUNNING plans can become CANCELLED`);
    }
    this.publish(cancelled);
    return cancelled;
  }

  /** The plan cache's hits and misses (null without a cache). */
  cacheCounts(): CacheCounts | null {
    return this.store.cache?.entries.counts ?? null;
  }

  /** DataLoader batches: plans by id, plans of each model, events of each plan (as `events`). */
  getMany(ids: readonly string[]): Promise<Map<string, PruningPlan>> {
    return this.store.getMany(ids);
  }

  listByModels(modelIds: readonly string[]): Promise<Map<string, PruningPlan[]>> {
    return this.store.listByModels(modelIds);
  }

  eventsOfMany(planIds: readonly string[], after: number | null | undefined, limit: number | null | undefined): Promise<Map<string, ProgressEvent[]>> {
    const count = checkInteger('limit', limit ?? DEFAULT_EVENTS_LIMIT, 1, MAX_EVENTS_LIMIT);
    return this.progress.listMany(planIds, after === undefined || after === null ? null : checkInteger('after', after, 0), count);
  }

  /** Stored progress events: after `after` (exclusive) when given, else the latest ones; oldest first. */
  async events(planId: string, after: number | null | undefined, limit: number | null | undefined): Promise<ProgressEvent[]> {
    const count = checkInteger('limit', limit ?? DEFAULT_EVENTS_LIMIT, 1, MAX_EVENTS_LIMIT);
    if (after === undefined || after === null) return this.progress.listLatest(planId, count);
    return this.progress.listAfter(planId, checkInteger('after', after, 0), count);
  }

  /**
   * Changes of one plan, as they happen. A plan that has already finished is sent once; the stream
   * completes after a final status.
   */
  async updates(planId: string, tenantId?: string, backpressure?: Backpressure): Promise<AsyncIterableIterator<PruningPlan>> {
    await this.require(planId, 'planId', tenantId);
    let overflowed = false;
    const live = new LiveQueue<PlanMessage>(backpressure?.maxBuffered, () => {
      overflowed = true;
      this.streams.slowDisconnects++;
      backpressure?.overflow('SLOW_SUBSCRIBER: subscribe to planUpdated again');
    });
    const unsubscribe = this.bus.subscribe(planId, (message) => live.push(message));
    const store = this.store;
    async function* changes(): AsyncGenerator<PruningPlan> {
      const current = await store.get(planId);
      if (!current) return;
      if (FINAL_STATUSES.has(current.status)) {
        yield current;
        return;
      }
      for (;;) {
        const message = await live.next();
        if (message === null) {
          if (overflowed) throw new GatewayError(ErrorCode.QUOTA_EXCEEDED, 'the subscriber read too slowly: more than STREAMLINE_WS_MAX_BUFFERED_EVENTS messages waited for it', { limit: 'STREAMLINE_WS_MAX_BUFFERED_EVENTS' });
          return;
        }
        if (message.kind !== 'plan') continue;
        yield message.plan;
        if (FINAL_STATUSES.has(message.plan.status)) return;
      }
    }
    this.streams.open++;
    return withCleanup(changes(), () => {
      this.streams.open--;
      unsubscribe();
      live.close();
    });
  }

  /** Every change of a plan on this replica comes here: the cached copy is forgotten, then subscribers (and other replicas) are told. */
  publish(plan: PruningPlan): void {
    this.store.cache?.forget(plan.id);
    this.bus.publish(plan.id, { kind: 'plan', plan });
  }
}
