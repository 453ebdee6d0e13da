/** Typed reads of config.json fields, with errors that name the field. */
import { EngineError } from '../../errors.js';

export function requiredInt(json: Record<string, unknown>, field: string): number {
  const value = json[field];
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    throw new EngineError('CORRUPT_FILE', `config.json: ${field} must be a positive integer, got ${JSON.stringify(value)}`);
  }
  return value;
}

export function optionalNumber(json: Record<string, unknown>, field: string, fallback: number): number {
  const value = json[field];
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new EngineError('CORRUPT_FILE', `config.json: ${field} must be a number, got ${JSON.stringify(value)}`);
  }
  return value;
}

export function optionalBoolean(json: Record<string, unknown>, field: string, fallback: boolean): boolean {
  const value = json[field];
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'boolean') throw new EngineError('CORRUPT_FILE', `config.json: ${field} must be true or false, got ${JSON.stringify(value)}`);
  return value;
}

/** bos/eos ids may be a number, a list (first one used) or absent. */
export function optionalTokenId(json: Record<string, unknown>, field: string): number | null {
  const value = json[field];
  if (typeof value === 'number') return value;
  if (Array.isArray(value) && typeof value[0] === 'number') return value[0];
  return null;
}

export function unsupported(modelType: string, what: string): never {
  throw new EngineError('UNSUPPORTED_MODEL', `${modelType}: ${what} is not supported`);
}
