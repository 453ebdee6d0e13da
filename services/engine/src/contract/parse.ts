/** One way to run a contract parser: a value that does not fit is BAD_INPUT naming every field that is wrong. */
import type { z } from 'zod';
import { EngineError } from '../errors.js';

export function parseWith<Schema extends z.ZodType>(schema: Schema, value: unknown, what: string): z.output<Schema> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.slice(0, 5).map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(top level)'}: ${issue.message}`);
  const more = parsed.error.issues.length > 5 ? `; and ${parsed.error.issues.length - 5} more` : '';
  throw new EngineError('BAD_INPUT', `${what} does not fit the plan contract: ${problems.join('; ')}${more}`);
}
