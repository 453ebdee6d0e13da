/**
 * The worker side of the gateway's worker API: GraphQL over HTTP with the worker token as a Bearer
 * token. The gateway answers a claim with the plan's config already in the engine's shape (local
 * paths); progress, results and failures go back as mutations.
 */
import type { EngineErrorCode } from '../errors.js';
import type { PlanEvent } from '../plan-runner.js';
import type { ClaimedPlan, EventBatch, PlanResult, WorkerTransport } from './worker.js';

export interface GraphqlTransportOptions {
  /** The gateway's GraphQL endpoint, e.g. http://127.0.0.1:4000/graphql. */
  readonly url: string;
  readonly token: string;
  readonly workerId: string;
  readonly timeoutMs?: number;
  /** How long to keep retrying while the gateway cannot be reached; default 2 minutes. */
  readonly unavailableRetryMs?: number;
}

export class GraphqlWorkerTransport implements WorkerTransport {
  constructor(private readonly options: GraphqlTransportOptions) {}

  async claim(): Promise<ClaimedPlan | null> {
    const data = await this.request<{ claimPlan: { planId: string; config: ClaimedPlan['config'] } | null }>(
      'mutation Claim($workerId: String!) { claimPlan(workerId: $workerId) { planId config } }',
      {},
    );
    return data.claimPlan;
  }

  async heartbeat(planId: string): Promise<{ cancelled: boolean; ended: boolean }> {
    const data = await this.request<{ heartbeat: { cancelled: boolean; ended: boolean } }>(
      'mutation Beat($planId: ID!, $workerId: String!) { heartbeat(planId: $planId, workerId: $workerId) { cancelled ended } }',
      { planId },
      true,
    );
    return data.heartbeat;
  }

  /** Numbered by `batch`, so a resend after a dropped connection is safe: the gateway skips what it has. */
  async report(planId: string, events: readonly PlanEvent[], batch: EventBatch): Promise<void> {
    await this.request(
      'mutation Report($planId: ID!, $workerId: String!, $events: [WorkerProgressInput!]!, $run: String, $firstIndex: Int) { reportProgress(planId: $planId, workerId: $workerId, events: $events, run: $run, firstIndex: $firstIndex) }',
      { planId, events: events.map((e) => ({ ...e, validationLoss: e.validationLoss ?? null })), run: batch.run, firstIndex: batch.firstIndex },
      true,
    );
  }

  async complete(planId: string, result: PlanResult): Promise<void> {
    await this.request('mutation Complete($planId: ID!, $workerId: String!, $result: JSON!) { completePlan(planId: $planId, workerId: $workerId, result: $result) }', {
      planId,
      result,
    });
  }

  async fail(planId: string, message: string, code?: EngineErrorCode): Promise<void> {
    await this.request('mutation Fail($planId: ID!, $workerId: String!, $error: String!, $code: EngineErrorCode) { failPlan(planId: $planId, workerId: $workerId, error: $error, code: $code) }', {
      planId,
      error: message,
      code: code ?? null,
    });
  }

  async release(planId: string): Promise<void> {
    await this.request('mutation Release($planId: ID!, $workerId: String!) { releasePlan(planId: $planId, workerId: $workerId) }', { planId });
  }

  /**
   * One GraphQL request. While the gateway is unreachable — restarting, or a replica going away behind
   * its Service — the request is retried with backoff for up to `unavailableRetryMs`: a refused
   * connection or a 502/503 from a proxy means the gateway never processed it, so nothing is sent twice.
   * A connection dropped mid-request is ambiguous and is retried only for `idempotent` requests (heartbeats,
   * and progress batches, which the gateway stores once however often they are sent).
   */
  private async request<T>(query: string, variables: Record<string, unknown>, idempotent = false): Promise<T> {
    const deadline = Date.now() + (this.options.unavailableRetryMs ?? 120_000);
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.send<T>(query, variables);
      } catch (error) {
        const retry = error instanceof GatewayUnavailable && (error.unprocessed || idempotent);
        if (!retry || Date.now() >= deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 250 * 2 ** attempt)));
      }
    }
  }

  private async send<T>(query: string, variables: Record<string, unknown>): Promise<T> {
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
