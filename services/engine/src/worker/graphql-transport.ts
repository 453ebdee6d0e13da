/**
 * The worker side of the gateway's worker API: GraphQL over HTTP with the worker token as a Bearer
 * token. The gateway answers a claim with the plan's assignment (its spec, model and file access: see
 * contract/plan-assignment.ts) and the plan contract version it is written in; progress, results and failures go back as
 * mutations. The documents are operations/worker.graphql, typed by codegen from schema.graphql into
 * generated/graphql.ts (`npm run codegen -w services/engine`) and sent as their source text.
 */
import type { EngineErrorCode } from '../errors.js';
import type { PlanEvent } from '../contract/plan-event.js';
import type { PlanResult } from '../contract/plan-result.js';
import { BeatDocument, ClaimDocument, CompleteDocument, FailDocument, ReleaseDocument, ReportDocument, type TypedDocumentString } from './generated/graphql.js';
import { PlanContractMismatch, type ClaimedPlan, type EventBatch, type WorkerTransport } from './worker.js';

export interface GraphqlTransportOptions {
  /** The gateway's GraphQL endpoint, e.g. http://127.0.0.1:4000/graphql. */
  readonly url: string;
  readonly token: string;
  readonly workerId: string;
  readonly timeoutMs?: number;
  /** How long to keep retrying while the gateway cannot be reached; default 2 minutes. */
  readonly unavailableRetryMs?: number;
  /**
   * The worker's stop signal: once it is aborted, a claim stops retrying an unreachable gateway (a
   * stopping worker takes no new plan, so it need not wait out unavailableRetryMs). Releases and results
   * keep retrying: they finish the plan in hand.
   */
  readonly stop?: AbortSignal;
}

export class GraphqlWorkerTransport implements WorkerTransport {
  constructor(private readonly options: GraphqlTransportOptions) {}

  async claim(): Promise<ClaimedPlan | null> {
    const { claimPlan } = await this.request(ClaimDocument, {}, false, this.options.stop).catch((error: Error) => {
      // A gateway from before contract versions refuses the whole query (nothing was claimed).
      if (error.message.includes('Cannot query field "contractVersion"')) throw new PlanContractMismatch(null, null);
      throw error;
    });
    // The config is checked by the worker only once contractVersion says it can be read (runWorker).
    return claimPlan && { planId: claimPlan.planId, config: claimPlan.config, contractVersion: claimPlan.contractVersion };
  }

  async heartbeat(planId: string): Promise<{ cancelled: boolean; ended: boolean; cancelledCandidates: readonly string[] }> {
    const { heartbeat } = await this.request(BeatDocument, { planId }, true);
    return heartbeat;
  }

  /** Numbered by `batch`, so a resend after a dropped connection is safe: the gateway skips what it has. */
  async report(planId: string, events: readonly PlanEvent[], batch: EventBatch): Promise<void> {
    const progress = events.map((e) => ({ ...e, validationLoss: e.validationLoss ?? null }));
    await this.request(ReportDocument, { planId, events: progress, run: batch.run, firstIndex: batch.firstIndex }, true);
  }

  async complete(planId: string, result: PlanResult): Promise<void> {
    await this.request(CompleteDocument, { planId, result });
  }

  async fail(planId: string, message: string, code?: EngineErrorCode): Promise<void> {
    await this.request(FailDocument, { planId, error: message, code: code ?? null });
  }

  async release(planId: string): Promise<void> {
    await this.request(ReleaseDocument, { planId });
  }

  /**
   * One GraphQL request. While the gateway is unreachable — restarting, or a replica going away behind
   * its Service — the request is retried with backoff for up to `unavailableRetryMs`: a refused
   * connection or a 502/503 from a proxy means the gateway never processed it, so nothing is sent twice.
   * A connection dropped mid-request is ambiguous and is retried only for `idempotent` requests (heartbeats,
   * and progress batches, which the gateway stores once however often they are sent).
   */
  private async request<T, V extends { workerId: string }>(
    document: TypedDocumentString<T, V>,
    variables: Omit<V, 'workerId'>,
    idempotent = false,
    stop?: AbortSignal,
  ): Promise<T> {
    const query = document.toString();
    const deadline = Date.now() + (this.options.unavailableRetryMs ?? 120_000);
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.send<T>(query, variables);
      } catch (error) {
        const retry = error instanceof GatewayUnavailable && (error.unprocessed || idempotent);
        if (!retry || Date.now() >= deadline || stop?.aborted) throw error;
        await waitOrStop(Math.min(5000, 250 * 2 ** attempt), stop);
      }
    }
  }

  private async send<T>(query: string, variables: object): Promise<T> {
    let response: Response;
    try {
      response = await fetch(this.options.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${this.options.token}` },
        body: JSON.stringify({ query, variables: { ...variables, workerId: this.options.workerId } }),
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 30_000),
      });
    } catch (error) {
      const code = (error as { cause?: { code?: string } }).cause?.code ?? '';
      const reason = code || (error as Error).message;
      throw new GatewayUnavailable(`gateway ${this.options.url} unreachable: ${reason}`, UNPROCESSED_CODES.has(code));
    }
    const body = (await response.json().catch(() => null)) as { data?: T; errors?: { message: string; extensions?: { code?: string } }[] } | null;
    if (!body) {
      if (response.status === 502 || response.status === 503) throw new GatewayUnavailable(`gateway ${this.options.url} answered HTTP ${response.status}`, true);
      throw new Error(`gateway answered HTTP ${response.status} without a GraphQL body`);
    }
    if (body.errors?.length) {
      const [first] = body.errors;
      throw new Error(`gateway: ${first.extensions?.code ?? 'ERROR'}: ${first.message}`);
    }
    return body.data as T;
  }
}

/** Errors where no connection was made at all: the request cannot have been processed. */
const UNPROCESSED_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

class GatewayUnavailable extends Error {
  constructor(
    message: string,
    readonly unprocessed: boolean,
  ) {
    super(message);
  }
}

/** Resolves after `ms`, or at once when `stop` is aborted. */
function waitOrStop(ms: number, stop: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    stop?.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      stop?.removeEventListener('abort', done);
      resolve();
    }
  });
}
