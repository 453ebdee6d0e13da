/**
 * What a worker's claim carries (`claimPlan { config }`): the plan's spec, the model to run it on and
 * which local files it may open. A worker first compares the claim's contract version with
 * PLAN_CONTRACT_VERSION, then parses this.
 */
import { z } from 'zod';
import { parseWith } from './parse.js';
import { PlanSpecSchema } from './plan-spec.js';

/**
 * Set by the gateway: local inputs must lie under `roots` (real paths) and outside `denied`, checked
 * again by the worker when it opens them; `unconfined` lists the paths the operator vouches for (its
 * default calibration set, a tenant's own plan output). Null: no confinement (the gateway has no roots).
 */
export const FileAccessSchema = z.strictObject({
  roots: z.array(z.string()),
  denied: z.array(z.string()),
  unconfined: z.array(z.string()),
});
export type FileAccess = z.infer<typeof FileAccessSchema>;

export const PlanAssignmentSchema = z.strictObject({
  spec: PlanSpecSchema,
  /** The model's source and tokenizer URIs (file://, s3://, hf://), as registered. */
  model: z.strictObject({ source: z.string().min(1), tokenizer: z.string().min(1).nullable() }),
  fileAccess: FileAccessSchema.nullable(),
});
export type PlanAssignment = z.infer<typeof PlanAssignmentSchema>;

export function parsePlanAssignment(value: unknown): PlanAssignment {
  return parseWith(PlanAssignmentSchema, value, "the claimed plan's config");
}
