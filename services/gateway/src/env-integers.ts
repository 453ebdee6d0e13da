/**
 * Whole-number settings from the environment, refused at start with a message naming the variable:
 * digits only (no `1e3`, `1.5`, `-1` or `ten`), unset or blank meaning the fallback.
 */
export function nonNegativeInteger(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  if (!/^\s*\d+\s*$/.test(raw) || !Number.isSafeInteger(value)) throw new Error(`${name}=${JSON.stringify(raw)} is not a non-negative integer`);
  return value;
}

export function positiveInteger(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const value = nonNegativeInteger(env, name, fallback);
  if (value < 1) throw new Error(`${name}=${JSON.stringify(env[name])} is not a positive integer (at least 1)`);
  return value;
}
