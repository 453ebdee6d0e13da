/**
 * Turning AWS SDK failures into EngineErrors that say precisely what went wrong and where — built from
 * the error's code and HTTP status, never from the server's message text (an S3 error body may echo the
 * access key id), and scrubbed of every credential value as a second line of defence.
 */
import { EngineError } from '../errors.js';

export interface S3ErrorContext {
  readonly operation: string;
  readonly bucket: string;
  readonly key?: string;
  /** The endpoint as shown to people: no user info. */
  readonly endpoint: string;
  readonly attempts?: number;
}

interface SdkError {
  name?: string;
  code?: string;
  Code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

const DENIED = new Set(['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'ExpiredToken', 'InvalidToken', 'AllAccessDisabled', 'AccountProblem']);

export function httpStatus(err: unknown): number | undefined {
  return (err as SdkError)?.$metadata?.httpStatusCode;
}

export function errorCode(err: unknown): string {
  const e = err as SdkError;
  return e?.Code ?? e?.code ?? e?.name ?? 'Error';
}

/** No HTTP answer at all (refused, reset, timed out, DNS), or a 5xx/throttle answer: worth retrying. */
export function isRetryable(err: unknown): boolean {
  if (err instanceof EngineError) return false;
  const status = httpStatus(err);
  if (status === undefined) return errorCode(err) !== 'AbortError';
  return status >= 500 || status === 429 || errorCode(err) === 'SlowDown' || errorCode(err) === 'RequestTimeout';
}

export function s3Location(bucket: string, key?: string): string {
  return key === undefined ? `s3://${bucket}` : `s3://${bucket}/${key}`;
}

export function toEngineError(err: unknown, ctx: S3ErrorContext, secrets: readonly string[]): EngineError {
  if (err instanceof EngineError) return new EngineError(err.code, redact(err.message, secrets));
  const code = errorCode(err);
  const status = httpStatus(err);
  const where = s3Location(ctx.bucket, ctx.key);
  let error: EngineError;
  if (code === 'NoSuchBucket') {
    error = new EngineError('NOT_FOUND', `S3 bucket '${ctx.bucket}' does not exist at ${ctx.endpoint} (${ctx.operation} ${where})`);
  } else if (code === 'NoSuchKey' || code === 'NotFound' || status === 404) {
    error = new EngineError('NOT_FOUND', `object not found: ${where}`);
  } else if (DENIED.has(code) || status === 403) {
    error = new EngineError(
      'STORAGE',
      `access denied to ${where} (${ctx.operation}: ${code === 'Unknown' ? 'HTTP 403' : code}); check the credentials in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and the bucket policy`,
    );
  } else if (code === 'InvalidRange' || status === 416) {
    error = new EngineError('BAD_INPUT', `byte range outside ${where}`);
  } else if (code === 'PreconditionFailed' || status === 412) {
    error = new EngineError('STORAGE', `${where} was replaced during the download (${ctx.operation}); retry to read the new version`);
  } else if (status === undefined) {
    const attempts = ctx.attempts ? ` after ${ctx.attempts} attempt${ctx.attempts === 1 ? '' : 's'}` : '';
    error = new EngineError('STORAGE', `network failure on ${ctx.operation} ${where} (endpoint ${ctx.endpoint})${attempts}: ${networkReason(err)}`);
  } else {
    error = new EngineError('STORAGE', `${ctx.operation} ${where} failed: ${code} (HTTP ${status})`);
  }
  return new EngineError(error.code, redact(error.message, secrets));
}

/** A short reason for a failure without an HTTP answer: a Node error code, else the SDK's error name. */
export function networkReason(err: unknown): string {
  const e = err as SdkError & { cause?: SdkError };
  const code = e?.code ?? e?.cause?.code;
  if (code && /^E[A-Z_]+$/.test(code)) return code;
  return e?.name && e.name !== 'Error' ? e.name : (e?.message ?? 'connection failed').slice(0, 200);
}

export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) if (secret.length >= 4) out = out.split(secret).join('[redacted]');
  return out;
}
