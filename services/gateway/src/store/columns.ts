/** Conversions between column values (text timestamps, text JSON) and what the API returns. */
export function isoNow(): string {
  return new Date().toISOString();
}

export function dateOrNull(value: string | null): Date | null {
  return value === null ? null : new Date(value);
}

export function parseJson<T>(value: string): T {
  return JSON.parse(value) as T;
}
