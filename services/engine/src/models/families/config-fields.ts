/**
 * Typed reads of config.json fields, with errors that name the field, the value and the bound. Every
 * size a config can carry is bounded here, before anything is allocated from it: a config file comes
 * from whoever registers the model, and `num_hidden_layers: 1e9` must be refused, not counted.
 */
import { EngineError } from '../../errors.js';

/** Upper bounds on a config's sizes (inclusive). Far above any released model; see docs/security/models.md. */
export const CONFIG_BOUNDS = {
  num_hidden_layers: 1024,
  hidden_size: 65_536,
  /** Per head; also caps num_attention_heads × head_dim (the query width). */
  head_dim: 65_536,
  vocab_size: 1_048_576,
  intermediate_size: 1_048_576,
  max_position_embeddings: 16_777_216,
  sliding_window: 16_777_216,
} as const;

/** An integer in [min, max]; anything else (a float such as 1e9.5, a string, NaN, a negative) is refused. */
export function boundedInt(json: Record<string, unknown>, field: string, max: number, min = 1): number {
  const value = json[field];
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new EngineError('CORRUPT_FILE', `config.json: ${field} must be an integer from ${min} to ${max}, got ${describe(value)}`);
  }
  if (value < min || value > max) {
    throw new EngineError('CORRUPT_FILE', `config.json: ${field} is ${value}, outside the accepted range ${min} to ${max}`);
  }
  return value;
}

/** `boundedInt` when the field is present, else `fallback`. */
export function optionalBoundedInt(json: Record<string, unknown>, field: string, max: number, fallback: number, min = 1): number {
  return json[field] == null ? fallback : boundedInt(json, field, max, min);
}

export function optionalNumber(json: Record<string, unknown>, field: string, fallback: number): number {
  const value = json[field];
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new EngineError('CORRUPT_FILE', `config.json: ${field} must be a number, got ${describe(value)}`);
  }
  return value;
}

export function optionalBoolean(json: Record<string, unknown>, field: string, fallback: boolean): boolean {
  const value = json[field];
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'boolean') throw new EngineError('CORRUPT_FILE', `config.json: ${field} must be true or false, got ${describe(value)}`);
  return value;
}

/** bos/eos ids may be a number, a list (first one used) or absent. */
export function optionalTokenId(json: Record<string, unknown>, field: string): number | null {
  const value = json[field];
  if (typeof value === 'number') return value;
  if (Array.isArray(value) && typeof value[0] === 'number') return value[0];
  return null;
}

/**
 * The attention heads of a model of width `hiddenSize`: `num_attention_heads` and
 * `num_key_value_heads` (default: as many as attention heads) positive, at most the width, KV heads
 * dividing attention heads; `head_dim` given or the width divided evenly by the heads.
 */
export function parseHeads(json: Record<string, unknown>, hiddenSize: number, options: { explicitHeadDim: boolean }): { numAttentionHeads: number; numKeyValueHeads: number; headDim: number } {
  const numAttentionHeads = boundedInt(json, 'num_attention_heads', hiddenSize);
  const numKeyValueHeads = optionalBoundedInt(json, 'num_key_value_heads', numAttentionHeads, numAttentionHeads);
  if (numAttentionHeads % numKeyValueHeads !== 0) {
    throw new EngineError('CORRUPT_FILE', `config.json: num_attention_heads ${numAttentionHeads} is not a multiple of num_key_value_heads ${numKeyValueHeads}`);
  }
  if (options.explicitHeadDim && json.head_dim != null) {
    const headDim = boundedInt(json, 'head_dim', CONFIG_BOUNDS.head_dim);
    if (numAttentionHeads * headDim > CONFIG_BOUNDS.head_dim) {
      throw new EngineError('CORRUPT_FILE', `config.json: num_attention_heads × head_dim is ${numAttentionHeads * headDim}, above the accepted ${CONFIG_BOUNDS.head_dim}`);
    }
    return { numAttentionHeads, numKeyValueHeads, headDim };
  }
  if (hiddenSize % numAttentionHeads !== 0) {
    throw new EngineError('CORRUPT_FILE', `config.json: hidden_size ${hiddenSize} is not a multiple of num_attention_heads ${numAttentionHeads}`);
  }
  return { numAttentionHeads, numKeyValueHeads, headDim: hiddenSize / numAttentionHeads };
}

export function unsupported(modelType: string, what: string): never {
  throw new EngineError('UNSUPPORTED_MODEL', `${modelType}: ${what} is not supported`);
}

/** A config value for an error message: numbers and short strings as they are, anything else by type. */
function describe(value: unknown): string {
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return value.length <= 40 ? JSON.stringify(value) : `a string of ${value.length} characters`;
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  return Array.isArray(value) ? 'an array' : typeof value === 'object' ? 'an object' : typeof value;
}
