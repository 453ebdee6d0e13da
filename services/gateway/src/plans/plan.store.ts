import { randomUUID } from 'node:crypto';
import { PostgresAdapter, sql, type Kysely, type Selectable, type Transaction } from 'kysely';
import { parsePlanSpec, type PlanSpec } from '../engine.js';
import { storedErrorCode, type ErrorCode } from '../errors.js';
import type { Db } from '../store/database.js';
import { creationTime, dateOrNull, parseJson } from '../store/columns.js';
import type { PlansTable } from '../store/tables.js';
import { DEFAULT_TENANT_ID } from '../store/migrations.js';
import type { Tables } from '../store/tables.js';
import { PlanStatus, type PlanStage, type PruningPlan, type ReplacementKind } from './plan.type.js';

export interface NewPlan {
  readonly modelId: string;
  /** Stored as the plan's config; its block, replacement and dry-run settings also fill their columns. */
  readonly spec: PlanSpec;
  readonly originalParameters: number | null;
  /** Owner (the model's tenant); the default tenant when absent. */
  readonly tenantId?: string;
}

/** What finishing a plan records besides its final status. */
export interface FinishRecord {
  readonly startLayer?: number | null;
  readonly removedLayers?: number[];
  readonly outputUri?: string | null;
  readonly prunedParameters?: number | null;
  readonly error?: string | null;
  /** The gateway's code of `error`. */
  readonly errorCode?: ErrorCode | null;
}

/** Plans' rows: inserts (QUEUED by construction) and reads. Every later write is PlanLifecycle's (plan.lifecycle.ts). */
export class PlanStore {
  constructor(private readonly db: Db) {}

  insert(plan: NewPlan): Promise<PruningPlan> {
    return insertPlan(this.db, plan);
  }

  /**
   * Inserts the plan unless its tenant already has `maxQueued` queued plans; answers the plan, or the
   * number queued when it is refused. Race-safe across gateway replicas: on PostgreSQL the tenant's
   * plans are serialised by a transaction-scoped advisory lock; on SQLite the insert comes first and
   * takes the database's write lock, and the count that follows in the same transaction includes it.
   */
  async insertWithinQuota(plan: NewPlan, maxQueued: number): Promise<{ plan: PruningPlan } | { refused: { queued: number } }> {
    const tenantId = plan.tenantId ?? DEFAULT_TENANT_ID;
    const overQuota = new Error('over quota');
    let queued = 0;
    try {
      const inserted = await this.db.transaction().execute(async (trx) => {
        await lockTenantPlans(trx, tenantId);
        const row = await insertPlan(trx, plan);
        queued = await countPlans(trx, tenantId, PlanStatus.QUEUED);
        if (queued > maxQueued) throw overQuota; // rolls the insert back
        return row;
      });
      return { plan: inserted };
    } catch (error) {
      if (error === overQuota) return { refused: { queued: queued - 1 } };
      throw error;
    }
  }

  /** The tenant's plans in `status`. */
  countByTenant(tenantId: string, status: PlanStatus): Promise<number> {
    return countPlans(this.db, tenantId, status);
  }

  /** The plan; with `tenantId`, only when that tenant owns it. */
  async get(id: string, tenantId?: string): Promise<PruningPlan | null> {
    let query = this.db.selectFrom('plans').selectAll().where('id', '=', id);
    if (tenantId !== undefined) query = query.where('tenant_id', '=', tenantId);
    const row = await query.executeTakeFirst();
    return row ? toPlan(row) : null;
  }

  async list(filter: { status?: PlanStatus | null; modelId?: string; tenantId?: string } = {}): Promise<PruningPlan[]> {
    let query = this.db.selectFrom('plans').selectAll();
    if (filter.tenantId !== undefined) query = query.where('tenant_id', '=', filter.tenantId);
    if (filter.status) query = query.where('status', '=', filter.status);
    if (filter.modelId !== undefined) query = query.where('model_id', '=', filter.modelId);
    const rows = await query.orderBy('created_at').orderBy('id').execute();
    return rows.map(toPlan);
  }

  async countActive(modelId: string): Promise<number> {
    const row = await this.db
      .selectFrom('plans')
      .select((eb) => eb.fn.countAll<number | string>().as('count'))
      .where('model_id', '=', modelId)
      .where('status', 'in', [PlanStatus.QUEUED, PlanStatus.RUNNING])
      .executeTakeFirstOrThrow();
    return Number(row.count);
  }

  /** The worker holding the plan's lease, if any. */
  async holder(planId: string): Promise<string | null> {
    const row = await this.db.selectFrom('plans').select(['worker_id']).where('id', '=', planId).executeTakeFirst();
    return row?.worker_id ?? null;
  }
}

async function insertPlan(db: Kysely<Tables>, plan: NewPlan): Promise<PruningPlan> {
  const now = creationTime();
  const row = await db
    .insertInto('plans')
    .values({
      id: randomUUID(),
      model_id: plan.modelId,
      status: PlanStatus.QUEUED,
      stage: null,
      progress: 0,
      layers_to_prune: plan.spec.layersToPrune,
      target_sparsity: plan.spec.targetSparsity,
      start_layer: plan.spec.startLayer,
      removed_layers: '[]',
      replacement: plan.spec.replacement,
      dry_run: plan.spec.dryRun ? 1 : 0,
      config: JSON.stringify(plan.spec),
      output_uri: null,
      error: null,
      error_code: null,
      original_parameters: plan.originalParameters,
      pruned_parameters: null,
      created_at: now,
      updated_at: now,
      started_at: null,
      finished_at: null,
      worker_id: null,
      lease_expires_at: null,
      tenant_id: plan.tenantId ?? DEFAULT_TENANT_ID,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  return toPlan(row);
}

function countPlans(db: Kysely<Tables>, tenantId: string, status: PlanStatus): Promise<number> {
  return db
    .selectFrom('plans')
    .select((eb) => eb.fn.countAll<number | string>().as('count'))
    .where('tenant_id', '=', tenantId)
    .where('status', '=', status)
    .executeTakeFirstOrThrow()
    .then((row) => Number(row.count));
}

/**
 * Serialises changes to one tenant's plan counts (quota checks) until the transaction ends. PostgreSQL:
 * an advisory lock on the tenant. SQLite needs none: one writer at a time, and its first write in the
 * transaction (which callers make before counting) takes the database's write lock.
 */
export async function lockTenantPlans(trx: Transaction<Tables>, tenantId: string): Promise<void> {
  if (!(trx.getExecutor().adapter instanceof PostgresAdapter)) return;
  await sql`select pg_advisory_xact_lock(hashtext(${`streamline.tenant-plans:${tenantId}`}))`.execute(trx);
}

export function toPlan(row: Selectable<PlansTable>): PruningPlan {
  return {
    id: row.id,
    modelId: row.model_id,
    tenantId: row.tenant_id,
    status: row.status as PlanStatus,
    stage: row.stage as PlanStage | null,
    progress: row.progress,
    layersToPrune: row.layers_to_prune,
    targetSparsity: row.target_sparsity,
    startLayer: row.start_layer,
    removedLayers: parseJson<number[]>(row.removed_layers),
    replacement: row.replacement as ReplacementKind,
    dryRun: row.dry_run === 1,
    config: parsePlanSpec(parseJson<unknown>(row.config), `the stored spec of plan ${row.id}`),
    outputUri: row.output_uri,
    originalParameters: row.original_parameters,
    prunedParameters: row.pruned_parameters,
    error: row.error,
    errorCode: storedErrorCode(row.error_code),
    createdAt: new Date(row.created_at),
    startedAt: dateOrNull(row.started_at),
    finishedAt: dateOrNull(row.finished_at),
  };
}
