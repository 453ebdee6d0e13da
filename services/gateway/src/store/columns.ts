/** Conversions between column values (text timestamps, text JSON) and what the API returns. */
export function isoNow(): string {
  return new Date().toISOString();
}

let lastCreated = 0;

/**
 * A creation time strictly later than the previous one this process handed out: plans are claimed
 * (and models and plans listed) oldest first, and two created in the same millisecond must still keep
 * their order.
 */
export function creationTime(): string {
  lastCreated = Math.max(Date.now(), lastCreated + 1);
  return new Date(lastCreated).toISOString();
}

export function dateOrNull(value: string | null): Date | null {
  return value === null ? null : new Date(value);
}

export function parseJson<T>(value: string): T {
  return JSON.parse(value) as T;
}
