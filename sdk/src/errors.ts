/**
 * Typed errors for the gateway's codes (`extensions.code`, see DESIGN.md), so callers can write
 * `catch (e) { if (e instanceof NotFoundError) … }` instead of comparing strings. Every error keeps the
 * server's message as it was sent: the gateway's messages already name the field and what it accepts.
 */

import type { ErrorCode as GatewayErrorCode } from './generated/graphql.js';

export type { GatewayErrorCode };

/**
 * The gateway's codes (the schema's ErrorCode enum, as codegen emits it), plus two of this SDK's:
 * NETWORK (no GraphQL answer) and PLAN_FAILED (a plan the SDK waited for did not succeed).
 */
export type ErrorCode = GatewayErrorCode | 'NETWORK' | 'PLAN_FAILED';

/** A GraphQL error as it arrives in a response's `errors` (graphql's GraphQLFormattedError, loosely). */
export interface ServerError {
  readonly message: string;
  readonly path?: readonly (string | number)[];
  readonly extensions?: Record<string, unknown>;
}

export class StreamlineError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** The server's error (absent for transport failures and client-side checks). */
    readonly serverError?: ServerError,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class NotFoundError extends StreamlineError {
  constructor(message: string, serverError?: ServerError) {
    super('NOT_FOUND', message, serverError);
  }
}

export class BadUserInputError extends StreamlineError {
  /** The input field the server refused, e.g. `input.layersToPrune`, when it named one. */
  readonly field: string | null;
  constructor(message: string, serverError?: ServerError) {
    super('BAD_USER_INPUT', message, serverError);
    const field = serverError?.extensions?.field;
    this.field = typeof field === 'string' ? field : null;
  }
}

export class UnsupportedModelError extends StreamlineError {
  constructor(message: string, serverError?: ServerError) {
    super('UNSUPPORTED_MODEL', message, serverError);
  }
}

export class UnauthenticatedError extends StreamlineError {
  constructor(message: string, serverError?: ServerError) {
    super('UNAUTHENTICATED', message, serverError);
  }
}

export class ForbiddenError extends StreamlineError {
  constructor(message: string, serverError?: ServerError) {
    super('FORBIDDEN', message, serverError);
  }
}

export class ConflictError extends StreamlineError {
  constructor(message: string, serverError?: ServerError) {
    super('CONFLICT', message, serverError);
  }
}

/** The query is deeper, wider or costlier than the gateway allows: split it. */
export class QueryTooComplexError extends StreamlineError {
  constructor(message: string, serverError?: ServerError) {
    super('QUERY_TOO_COMPLEX', message, serverError);
  }
}

/** The request ran past the gateway's deadline. */
export class DeadlineExceededError extends StreamlineError {
  constructor(message: string, serverError?: ServerError) {
    super('DEADLINE_EXCEEDED', message, serverError);
  }
}

/** The tenant's limit on queued or running plans, connections or subscriptions is reached. */
export class QuotaExceededError extends StreamlineError {
  constructor(message: string, serverError?: ServerError) {
    super('QUOTA_EXCEEDED', message, serverError);
  }
}

/** The model's weights hold NaN or infinite values. */
export class InvalidWeightsError extends StreamlineError {
  constructor(message: string, serverError?: ServerError) {
    super('INVALID_WEIGHTS', message, serverError);
  }
}

/** The server failed, or sent a code this SDK does not know. */
export class InternalError extends StreamlineError {
  constructor(message: string, serverError?: ServerError) {
    super('INTERNAL', message, serverError);
  }
}

/** The request never got a GraphQL answer: connection refused or dropped, timeout, non-GraphQL HTTP reply. */
export class NetworkError extends StreamlineError {
  constructor(
    message: string,
    /** The HTTP status when there was a response. */
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super('NETWORK', message, undefined, options);
  }
}

/** A plan the SDK waited for ended FAILED (or CANCELLED); `reason` is the plan's `error`, `errorCode` its `errorCode`. */
export class PlanFailedError extends StreamlineError {
  constructor(
    readonly planId: string,
    readonly status: 'FAILED' | 'CANCELLED',
    readonly reason: string | null,
    /** Why a FAILED plan failed (the schema's ErrorCode); null for a cancelled one. */
    readonly errorCode: GatewayErrorCode | null = null,
  ) {
    super('PLAN_FAILED', `plan ${planId} ${status === 'FAILED' ? 'failed' : 'was cancelled'}${reason ? `: ${reason}` : ''}`);
  }
}

/** The class of a server error with a given code. */
export type ServerErrorClass = new (message: string, serverError?: ServerError) => StreamlineError;

/**
 * One class for every code of the schema's ErrorCode enum: a code added to the gateway's enum does not
 * compile here (after `npm run sdk:codegen`) until it is mapped (sdk/test/errors.test.ts checks that).
 */
export const ERROR_CLASS_BY_CODE: { readonly [Code in GatewayErrorCode]: ServerErrorClass } = {
  NOT_FOUND: NotFoundError,
  BAD_USER_INPUT: BadUserInputError,
  UNSUPPORTED_MODEL: UnsupportedModelError,
  UNAUTHENTICATED: UnauthenticatedError,
  FORBIDDEN: ForbiddenError,
  CONFLICT: ConflictError,
  QUERY_TOO_COMPLEX: QueryTooComplexError,
  DEADLINE_EXCEEDED: DeadlineExceededError,
  QUOTA_EXCEEDED: QuotaExceededError,
  INVALID_WEIGHTS: InvalidWeightsError,
  INTERNAL: InternalError,
};

/** The typed error for a response's errors: the first one decides (the gateway sends one per failure). */
export function errorFromResponse(errors: readonly ServerError[]): StreamlineError {
  const first = errors[0] ?? { message: 'the server answered with an empty error list' };
  const code = first.extensions?.code;
  const ErrorClass = (typeof code === 'string' && Object.hasOwn(ERROR_CLASS_BY_CODE, code) && ERROR_CLASS_BY_CODE[code as GatewayErrorCode]) || InternalError;
  return new ErrorClass(first.message, first);
}
