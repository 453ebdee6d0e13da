/** One way to run a contract parser: a value that does not fit is BAD_INPUT naming every field that is wrong. */
import type { z } from 'zod';
import { EngineError } from '../errors.js';

export function parseWith<Schema extends z.ZodType>(schema: Schema, value: unknown, what: string): z.output<Schema> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.flatMap(closestBranch);
  const problems = issues.slice(0, 5).map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(top level)'}: ${issue.message}`);
  const more = issues.length > 5 ? `; and ${issues.length - 5} more` : '';
  throw new EngineError('BAD_INPUT', `${what} does not fit the plan contract: ${problems.join('; ')}${more}`);
}

/**
 * A value that fits no member of a union is reported by the member it came closest to: the one whose
 * first problem lies deepest (a pruned outcome with one bad score, not "sweep: required").
 */
function closestBranch(issue: z.core.$ZodIssue): z.core.$ZodIssue[] {
  if (issue.code !== 'invalid_union' || issue.errors.length === 0) return [issue];
  const depth = (branch: z.core.$ZodIssue[]) => Math.max(...branch.map((i) => i.path.length));
  const closest = issue.errors.reduce((best, branch) => (depth(branch) > depth(best) ? branch : best));
  return closest.flatMap((inner) => closestBranch({ ...inner, path: [...issue.path, ...inner.path] } as z.core.$ZodIssue));
}
