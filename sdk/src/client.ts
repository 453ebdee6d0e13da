/**
 * StreamlineClient: the typed facade over the gateway's GraphQL API. One method per operation (typed by
 * the generated documents), plus the workflow helpers `dryRun` and `prune`. Queries and mutations go
 * over HTTP, subscriptions over graphql-ws; every failure is a StreamlineError subclass (errors.ts).
 */
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { NotFoundError } from './errors.js';
import {
  ApiTokensDocument,
  CancelCandidateDocument,
  CancelPlanDocument,
  CreateApiTokenDocument,
  CreatePruningPlanDocument,
  CreateTenantDocument,
  DeleteModelDocument,
  ExportCandidateDocument,
  ModelDocument,
  ModelsDocument,
  PlanDocument,
  PlanDownloadsDocument,
  PlansDocument,
  RegisterModelDocument,
  RetryPlanDocument,
  RevokeApiTokenDocument,
  StorageHealthDocument,
  TenantsDocument,
  ViewerDocument,
} from './generated/graphql.js';
import { HttpTransport } from './http-transport.js';
import { PlanHandle } from './plan-handle.js';
import type {
  ApiToken,
  CreatePruningPlanInput,
  DatasetInput,
  LayerImportance,
  Model,
  ModelWithPlans,
  NewApiToken,
  OutputDownload,
  Plan,
  PlanCandidate,
  PlanStatus,
  PlanSummary,
  RegisterModelInput,
  Role,
  StorageHealth,
  SweepInput,
  Tenant,
  Viewer,
} from './types.js';
import { webSocketUrl, WsTransport } from './ws-transport.js';

export interface StreamlineClientOptions {
  /** The GraphQL endpoint, e.g. http://localhost:4000/graphql. */
  readonly url: string;
  /** Sent as `Authorization: Bearer <token>` (HTTP) and as the `authorization` connection parameter (WebSocket). */
  readonly token?: string;
  /** Per HTTP attempt, and for a WebSocket connection to be acknowledged. Default 30 s. */
  readonly timeoutMs?: number;
  /** Retries of idempotent queries, and reconnections of a subscription in a row. Default 3. */
  readonly retries?: number;
  /** First delay between retries; doubles each time. Default 250 ms. */
  readonly retryDelayMs?: number;
  /** Subscriptions' URL; default: `url` with ws:// or wss://. */
  readonly wsUrl?: string;
  /** A WebSocket class; default: the global one (browsers, Node 22+), else the `ws` package. */
  readonly webSocketImpl?: unknown;
  /** Default: the global fetch. */
  readonly fetch?: typeof fetch;
}

export class StreamlineClient {
  readonly url: string;
  readonly retries: number;
  readonly retryDelayMs: number;
  private readonly http: HttpTransport;
  private readonly ws: WsTransport;

  constructor(options: StreamlineClientOptions) {
    this.url = options.url;
    this.retries = options.retries ?? 3;
    this.retryDelayMs = options.retryDelayMs ?? 250;
    const timeoutMs = options.timeoutMs ?? 30_000;
    this.http = new HttpTransport({ url: options.url, token: options.token, timeoutMs, retries: this.retries, retryDelayMs: this.retryDelayMs, fetch: options.fetch ?? globalThis.fetch.bind(globalThis) });
    this.ws = new WsTransport({ wsUrl: options.wsUrl ?? webSocketUrl(options.url), token: options.token, timeoutMs, webSocketImpl: options.webSocketImpl });
  }

  // --- any generated (or hand-written typed) document ---

  /** A query: retried after network failures. */
  query<TData, TVariables>(document: TypedDocumentNode<TData, TVariables>, variables: TVariables): Promise<TData> {
    return this.http.request(document, variables, { idempotent: true });
  }

  /** A mutation: sent once, never retried (it may have happened even when its answer was lost). */
  mutate<TData, TVariables>(document: TypedDocumentNode<TData, TVariables>, variables: TVariables): Promise<TData> {
    return this.http.request(document, variables, { idempotent: false });
  }

  /** A subscription's data, until the server completes it. Not resumed: see PlanHandle.progress for that. */
  subscribe<TData, TVariables>(document: TypedDocumentNode<TData, TVariables>, variables: TVariables): AsyncGenerator<TData> {
    return this.ws.subscribe(document, variables);
  }

  /** Closes the subscription connection (HTTP needs no closing). */
  close(): Promise<void> {
    return this.ws.close();
  }

  // --- models ---

  /**
   * Registers a model from `source` (a file://, s3:// or hf:// URI the gateway allows) or, with
   * `fromPlan`, from the output of one of your SUCCEEDED plans — exactly one of the two.
   */
  async registerModel(input: RegisterModelInput): Promise<Model> {
    return (await this.mutate(RegisterModelDocument, { input })).registerModel;
  }

  async models(): Promise<Model[]> {
    return (await this.query(ModelsDocument, {})).models;
  }

  /** Throws NotFoundError when there is no such model. */
  async model(id: string): Promise<ModelWithPlans> {
    const { model } = await this.query(ModelDocument, { id });
    if (!model) throw new NotFoundError(`model ${JSON.stringify(id)} not found`);
    return model;
  }

  /**
   * Deletes a model. One with plans throws ConflictError (the message says how many) unless `force`:
   * then its queued and running plans are cancelled and it goes with every plan and their outputs.
   */
  async deleteModel(id: string, options: { force?: boolean } = {}): Promise<boolean> {
    return (await this.mutate(DeleteModelDocument, { id, force: options.force ?? false })).deleteModel;
  }

  // --- plans ---

  async createPruningPlan(input: CreatePruningPlanInput): Promise<PlanSummary> {
    return (await this.mutate(CreatePruningPlanDocument, { input })).createPruningPlan;
  }

  /** Throws NotFoundError when there is no such plan. `eventsAfter`/`eventsLimit` page its progress events. */
  async plan(id: string, options: { eventsAfter?: number; eventsLimit?: number } = {}): Promise<Plan> {
    const { plan } = await this.query(PlanDocument, { id, ...options });
    if (!plan) throw new NotFoundError(`plan ${JSON.stringify(id)} not found`);
    return plan;
  }

  async plans(status?: PlanStatus): Promise<PlanSummary[]> {
    return (await this.query(PlansDocument, { status })).plans;
  }

  /**
   * Pre-signed download URLs for every file of a SUCCEEDED plan's output in S3, valid for
   * `expiresInSeconds` (default 1 hour, at most 7 days); null when the output is not in S3 (a file://
   * output) or the plan has not succeeded. Throws NotFoundError when there is no such plan.
   */
  async downloads(id: string, expiresInSeconds?: number): Promise<OutputDownload[] | null> {
    const { plan } = await this.query(PlanDownloadsDocument, { id, expiresInSeconds });
    if (!plan) throw new NotFoundError(`plan ${JSON.stringify(id)} not found`);
    return plan.downloads ?? null;
  }

  /** Throws ConflictError when the plan has already finished. */
  async cancelPlan(id: string): Promise<PlanSummary> {
    return (await this.mutate(CancelPlanDocument, { id })).cancelPlan;
  }

  /**
   * A new QUEUED plan with the settings of a FAILED or CANCELLED plan, on the same model. Throws
   * ConflictError for a plan in any other status, NotFoundError for an unknown plan (or another
   * tenant's), and what createPruningPlan throws when the model or its files changed meanwhile.
   */
  async retryPlan(id: string): Promise<PlanSummary> {
    return (await this.mutate(RetryPlanDocument, { id })).retryPlan;
  }

  /**
   * Publishes a DONE candidate of a SUCCEEDED sweep as a pruned checkpoint: a new plan (nothing is trained
   * again). Throws ConflictError when the sweep has not succeeded or the candidate was cancelled, and
   * BadUserInputError for a plan that is not a sweep or an id that is not one of its candidates.
   */
  async exportCandidate(planId: string, candidateId: string): Promise<PlanSummary> {
    return (await this.mutate(ExportCandidateDocument, { planId, candidateId })).exportCandidate;
  }

  /** Cancels one candidate (`n<size>-s<start>-<kind>`) of a QUEUED or RUNNING sweep; the others go on. */
  async cancelCandidate(planId: string, candidateId: string): Promise<PlanSummary> {
    return (await this.mutate(CancelCandidateDocument, { planId, candidateId })).cancelCandidate;
  }

  /** A handle on an existing plan: progress, wait, cancel. */
  planHandle(id: string): PlanHandle {
    return new PlanHandle(this, id);
  }

  // --- tenants and API tokens (admins) ---

  /** The tenant and role of this client's token. */
  async viewer(): Promise<Viewer> {
    return (await this.query(ViewerDocument, {})).viewer;
  }

  /** Admins of the default tenant: every tenant; anyone else: their own. */
  async tenants(): Promise<Tenant[]> {
    return (await this.query(TenantsDocument, {})).tenants;
  }

  /** Admins of the default tenant: a new tenant, without tokens yet (createApiToken gives it one). */
  async createTenant(name: string): Promise<Tenant> {
    return (await this.mutate(CreateTenantDocument, { name })).createTenant;
  }

  /** Admins of the default tenant: whether the gateway's storage takes a write now. */
  async storageHealth(): Promise<StorageHealth> {
    return (await this.query(StorageHealthDocument, {})).storageHealth;
  }

  /** A tenant's API tokens (default: the caller's tenant), revoked and expired ones included; never their values. */
  async apiTokens(tenantId?: string): Promise<ApiToken[]> {
    return (await this.query(ApiTokensDocument, { tenantId })).apiTokens;
  }

  /**
   * A new API token for a tenant; its value (`token`) is returned this once. Optionally expiring after
   * `expiresInDays` or at `expiresAt` (an ISO time), not both.
   */
  async createApiToken(tenantId: string, options: { role?: Role; expiresInDays?: number; expiresAt?: string } = {}): Promise<NewApiToken> {
    return (await this.mutate(CreateApiTokenDocument, { tenantId, ...options })).createApiToken;
  }

  /**
   * Refuses the token from now on, on every gateway replica. Throws NotFoundError for a token the
   * caller cannot see, ConflictError for the default tenant's last usable admin token.
   */
  async revokeApiToken(id: string): Promise<ApiToken> {
    return (await this.mutate(RevokeApiTokenDocument, { id })).revokeApiToken;
  }

  // --- workflows ---

  /** Queues a pruning plan and returns its handle at once; `await handle.wait()` for the result. */
  async prune(input: CreatePruningPlanInput): Promise<PlanHandle> {
    const plan = await this.createPruningPlan(input);
    return new PlanHandle(this, plan.id);
  }

  /**
   * Runs a sweep (many candidates in one plan) and resolves with its candidates once it finishes;
   * `candidate.pareto` marks the front of parameters removed against perplexity. Export one with
   * exportCandidate.
   */
  async sweep(input: Omit<CreatePruningPlanInput, 'sweep' | 'layersToPrune' | 'targetSparsity' | 'startLayer'> & { sweep: SweepInput }): Promise<{ plan: Plan; candidates: PlanCandidate[] }> {
    const plan = await (await this.prune(input)).wait();
    return { plan, candidates: plan.candidates };
  }

  /**
   * Profiles every block size of a model on calibration data without training or writing anything,
   * and resolves with the profiles (every metric, every block size) once the dry-run plan finishes.
   */
  async dryRun(modelId: string, calibration: DatasetInput, options: { layersToPrune?: number } = {}): Promise<LayerImportance[]> {
    // The gateway needs a block size even for a dry run; the profiles cover all of them regardless.
    const handle = await this.prune({ modelId, dryRun: true, layersToPrune: options.layersToPrune ?? 1, calibration });
    return (await handle.wait()).profiles;
  }
}
