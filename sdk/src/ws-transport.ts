/**
 * Subscriptions over graphql-ws. Browsers (and Node 22+) have a global WebSocket; Node 20 has none, so
 * the `ws` package is loaded there, and only there, on first use. graphql-ws's own reconnection is off:
 * it would resubscribe with the original variables, and a progress stream must resume from the last
 * sequence number it saw instead (PlanHandle.progress does that), so a dropped connection surfaces here
 * as a NetworkError and the next subscription opens a fresh connection.
 */
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { CloseCode, createClient, type Client } from 'graphql-ws';
import { errorFromResponse, ForbiddenError, NetworkError, QuotaExceededError, StreamlineError, UnauthenticatedError, type ServerError } from './errors.js';
import { authorizationHeader, documentText } from './http-transport.js';

export interface WsTransportOptions {
  /** ws:// or wss:// URL of the GraphQL endpoint. */
  readonly wsUrl: string;
  readonly token?: string;
  /** How long to wait for the server to acknowledge a connection. */
  readonly timeoutMs: number;
  /** A WebSocket class; default: the global one, else the `ws` package. */
  readonly webSocketImpl?: unknown;
}

/** Close code of a connection refused because its tenant has too many (like HTTP 429). */
const TOO_MANY_CONNECTIONS = 4429;

export class WsTransport {
  private client: Client | null = null;

  constructor(private readonly options: WsTransportOptions) {}

  /** The data of each result; completes when the server completes the subscription. */
  async *subscribe<TData, TVariables>(document: TypedDocumentNode<TData, TVariables>, variables: TVariables): AsyncGenerator<TData> {
    const client = await this.connection();
    const results = client.iterate<TData>({ query: documentText(document), variables: variables as Record<string, unknown> });
    try {
      for await (const result of results) {
        if (result.errors?.length) throw errorFromResponse(result.errors as unknown as ServerError[]);
        yield result.data as TData;
      }
    } catch (error) {
      const mapped = this.mapError(error);
      // A connection that failed once is not reused: the next subscription dials again.
      if (mapped instanceof NetworkError && this.client === client) this.dropConnection();
      throw mapped;
    }
  }

  async close(): Promise<void> {
    this.dropConnection();
  }

  private dropConnection(): void {
    const client = this.client;
    this.client = null;
    void client?.dispose();
  }

  private async connection(): Promise<Client> {
    if (this.client) return this.client;
    const webSocketImpl = this.options.webSocketImpl ?? (await defaultWebSocket());
    if (this.client) return this.client; // another subscription connected while ws was loading
    const authorization = authorizationHeader(this.options.token);
    this.client = createClient({
      url: this.options.wsUrl,
      webSocketImpl,
      connectionParams: authorization ? { authorization } : {},
      connectionAckWaitTimeout: this.options.timeoutMs,
      lazy: true,
      // Close as soon as the last subscription ends, so a finished CLI command or script can exit.
      lazyCloseTimeout: 0,
      retryAttempts: 0,
    });
    return this.client;
  }

  private mapError(error: unknown): StreamlineError {
    if (error instanceof StreamlineError) return error;
    // The server refused the operation (graphql-ws `error` message): a list of GraphQL errors.
    if (Array.isArray(error)) return errorFromResponse(error as ServerError[]);
    if (isCloseEvent(error)) {
      if (error.code === CloseCode.Unauthorized) return new UnauthenticatedError(error.reason || 'the server needs a token to open a subscription');
      if (error.code === CloseCode.Forbidden) return new ForbiddenError(error.reason || 'the server refused this token for subscriptions');
      // the gateway's close code for a tenant over its limit on connections (STREAMLINE_WS_MAX_CONNECTIONS_PER_TENANT)
      if (error.code === TOO_MANY_CONNECTIONS) return new QuotaExceededError(error.reason || 'the tenant has too many open connections');
      return new NetworkError(`${this.options.wsUrl}: connection closed (${error.code}${error.reason ? ` ${error.reason}` : ''})`);
    }
    const message = error instanceof Error ? error.message : (error as { message?: string })?.message ?? 'connection failed';
    return new NetworkError(`${this.options.wsUrl}: ${message}`, undefined, { cause: error });
  }
}

function isCloseEvent(value: unknown): value is { code: number; reason: string } {
  return typeof value === 'object' && value !== null && typeof (value as { code?: unknown }).code === 'number' && 'reason' in value;
}

const WS_PACKAGE: string = 'ws';

async function defaultWebSocket(): Promise<unknown> {
  const global = (globalThis as { WebSocket?: unknown }).WebSocket;
  if (global) return global;
  // A specifier in a variable: bundlers building the browser entry (browser.ts) do not follow it, so a
  // page never carries the Node-only package; browsers take the global above anyway.
  const ws = (await import(WS_PACKAGE)) as typeof import('ws');
  return ws.default;
}

/** http://host/graphql → ws://host/graphql (the gateway serves both on one path). */
export function webSocketUrl(httpUrl: string): string {
  const url = new URL(httpUrl);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return url.href;
}
