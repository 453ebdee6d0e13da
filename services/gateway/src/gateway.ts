/**
 * Wires one gateway instance: database → stores → services → resolver instances. Kept apart from the
 * HTTP server so that tests and tools can use the services without a port.
 */
import type { ContainerType } from 'type-graphql';
import { AuthResolver } from './auth/auth.resolver.js';
import { AuthService } from './auth/auth.service.js';
import { AuthStore } from './auth/auth.store.js';
import { DownloadResolver } from './downloads/download.resolver.js';
import { DownloadService } from './downloads/download.service.js';
import type { Services } from './context.js';
import { ImportanceResolver } from './importance/importance.resolver.js';
import { ImportanceService } from './importance/importance.service.js';
import { ImportanceStore } from './importance/importance.store.js';
import { HealthResolver } from './health/health.resolver.js';
import { HealthService } from './health/health.service.js';
import { ModelDeletion } from './models/model.deletion.js';
import { ModelResolver } from './models/model.resolver.js';
import { inspectInThreads } from './models/model-inspection.js';
import { ModelService, type InspectModel } from './models/model.service.js';
import { ModelStore } from './models/model.store.js';
import { SourceService } from './sources/source.service.js';
import { deniedSourceDirs, type SourcePolicy } from './sources/source.settings.js';
import type { PlanEventBus } from './events/plan-events.js';
import { PlanDefaultsResolver } from './plan-defaults/plan-defaults.resolver.js';
import { PlanEstimateResolver } from './plan-estimates/plan-estimate.resolver.js';
import { PlanEstimateService } from './plan-estimates/plan-estimate.service.js';
import { PlanResolver } from './plans/plan.resolver.js';
import { PlanService } from './plans/plan.service.js';
import { CandidateService } from './candidates/candidate.service.js';
import { CandidateResolver } from './candidates/candidate.resolver.js';
import { PlanLifecycle } from './plans/plan.lifecycle.js';
import { PlanCache, PlanStore } from './plans/plan.store.js';
import { DEFAULT_PLAN_LIMITS, type PlanLimits } from './plans/plan.limits.js';
import { PlanWorkCleanup } from './plans/plan.cleanup.js';
import { ProgressResolver } from './progress/progress.resolver.js';
import { ProgressService } from './progress/progress.service.js';
import { ProgressStore } from './progress/progress.store.js';
import { StabilityResolver } from './stability/stability.resolver.js';
import { StabilityService } from './stability/stability.service.js';
import { StabilityStore } from './stability/stability.store.js';
import type { Db } from './store/database.js';
import { WorkerResolver } from './workers/worker.resolver.js';
import { WorkerService } from './workers/worker.service.js';

export interface ServiceOptions {
  readonly bus: PlanEventBus;
  /** Used by plans that give no calibration dataset; null makes `calibration` required. */
  readonly defaultCalibrationSource?: string | null;
  /** The engine's inspection in worker threads with a deadline by default; replaceable (in-process) for tests. */
  readonly inspectModel?: InspectModel;
  /** How long a worker's claim or heartbeat keeps a plan. */
  readonly leaseMs?: number;
  /** 'off' lets requests without a valid API token act as the default tenant's admin. Default 'on'. */
  readonly auth?: 'on' | 'off';
  /** The engine workers' token; null (the default) disables the worker API. */
  readonly workerToken?: string | null;
  /** More worker tokens accepted beside workerToken (STREAMLINE_WORKER_TOKENS, during a rotation). */
  readonly workerTokens?: readonly string[];
  /** STREAMLINE_STORAGE, and where S3/Hugging Face settings come from (default process.env), for s3:// and hf:// sources. */
  readonly storage?: string;
  readonly storageEnv?: NodeJS.ProcessEnv;
  /** Where tenants' sources may come from, and the data directory no file:// source may lie in. */
  readonly sources?: { readonly policy?: SourcePolicy; readonly dataDir?: string };
  /** Per-tenant quotas and bounds on plan settings; default DEFAULT_PLAN_LIMITS. */
  readonly planLimits?: PlanLimits;
  /** The data directory (local workers' work directories), for cleaning up after plans cancelled while queued. */
  readonly dataDir?: string;
  /** Plans read by id, kept between requests (see PlanCache); default a new one with PLAN_CACHE_MS. */
  readonly planCache?: PlanCache;
  /** How long a looked-up API token is trusted (AuthOptions.tokenCacheMs). */
  readonly tokenCacheMs?: number;
}

export function createServices(db: Db, options: ServiceOptions): Services {
  const inspect = options.inspectModel ?? inspectInThreads();
  const planStore = new PlanStore(db, options.planCache ?? new PlanCache());
  const lifecycle = new PlanLifecycle(db);
  const progressStore = new ProgressStore(db);
  const sources = new SourceService(inspect, {
    storage: options.storage,
    env: options.storageEnv,
    policy: options.sources?.policy,
    deniedDirs: deniedSourceDirs(options.sources?.dataDir, options.storage),
  });
  const models = new ModelService(new ModelStore(db), planStore, sources);
  const cleanup = options.dataDir === undefined ? undefined : new PlanWorkCleanup({ dataDir: options.dataDir, storage: options.storage, storageEnv: options.storageEnv });
  const plans = new PlanService(planStore, lifecycle, progressStore, models, options.bus, sources, {
    defaultCalibrationSource: options.defaultCalibrationSource ?? null,
    limits: options.planLimits ?? DEFAULT_PLAN_LIMITS,
    cleanup,
  });
  const modelDeletion = new ModelDeletion(models, plans, cleanup);
  const progress = new ProgressService(progressStore, planStore, plans, options.bus);
  const importance = new ImportanceService(new ImportanceStore(db));
  const stability = new StabilityService(new StabilityStore(db));
  const workers = new WorkerService(lifecycle, planStore, plans, progress, models, importance, stability, {
    leaseMs: options.leaseMs,
    fileAccess: { roots: sources.policy.fileRoots ?? [], denied: sources.deniedDirs, defaultCalibrationSource: options.defaultCalibrationSource ?? null },
    maxRunningPerTenant: (options.planLimits ?? DEFAULT_PLAN_LIMITS).maxRunningPerTenant,
  });
  const auth = new AuthService(new AuthStore(db), { auth: options.auth ?? 'on', workerToken: options.workerToken ?? null, workerTokens: options.workerTokens, tokenCacheMs: options.tokenCacheMs });
  const downloads = new DownloadService(options.storageEnv ?? process.env);
  const health = new HealthService({ dataDir: options.dataDir, storage: options.storage, storageEnv: options.storageEnv });
  const candidates = new CandidateService(plans, lifecycle);
  const estimates = new PlanEstimateService(models, sources);
  return { models, modelDeletion, plans, candidates, progress, importance, stability, workers, auth, downloads, health, estimates };
}

/** type-graphql asks this for a resolver instance; each gateway has its own, built on its services. */
export function createResolverContainer(services: Services): ContainerType {
  const instances = new Map<unknown, unknown>([
    [ModelResolver, new ModelResolver(services.models, services.modelDeletion, services.importance)],
    [PlanResolver, new PlanResolver(services.plans, services.models, services.importance, services.stability)],
    [CandidateResolver, new CandidateResolver(services.candidates)],
    [ProgressResolver, new ProgressResolver()],
    [ImportanceResolver, new ImportanceResolver(services.importance, services.models)],
    [StabilityResolver, new StabilityResolver(services.plans)],
    [WorkerResolver, new WorkerResolver(services.workers)],
    [AuthResolver, new AuthResolver(services.auth)],
    [DownloadResolver, new DownloadResolver(services.downloads)],
    [HealthResolver, new HealthResolver(services.health)],
    [PlanDefaultsResolver, new PlanDefaultsResolver()],
    [PlanEstimateResolver, new PlanEstimateResolver(services.estimates)],
  ]);
  return {
    get(resolverClass: unknown) {
      const instance = instances.get(resolverClass);
      if (!instance) throw new Error(`no resolver instance for ${String((resolverClass as { name?: string }).name)}`);
      return instance;
    },
  };
}
