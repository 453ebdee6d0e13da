/**
 * Executions that take turns with everything else. graphql-js resolves a query through promises; when
 * the resolvers answer from synchronous storage (better-sqlite3 under an async driver), a whole
 * execution runs in microtasks, and no other request, no /healthz and no timer gets the event loop
 * until it ends. Here, once fields have been resolved for SLICE_MS without a break, each further field
 * is queued instead of resolved; the queue is drained SLICE_MS at a time on later turns of the event
 * loop (setImmediate), with I/O — other requests — served in between. Requests that finish within a
 * slice are not delayed at all.
 */
import { defaultFieldResolver, isObjectType, type GraphQLFieldResolver, type GraphQLSchema } from 'graphql';

export const SLICE_MS = 20;

const WRAPPED = Symbol('streamline.takesTurns');

/**
 * Wraps every field resolver of `schema` in place, once (Apollo's instrumentation, added at its first request, wraps around it).
 * `beforeField` runs as each field starts, with the request's context (the deadline check; it may throw),
 * within the slices like the field itself.
 */
export function takeTurns(schema: GraphQLSchema, sliceMs = SLICE_MS, beforeField?: (context: unknown) => void): GraphQLSchema {
  // when the current run of field resolutions began; null: none since the last turn of the loop
  let sliceStartedAt: number | null = null;
  let queue: (() => void)[] = [];
  let draining = false;
  const startSlice = (now: number) => {
    sliceStartedAt = now;
    setImmediate(() => {
      if (!draining) sliceStartedAt = null;
    });
  };
  const drain = () => {
    const started = performance.now();
    sliceStartedAt = started;
    let next = 0;
    while (next < queue.length && performance.now() - started < sliceMs) queue[next++]();
    queue = queue.slice(next);
    if (queue.length > 0) setImmediate(drain);
    else {
      draining = false;
      setImmediate(() => {
        if (!draining) sliceStartedAt = null;
      });
    }
  };
  const later = (run: () => void) => {
    queue.push(run);
    if (!draining) {
      draining = true;
      setImmediate(drain);
    }
  };

  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith('__')) continue;
    for (const field of Object.values(type.getFields())) {
      const resolve: GraphQLFieldResolver<unknown, unknown> & { [WRAPPED]?: true } = field.resolve ?? defaultFieldResolver;
      if (resolve[WRAPPED]) continue;
      const wrapped: GraphQLFieldResolver<unknown, unknown> & { [WRAPPED]?: true } = (source, args, context, info) => {
        const now = performance.now();
        if (sliceStartedAt === null) startSlice(now);
        // The check runs inside the turn-taking too: a stopped request's remaining fields (millions, for
        // a deep query whose nested loads are cached) fail a slice at a time, not all in one run.
        if (now - sliceStartedAt! < sliceMs) {
          beforeField?.(context);
          return resolve(source, args, context, info);
        }
        return new Promise((settle, fail) =>
          later(() => {
            try {
              beforeField?.(context);
              settle(resolve(source, args, context, info));
            } catch (error) {
              fail(error);
            }
          }),
        );
      };
      wrapped[WRAPPED] = true;
      field.resolve = wrapped;
    }
  }
  return schema;
}
