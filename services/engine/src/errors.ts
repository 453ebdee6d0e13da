/**
 * One error type for everything the engine refuses. `code` is stable and machine-readable (the gateway
 * maps it onto its GraphQL error codes); `message` names the offending value and what was expected.
 */
export const ENGINE_ERROR_CODES = [
  'UNSUPPORTED_MODEL', // a model_type or feature the engine does not implement
  'BAD_INPUT', // an argument or setting out of range, a data file with no usable sample
  'NOT_FOUND', // a file or tensor that is not there
  'CORRUPT_FILE', // a file that exists but does not parse: truncated, bad header, shape mismatch
  'INVALID_WEIGHTS', // a tensor that parses but holds NaN or infinite values
  'STORAGE', // writing failed: the disk is full, a directory is not writable
  'CANCELLED', // the caller's AbortSignal fired
] as const;

export type EngineErrorCode = (typeof ENGINE_ERROR_CODES)[number];

/** A code received from elsewhere (a worker's failure report): one of ENGINE_ERROR_CODES, or null. */
export function parseEngineErrorCode(value: unknown): EngineErrorCode | null {
  return (ENGINE_ERROR_CODES as readonly unknown[]).includes(value) ? (value as EngineErrorCode) : null;
}

export class EngineError extends Error {
  constructor(
    readonly code: EngineErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'EngineError';
  }
}

/** Throws CANCELLED when the signal has fired; long loops call this between units of work. */
export function throwIfCancelled(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new EngineError('CANCELLED', `${what} was cancelled`);
}
