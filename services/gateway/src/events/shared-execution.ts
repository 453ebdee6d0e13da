/**
 * Subscriptions over graphql-ws, with each event executed once per distinct operation rather than once
 * per subscriber. graphql's `subscribe` maps every event of every subscriber through `execute`; a
 * thousand clients watching one plan with the same document and variables would run the same
 * execution a thousand times per event. Here the result is kept per event object (a WeakMap: it lives
 * as long as the event is being delivered) and per operation key: the tenant, the operation name, the
 * variables and the document's text. Only identical operations of one tenant share a result, and the
 * subscription fields' values depend only on the event and those (no field reads the caller's role).
 */
import { createSourceEventStream, execute, type DocumentNode, type ExecutionArgs, type ExecutionResult } from 'graphql';

/** The text each parsed subscription document came from (set where graphql-ws documents are parsed). */
const documentTexts = new WeakMap<DocumentNode, string>();

export function rememberDocumentText(document: DocumentNode, text: string): void {
  documentTexts.set(document, text);
}

type Result = ExecutionResult | Promise<ExecutionResult>;

/** Counts of executions run and shared (for tests and /metrics). */
export const sharedExecutions = { executed: 0, shared: 0 };

/** A `subscribe` for graphql-ws's server options; `scope` names what must match besides the operation (the tenant). */
export function subscribeSharingExecutions(scope: (contextValue: unknown) => string | null) {
  const results = new WeakMap<object, Map<string, Result>>();
  return async (args: ExecutionArgs): Promise<AsyncIterableIterator<ExecutionResult> | ExecutionResult> => {
    const stream = await createSourceEventStream(args);
    if (!isAsyncIterable(stream)) return stream as ExecutionResult;
    const text = documentTexts.get(args.document);
    const owner = scope(args.contextValue);
    const key = text === undefined || owner === null ? null : `${owner}\u0000${args.operationName ?? ''}\u0000${JSON.stringify(args.variableValues ?? {})}\u0000${text}`;
    const run = (payload: unknown): Result => {
      sharedExecutions.executed++;
      return execute({ ...args, rootValue: payload });
    };
    const resultFor = (payload: unknown): Result => {
      if (key === null || typeof payload !== 'object' || payload === null) return run(payload);
      let byKey = results.get(payload);
      if (!byKey) results.set(payload, (byKey = new Map()));
      const known = byKey.get(key);
      if (known) {
        sharedExecutions.shared++;
        return known;
      }
      const result = run(payload);
      byKey.set(key, result);
      return result;
    };
    return mapEvents(stream, resultFor);
  };
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof value === 'object' && value !== null && Symbol.asyncIterator in value;
}

/**
 * graphql's mapAsyncIterator: an iterator object, not an async generator, so that return() (the client
 * leaving) reaches the source at once even while a next() waits for an event — a generator would queue
 * it behind that next(), and graphql-ws waits for it before releasing the connection's quotas.
 */
function mapEvents(source: AsyncIterable<unknown>, map: (payload: unknown) => Result): AsyncIterableIterator<ExecutionResult> {
  const iterator = source[Symbol.asyncIterator]();
  return {
    async next() {
      const next = await iterator.next();
      if (next.done) return { done: true, value: undefined };
      return { done: false, value: await map(next.value) };
    },
    async return() {
      await iterator.return?.();
      return { done: true, value: undefined };
    },
    async throw(error?: unknown) {
      if (iterator.throw) await iterator.throw(error);
      else await iterator.return?.();
      throw error;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
