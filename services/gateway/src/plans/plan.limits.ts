/**
 * Limits on plans: per-tenant quotas on queued and running plans, and the upper bounds on a plan's
 * settings (shared with the engine, which checks them again before it runs a plan). All from the
 * environment, with defaults that run on one machine:
 *
 * - STREAMLINE_TENANT_MAX_QUEUED (default 20): queued plans per tenant; creating one more is QUOTA_EXCEEDED.
 * - STREAMLINE_TENANT_MAX_RUNNING (default 4): running plans per tenant; claims skip the tenant's queued
 *   plans while it is at the limit.
 * - STREAMLINE_PLAN_MAX_* (see the engine's plan-bounds.ts): samples, epochs, steps, batch size,
 *   gradient accumulation, evaluation texts, windows, tasks and items.
 */
import { DEFAULT_PLAN_BOUNDS, planBoundsFromEnv, type PlanBounds } from '../engine.js';
import { positiveInteger } from '../env-integers.js';

export interface PlanLimits {
  readonly maxQueuedPerTenant: number;
  readonly maxRunningPerTenant: number;
  readonly bounds: PlanBounds;
}

export const DEFAULT_PLAN_LIMITS: PlanLimits = { maxQueuedPerTenant: 20, maxRunningPerTenant: 4, bounds: DEFAULT_PLAN_BOUNDS };

export function planLimitsFromEnv(env: NodeJS.ProcessEnv = process.env): PlanLimits {
  return {
    maxQueuedPerTenant: positiveInteger(env, 'STREAMLINE_TENANT_MAX_QUEUED', DEFAULT_PLAN_LIMITS.maxQueuedPerTenant),
    maxRunningPerTenant: positiveInteger(env, 'STREAMLINE_TENANT_MAX_RUNNING', DEFAULT_PLAN_LIMITS.maxRunningPerTenant),
    bounds: planBoundsFromEnv(env),
  };
}
