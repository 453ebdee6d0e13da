/**
 * The gateway's one set of error codes, carried in `extensions.code`. Messages name the offending field
 * and value and say what is accepted, so a client can show them as they are.
 */
import 'reflect-metadata';
import { GraphQLError } from 'graphql';
import { registerEnumType } from 'type-graphql';
import { EngineError, parseEngineErrorCode, type EngineErrorCode } from './engine.js';

export enum ErrorCode {
  NOT_FOUND = 'NOT_FOUND',
  BAD_USER_INPUT = 'BAD_USER_INPUT',
  UNAUTHENTICATED = 'UNAUTHENTICATED',
  FORBIDDEN = 'FORBIDDEN',
  CONFLICT = 'CONFLICT',
  UNSUPPORTED_MODEL = 'UNSUPPORTED_MODEL',
  /** A query deeper, wider or costlier than the limits (STREAMLINE_QUERY_MAX_*); refused before it runs. */
  QUERY_TOO_COMPLEX = 'QUERY_TOO_COMPLEX',
  /** A request that ran past STREAMLINE_REQUEST_TIMEOUT_MS. */
  DEADLINE_EXCEEDED = 'DEADLINE_EXCEEDED',
  /** A tenant's limit on queued or running plans, connections or subscriptions is reached. */
  QUOTA_EXCEEDED = 'QUOTA_EXCEEDED',
  /** A model whose weights hold NaN or infinite values (named by tensor). */
  INVALID_WEIGHTS = 'INVALID_WEIGHTS',
  INTERNAL = 'INTERNAL',
}
registerEnumType(ErrorCode, {
  name: 'ErrorCode',
  description: "The gateway's error codes: `extensions.code` of every GraphQL error, and `errorCode` of a FAILED plan or model.",
});

export class GatewayError extends GraphQLError {
  constructor(
    readonly code: ErrorCode,
    message: string,
    extensions: Record<string, unknown> = {},
  ) {
    super(message, { extensions: { ...extensions, code } });
    this.name = 'GatewayError';
  }
}

/** Bad input on one field: `field` is its path in the operation's input (e.g. `input.training.batchSize`). */
export function badInput(field: string, message: string): GatewayError {
  return new GatewayError(ErrorCode.BAD_USER_INPUT, `${field}: ${message}`, { field });
}

export function notFound(what: string, id: string): GatewayError {
  return new GatewayError(ErrorCode.NOT_FOUND, `${what} ${JSON.stringify(id)} not found`);
}

export function conflict(message: string): GatewayError {
  return new GatewayError(ErrorCode.CONFLICT, message);
}

/**
 * The gateway's code for each engine code: the one table for refusals here (fromEngineError) and for
 * the failures workers report (a FAILED plan's errorCode). Exhaustive: a new engine code does not
 * compile until it is placed here.
 * - STORAGE: the worker's disk or object store failed, nothing the caller sent → INTERNAL.
 * - CANCELLED: the engine stopped because it was told to; a plan cancelled by its tenant ends CANCELLED,
 *   not FAILED, so a failure carrying it means the worker was stopped under the plan → INTERNAL.
 */
const GATEWAY_CODE_OF_ENGINE_CODE = {
  UNSUPPORTED_MODEL: ErrorCode.UNSUPPORTED_MODEL,
  BAD_INPUT: ErrorCode.BAD_USER_INPUT,
  NOT_FOUND: ErrorCode.NOT_FOUND,
  CORRUPT_FILE: ErrorCode.BAD_USER_INPUT,
  INVALID_WEIGHTS: ErrorCode.INVALID_WEIGHTS,
  STORAGE: ErrorCode.INTERNAL,
  CANCELLED: ErrorCode.INTERNAL,
} as const satisfies Record<EngineErrorCode, ErrorCode>;

/** The gateway's code for an engine's code (see GATEWAY_CODE_OF_ENGINE_CODE). */
export function errorCodeOfEngine(code: EngineErrorCode): ErrorCode {
  return GATEWAY_CODE_OF_ENGINE_CODE[code];
}

const ERROR_CODES: ReadonlySet<string> = new Set(Object.values(ErrorCode));

/**
 * A stored `error_code` read back as one of the enum's values: a gateway code as it is, an engine code
 * (a row written by a build that stored the worker's code) mapped as above, anything else as INTERNAL,
 * so that `errorCode` always serialises. Null stays null (no failure, or one from before codes were
 * recorded). Reading through this needs no migration of old rows.
 */
export function storedErrorCode(value: string | null): ErrorCode | null {
  if (value === null) return null;
  if (ERROR_CODES.has(value)) return value as ErrorCode;
  const engineCode = parseEngineErrorCode(value);
  return engineCode ? errorCodeOfEngine(engineCode) : ErrorCode.INTERNAL;
}

/** Maps what the engine refuses onto the gateway's codes; `field` names the input the engine was given. */
export function fromEngineError(error: EngineError, field: string): GatewayError {
  return new GatewayError(errorCodeOfEngine(error.code), `${field}: ${error.message}`, { field });
}

export function isEngineError(error: unknown): error is EngineError {
  return error instanceof EngineError;
}
