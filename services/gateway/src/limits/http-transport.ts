/**
 * The HTTP side of the transport policy: every refusal is a JSON GraphQL-style error body
 * (`{"errors":[{"message","extensions":{"code"}}]}`) with its HTTP status — never Express's HTML page, a
 * stack or a file path; a per-request deadline; and CORS for an explicit list of origins only.
 */
import type { ApolloServerPlugin } from '@apollo/server';
import type { ErrorRequestHandler, Request, RequestHandler, Response } from 'express';
import { ErrorCode, GatewayError } from '../errors.js';

/** Answers `status` with one error in the GraphQL response shape. */
export function sendJsonError(res: Response, status: number, code: ErrorCode, message: string): void {
  res.status(status).type('application/json').send(JSON.stringify({ errors: [{ message, extensions: { code } }] }));
}

/**
 * CORS: no CORS headers at all unless the request's Origin is one of `origins` (exact match). For an
 * allowed origin, responses carry Access-Control-Allow-Origin (never `*`, never credentials: tokens
 * travel in the Authorization header, not in cookies) and preflights are answered 204.
 */
export function cors(origins: readonly string[]): RequestHandler {
  const allowed = new Set(origins);
  return (req, res, next) => {
    const origin = req.headers.origin;
    if (typeof origin !== 'string' || !allowed.has(origin)) {
      next();
      return;
    }
    res.vary('Origin');
    res.setHeader('Access-Control-Allow-Origin', origin);
    if (req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined) {
      res.setHeader('Access-Control-Allow-Methods', 'GET, POST, OPTIONS');
      res.setHeader('Access-Control-Allow-Headers', 'authorization, content-type, apollo-require-preflight, x-apollo-operation-name');
      res.setHeader('Access-Control-Max-Age', '600');
      res.status(204).end();
      return;
    }
    next();
  };
}

/** The usual Content-Type of a JSON body, recognised without type-is's parse (the fast path of the check below). */
const JSON_CONTENT_TYPE = /^application\/json\s*(?:;|$)/i;

/** GraphQL over HTTP here is GET or POST (a JSON body); anything else is refused as JSON. */
export function graphqlRequestGuard(): RequestHandler {
  return (req, res, next) => {
    if (req.method !== 'GET' && req.method !== 'POST') {
      res.setHeader('Allow', 'GET, POST');
      sendJsonError(res, 405, ErrorCode.BAD_USER_INPUT, `${req.method} is not supported here: send GraphQL requests as POST (Content-Type: application/json) or GET`);
      return;
    }
    if (req.method === 'POST' && !JSON_CONTENT_TYPE.test(req.headers['content-type'] ?? '') && !req.is('application/json')) {
      sendJsonError(res, 415, ErrorCode.BAD_USER_INPUT, `Content-Type ${JSON.stringify(req.headers['content-type'] ?? '')} is not accepted: send a JSON body with Content-Type: application/json`);
      return;
    }
    next();
  };
}

/**
 * One request's deadline: stopped (with its reason) when the deadline passes or the client goes away.
 * Its AbortSignal is made only when something asks for it; checking it is a clock comparison.
 */
export class RequestDeadline {
  private controller: AbortController | null = null;
  private reason: GatewayError | null = null;

  constructor(
    /** performance.now() past which the request is stopped; Infinity: no deadline. */
    readonly expiresAt: number,
    private readonly onExpired: () => void,
  ) {}

  get stopped(): boolean {
    return this.reason !== null;
  }

  /** Aborted when the request is stopped. */
  get signal(): AbortSignal {
    this.controller ??= new AbortController();
    if (this.reason && !this.controller.signal.aborted) this.controller.abort(this.reason);
    return this.controller.signal;
  }

  stop(reason: GatewayError): void {
    if (this.reason) return;
    this.reason = reason;
    this.controller?.abort(reason);
  }

  /** Throws the reason once the request is stopped, or once its deadline has passed (then it stops it). */
  check(): void {
    if (!this.reason && performance.now() >= this.expiresAt) this.onExpired();
    if (this.reason) throw this.reason;
  }
}

/**
 * A request still running `timeoutMs` after it arrived is answered DEADLINE_EXCEEDED (503), and its
 * RequestDeadline (`res.locals.deadline`, handed to resolvers as `context.deadline`) is stopped, which
 * stops the rest of its execution (checkDeadline, as each field starts). It is also stopped when the
 * client goes away. 0 turns the deadline off (it still follows the client).
 *
 * A timer alone is not enough: an execution that only ever waits on promises that are already
 * resolved (synchronous SQLite under async drivers) keeps the event loop in microtasks, and no timer
 * fires until it ends. So checkDeadline also compares the clock as each field starts.
 */
export function deadline(timeoutMs: number): RequestHandler {
  const message = `the request ran longer than STREAMLINE_REQUEST_TIMEOUT_MS=${timeoutMs} and was stopped`;
  return (_req, res, next) => {
    let timer: NodeJS.Timeout | null = null;
    const expire = () => {
      if (timer) clearTimeout(timer);
      if (state.stopped) return;
      state.stop(new GatewayError(ErrorCode.DEADLINE_EXCEEDED, message));
      if (!res.headersSent) {
        // The stopped execution may still try to answer on this connection: the client must not
        // reuse it for its next request (it would see the socket closed under it).
        res.setHeader('Connection', 'close');
        sendJsonError(res, 503, ErrorCode.DEADLINE_EXCEEDED, message);
      }
    };
    const state = new RequestDeadline(timeoutMs > 0 ? performance.now() + timeoutMs : Number.POSITIVE_INFINITY, expire);
    res.locals.deadline = state;
    if (timeoutMs > 0) timer = setTimeout(expire, timeoutMs);
    res.once('close', () => {
      if (timer) clearTimeout(timer);
      // A response sent whole has nothing left to stop: no error object per request.
      if (!state.stopped && !res.writableFinished) state.stop(new GatewayError(ErrorCode.DEADLINE_EXCEEDED, 'the request was closed before it finished'));
    });
    next();
  };
}

/** The request's deadline (see `deadline`), for the GraphQL context. */
export function requestDeadline(res: Response): RequestDeadline | undefined {
  return res.locals.deadline as RequestDeadline | undefined;
}

/**
 * Throws when the request is stopped (or its deadline has just passed): each further field of a stopped
 * request fails at once. Called as every field starts (takeTurns' field hook, in http-app.ts), which is
 * cheaper than an Apollo willResolveField plugin: that one makes Apollo instrument every field.
 */
export function checkDeadline(context: { readonly deadline?: RequestDeadline } | null | undefined): void {
  context?.deadline?.check();
}

/** checkDeadline as an Apollo plugin, for a schema that is not wrapped by takeTurns. */
export function deadlinePlugin<TContext extends { readonly deadline?: RequestDeadline }>(): ApolloServerPlugin<TContext> {
  return {
    async requestDidStart() {
      return {
        async executionDidStart() {
          return {
            willResolveField({ contextValue }) {
              checkDeadline(contextValue);
            },
          };
        },
      };
    },
  };
}

/** Routes and methods nobody serves: 404 as JSON. */
export function notFound(): RequestHandler {
  return (req: Request, res) => sendJsonError(res, 404, ErrorCode.NOT_FOUND, `no route for ${req.method} ${req.path}`);
}

/**
 * Express's last error handler: body-parser failures (malformed JSON 400, over the size limit 413,
 * unsupported charset or encoding 415) and anything else (500), as JSON without the error's text,
 * stack or paths. A response already sent (e.g. after its deadline) is left alone.
 */
export function jsonErrors(log: (message: string) => void, bodyLimit: string): ErrorRequestHandler {
  return (error: unknown, _req, res, _next) => {
    if (res.headersSent) return;
    const { type, status } = (error ?? {}) as { type?: unknown; status?: unknown };
    switch (type) {
      case 'entity.parse.failed':
        sendJsonError(res, 400, ErrorCode.BAD_USER_INPUT, 'the request body is not valid JSON');
        return;
      case 'entity.too.large':
        sendJsonError(res, 413, ErrorCode.BAD_USER_INPUT, `the request body is larger than the limit of ${bodyLimit}`);
        return;
      case 'encoding.unsupported':
      case 'charset.unsupported':
        sendJsonError(res, 415, ErrorCode.BAD_USER_INPUT, 'the request body is not UTF-8 JSON: send Content-Type: application/json without a Content-Encoding');
        return;
    }
    if (typeof status === 'number' && status >= 400 && status < 500) {
      sendJsonError(res, status, ErrorCode.BAD_USER_INPUT, 'the request could not be read');
      return;
    }
    log(`internal error (HTTP): ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    sendJsonError(res, 500, ErrorCode.INTERNAL, 'internal error');
  };
}
