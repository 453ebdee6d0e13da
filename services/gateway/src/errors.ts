/**
 * The gateway's one set of error codes, carried in `extensions.code`. Messages name the offending field
 * and value and say what is accepted, so a client can show them as they are.
 */
import { GraphQLError } from 'graphql';
import { EngineError, type EngineErrorCode } from './engine.js';

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

/** The gateway's code for an engine's code (one table for refusals here and failures reported by workers). */
export function errorCodeOfEngine(code: EngineErrorCode): ErrorCode {
  switch (code) {
    case 'UNSUPPORTED_MODEL':
      return ErrorCode.UNSUPPORTED_MODEL;
    case 'NOT_FOUND':
      return ErrorCode.NOT_FOUND;
    case 'BAD_INPUT':
    case 'CORRUPT_FILE':
      return ErrorCode.BAD_USER_INPUT;
    case 'INVALID_WEIGHTS':
      return ErrorCode.INVALID_WEIGHTS;
    default:
      return ErrorCode.INTERNAL;
  }
}

/** Maps what the engine refuses onto the gateway's codes; `field` names the input the engine was given. */
export function fromEngineError(error: EngineError, field: string): GatewayError {
  return new GatewayError(errorCodeOfEngine(error.code), `${field}: ${error.message}`, { field });
}

export function isEngineError(error: unknown): error is EngineError {
  return error instanceof EngineError;
}
