/**
 * Settings of the auth part, parsed here so that settings.ts and server.ts carry one line each:
 * STREAMLINE_WORKER_TOKENS (several worker tokens accepted at once, for rotating them) beside the
 * single STREAMLINE_WORKER_TOKEN.
 */
import { randomBytes } from 'node:crypto';

/** Worker tokens shorter than this are refused in STREAMLINE_WORKER_TOKENS. */
export const MIN_WORKER_TOKEN_LENGTH = 16;

/**
 * STREAMLINE_WORKER_TOKENS: comma-separated worker tokens, all accepted (during a rotation: the new one
 * first, then the old). Unset or empty: undefined. Empty entries (a trailing comma) are skipped; an
 * entry with spaces inside or shorter than 16 characters is refused, naming its position, never its value.
 */
export function workerTokensSetting(raw: string | undefined): string[] | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  const tokens = raw.split(',').map((entry) => entry.trim());
  tokens.forEach((token, i) => {
    if (token !== '' && (token.length < MIN_WORKER_TOKEN_LENGTH || /\s/.test(token))) {
      throw new Error(`STREAMLINE_WORKER_TOKENS: entry ${i + 1} must be at least ${MIN_WORKER_TOKEN_LENGTH} characters without spaces`);
    }
  });
  return tokens.filter((token) => token !== '');
}

/**
 * The worker tokens a gateway accepts: STREAMLINE_WORKER_TOKENS in their order, then
 * STREAMLINE_WORKER_TOKEN, without repeats; a random one when neither is set. Local workers get the first.
 */
export function acceptedWorkerTokens(options: { readonly workerTokens?: readonly string[]; readonly workerToken?: string }): string[] {
  const given = [...(options.workerTokens ?? []), ...(options.workerToken ? [options.workerToken] : [])];
  const unique = [...new Set(given)];
  return unique.length ? unique : [randomBytes(24).toString('base64url')];
}
