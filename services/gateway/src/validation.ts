/** Range checks for user input; each failure is BAD_USER_INPUT naming the field, the value and the range. */
import { badInput } from './errors.js';

export function checkInteger(field: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `an integer ≥ ${min}` : `an integer from ${min} to ${max}`;
    throw badInput(field, `${value} is out of range; expected ${range}`);
  }
  return value;
}

export interface NumberRange {
  readonly min?: number;
  readonly max?: number;
  /** Whether `min` itself is refused. */
  readonly minExclusive?: boolean;
  readonly maxExclusive?: boolean;
}

export function checkNumber(field: string, value: number, range: NumberRange): number {
  const { min, max, minExclusive = false, maxExclusive = false } = range;
  const belowMin = min !== undefined && (minExclusive ? value <= min : value < min);
  const aboveMax = max !== undefined && (maxExclusive ? value >= max : value > max);
  if (!Number.isFinite(value) || belowMin || aboveMax) throw badInput(field, `${value} is out of range; expected ${describeRange(range)}`);
  return value;
}

function describeRange({ min, max, minExclusive, maxExclusive }: NumberRange): string {
  if (min !== undefined && max !== undefined) return `a number in ${minExclusive ? '(' : '['}${min}, ${max}${maxExclusive ? ')' : ']'}`;
  if (min !== undefined) return `a number ${minExclusive ? '>' : '≥'} ${min}`;
  if (max !== undefined) return `a number ${maxExclusive ? '<' : '≤'} ${max}`;
  return 'a finite number';
}

export function checkNonEmpty(field: string, value: string): string {
  if (value.trim() === '') throw badInput(field, 'must not be empty');
  return value;
}
