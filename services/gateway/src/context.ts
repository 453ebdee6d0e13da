/**
 * What every resolver reaches through the request: the gateway's services. Resolver instances are made
 * per gateway (not per process), so several gateways in one process (tests) never share state.
 */
import type { ContainerType } from 'type-graphql';
import type { AuthService } from './auth/auth.service.js';
import type { CandidateService } from './candidates/candidate.service.js';
import type { Principal } from './auth/principal.js';
import type { DownloadService } from './downloads/download.service.js';
import type { PlanEstimateService } from './plan-estimates/plan-estimate.service.js';
import type { RequestLoaders } from './loaders.js';
import type { RequestDeadline } from './limits/http-transport.js';
import type { HealthService } from './health/health.service.js';
import type { ImportanceService } from './importance/importance.service.js';
import type { ModelDeletion } from './models/model.deletion.js';
import type { ModelService } from './models/model.service.js';
import type { PlanService } from './plans/plan.service.js';
import type { ProgressService } from './progress/progress.service.js';
import type { StabilityService } from './stability/stability.service.js';
import type { WorkerService } from './workers/worker.service.js';

export interface Services {
  readonly models: ModelService;
  readonly modelDeletion: ModelDeletion;
  readonly plans: PlanService;
  readonly candidates: CandidateService;
  readonly progress: ProgressService;
  readonly importance: ImportanceService;
  readonly stability: StabilityService;
  readonly workers: WorkerService;
  readonly auth: AuthService;
  readonly downloads: DownloadService;
  readonly health: HealthService;
  readonly estimates: PlanEstimateService;
}

/**
 * A subscription holds at most `maxBuffered` messages its client has not taken yet; past that the client
 * is too slow to follow, and `overflow` disconnects it, saying how to resume (`afterSeq`).
 */
export interface Backpressure {
  readonly maxBuffered: number;
  overflow(resume: string): void;
}

export interface GatewayContext {
  readonly services: Services;
  /** Hands type-graphql this gateway's resolver instances. */
  readonly container: ContainerType;
  /** The request's Authorization header (HTTP) or connection parameter (WebSocket). */
  readonly authorization: string | null;
  /** The token engine workers present; null disables the worker API. */
  readonly workerToken: string | null;
  /** Who sent the request, from `authorization`: a tenant's API token, the worker token, or nobody. */
  readonly principal: Principal;
  /** Batched loads of nested fields for this request or operation (loaders.ts). */
  readonly loaders: RequestLoaders;
  /** graphql-ws operations: how much a subscription may hold for a client that reads too slowly, and what then. */
  readonly backpressure?: Backpressure;
  /** HTTP requests: stopped at the request's deadline (STREAMLINE_REQUEST_TIMEOUT_MS) or when the client goes away; `deadline.signal` is its AbortSignal. */
  readonly deadline?: RequestDeadline;
}
