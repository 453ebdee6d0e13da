/**
 * Queries and mutations over HTTP with fetch (Node 20 and browsers have it). Each attempt has its own
 * timeout; only operations the caller marks idempotent are retried, because a mutation whose answer was
 * lost may still have happened (a retried createPruningPlan would queue a second plan).
 */
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print, type DocumentNode } from 'graphql';
import { errorFromResponse, NetworkError, type ServerError } from './errors.js';

export interface HttpTransportOptions {
  readonly url: string;
  readonly token?: string;
  /** Per attempt. */
  readonly timeoutMs: number;
  /** Extra attempts for idempotent operations after a network failure or a 5xx without a GraphQL answer. */
  readonly retries: number;
  /** First backoff delay; doubles each retry. */
  readonly retryDelayMs: number;
  readonly fetch: typeof fetch;
}

interface GraphQLResponseBody<T> {
  data?: T | null;
  errors?: ServerError[];
}

// Printing a document is cheap but not free, and the same few documents are sent over and over.
const printed = new WeakMap<DocumentNode, string>();
export function documentText(document: DocumentNode): string {
  let text = printed.get(document);
  if (text === undefined) {
    text = print(document);
    printed.set(document, text);
  }
  return text;
}

export function authorizationHeader(token: string | undefined): string | undefined {
  return token ? `Bearer ${token}` : undefined;
}

export class HttpTransport {
  constructor(private readonly options: HttpTransportOptions) {}

  async request<TData, TVariables>(document: TypedDocumentNode<TData, TVariables>, variables: TVariables, { idempotent }: { idempotent: boolean }): Promise<TData> {
    const attempts = idempotent ? this.options.retries + 1 : 1;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.attempt(document, variables);
      } catch (error) {
        const retryable = error instanceof NetworkError && (error.status === undefined || error.status >= 500);
        if (!retryable || attempt >= attempts) throw error;
        await sleep(this.options.retryDelayMs * 2 ** (attempt - 1));
      }
    }
  }

  private async attempt<TData, TVariables>(document: TypedDocumentNode<TData, TVariables>, variables: TVariables): Promise<TData> {
    const { url, token, timeoutMs } = this.options;
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' };
    const authorization = authorizationHeader(token);
    if (authorization) headers.authorization = authorization;

    let response: Response;
    let body: GraphQLResponseBody<TData> | null = null;
    try {
      response = await this.options.fetch(url, {
        method: 'POST',
        headers,
        body: JSON.stringify({ query: documentText(document), variables }),
        signal: AbortSignal.timeout(timeoutMs),
      });
      body = (await response.json().catch(() => null)) as GraphQLResponseBody<TData> | null;
    } catch (error) {
      const reason = (error as Error)?.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : describeCause(error);
      throw new NetworkError(`${url}: ${reason}`, undefined, { cause: error });
    }
    // GraphQL errors come with 200 or 4xx (Apollo answers invalid operations with 400): they are the answer.
    if (body?.errors?.length) throw errorFromResponse(body.errors);
    if (!response.ok || !body || body.data == null) {
      throw new NetworkError(`${url}: HTTP ${response.status} ${response.statusText} without a GraphQL answer`, response.status);
    }
    return body.data;
  }
}

/** fetch's TypeError says only "fetch failed"; the reason (ECONNREFUSED …) is in its cause. */
function describeCause(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } })?.cause;
  const message = error instanceof Error ? error.message : String(error);
  return cause?.code ? `${message} (${cause.code})` : cause?.message ? `${message} (${cause.message})` : message;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
