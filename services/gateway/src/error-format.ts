/**
 * Every error a client sees carries one of the gateway's codes. GraphQL's own refusals (a query that
 * does not parse or validate, a variable of the wrong type) become BAD_USER_INPUT, with the accepted
 * values added when an enum value was wrong; anything unexpected becomes INTERNAL, its details logged
 * rather than sent.
 */
import { GraphQLEnumType, type GraphQLFormattedError, type GraphQLSchema } from 'graphql';
import { ErrorCode } from './errors.js';

const KNOWN_CODES = new Set<string>(Object.values(ErrorCode));
const REQUEST_ERROR_CODES = new Set(['GRAPHQL_PARSE_FAILED', 'GRAPHQL_VALIDATION_FAILED', 'BAD_REQUEST', 'OPERATION_RESOLUTION_FAILURE', 'PERSISTED_QUERY_NOT_FOUND', 'PERSISTED_QUERY_NOT_SUPPORTED']);

export type ErrorFormatter = (formatted: GraphQLFormattedError, original: unknown, fallback?: ErrorCode) => GraphQLFormattedError;

export function createErrorFormatter(schema: GraphQLSchema, log: (message: string) => void = console.error): ErrorFormatter {
  const enums = new Map<string, string[]>();
  for (const type of Object.values(schema.getTypeMap())) {
    if (type instanceof GraphQLEnumType && !type.name.startsWith('__')) enums.set(type.name, type.getValues().map((v) => v.name));
  }
  const badInput = (formatted: GraphQLFormattedError): GraphQLFormattedError => ({
    ...formatted,
    message: withAcceptedEnumValues(formatted.message, enums),
    extensions: { ...formatted.extensions, code: ErrorCode.BAD_USER_INPUT },
  });

  /** `fallback` is the code for an error that has none: INTERNAL during execution, BAD_USER_INPUT for validation. */
  return (formatted, original, fallback = ErrorCode.INTERNAL) => {
    const code = typeof formatted.extensions?.code === 'string' ? formatted.extensions.code : fallback;
    if (code === ErrorCode.BAD_USER_INPUT || REQUEST_ERROR_CODES.has(code)) return badInput(formatted);
    if (KNOWN_CODES.has(code) && code !== ErrorCode.INTERNAL) return formatted;
    log(`internal error: ${describe(original)}`);
    return { message: 'internal error', locations: formatted.locations, path: formatted.path, extensions: { code: ErrorCode.INTERNAL } };
  };
}

function withAcceptedEnumValues(message: string, enums: ReadonlyMap<string, readonly string[]>): string {
  const match = /does not exist in "(\w+)" enum/.exec(message) ?? /Enum "(\w+)" cannot represent/.exec(message);
  const values = match ? enums.get(match[1]) : undefined;
  return values ? `${message} Accepted values: ${values.join(', ')}.` : message;
}

function describe(error: unknown): string {
  const inner = (error as { originalError?: unknown } | null)?.originalError ?? error;
  return inner instanceof Error ? (inner.stack ?? inner.message) : String(inner);
}
