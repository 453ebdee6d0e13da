/**
 * Pre-signed download URLs for a finished plan's output in S3, signed with the gateway's own storage
 * credentials (from the environment). Only the plan's tenant reaches this: the plan comes from a query
 * already limited to the tenant, and its tenant is checked again here.
 */
import { MAX_PRESIGN_SECONDS, presignOutputs } from '../engine.js';
import { notFound } from '../errors.js';
import { PlanStatus, type PruningPlan } from '../plans/plan.type.js';
import { checkInteger } from '../validation.js';
import type { OutputDownload } from './download.type.js';

export const DEFAULT_DOWNLOAD_SECONDS = 3600;

export class DownloadService {
  constructor(private readonly env: NodeJS.ProcessEnv = process.env) {}

  /** Null unless the plan SUCCEEDED with an output in S3 (a file:// output is read where it is). */
  async forPlan(plan: PruningPlan, tenantId: string, expiresInSeconds: number): Promise<OutputDownload[] | null> {
    if (plan.tenantId !== tenantId) throw notFound('plan', plan.id);
    const seconds = checkInteger('expiresInSeconds', expiresInSeconds, 1, MAX_PRESIGN_SECONDS);
    if (plan.status !== PlanStatus.SUCCEEDED || !plan.outputUri) return null;
    const expiresAt = new Date(Date.now() + seconds * 1000);
    const files = await presignOutputs(plan.outputUri, seconds, this.env);
    return files?.map((file) => ({ ...file, expiresAt })) ?? null;
  }
}
