import { randomUUID } from 'node:crypto';
import { PostgresAdapter, sql, type Kysely, type Selectable, type Transaction } from 'kysely';
import { ExpiringCache } from '../caching.js';
import { parsePlanSpec, PlanCandidateSchema, type PlanCandidateRecord, type PlanSpec, type SweepEstimateRecord } from '../engine.js';
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
  /** A sweep's candidates. */
  readonly candidates?: readonly PlanCandidateRecord[];
  /** A sweep's dry-run estimate. */
  readonly sweepEstimate?: SweepEstimateRecord | null;
}

/** Default of STREAMLINE_PLAN_CACHE_MS: the longest a cached plan is served without reading it again. */
export const PLAN_CACHE_MS = 5_000;
const PLAN_CACHE_ENTRIES = 10_000;

/**
 * Plans read by id, parsed (the stored spec's zod parse included), kept for `ttlMs`. Consistency:
 * - on this replica, every write of a plan goes through PlanService.publish (or a deletion), which
 *   forgets it first: the writer's next read is its own write (read-your-writes);
 * - across replicas on PostgreSQL, every publish is a NOTIFY, and each replica forgets the plan when
 *   the notice arrives (milliseconds; events/postgres-plan-events.ts), before it reads it again;
 * - while the LISTEN connection is down, notices are lost: the cache is emptied and bypassed until it
 *   is back (`trusted`);
 * - `ttlMs` bounds anything else (a write no notice told of) — the safety net, not the mechanism.
 */
export class PlanCache {
  readonly entries: ExpiringCache<string, PruningPlan | null>;
  private bypassed = false;

  constructor(ttlMs = PLAN_CACHE_MS) {
    this.entries = new ExpiringCache({ ttlMs, maxEntries: PLAN_CACHE_ENTRIES });
  }

  /** The plan changed (or is gone): the next read goes to the store. */
  forget(planId: string): void {
    this.entries.forget(planId);
  }

  forgetModel(modelId: string): void {
    this.entries.forgetWhere((plan) => plan?.modelId === modelId);
  }

  /** Whether changes are being heard (false while the cross-replica bus is down): empties and bypasses the cache. */
  setTrusted(trusted: boolean): void {
    this.bypassed = !trusted;
    this.entries.clear();
  }

  load(planId: string, read: () => Promise<PruningPlan | null>): Promise<PruningPlan | null> {
    if (this.bypassed) return read();
    return this.entries.load(planId, read, (plan) => plan !== null);
  }
}

/** Plans' rows: inserts (QUEUED by construction) and reads. Every later write is PlanLifecycle's (plan.lifecycle.ts). */
export class PlanStore {
  /** `cache` (the gateway's): plans read by id are kept there; see PlanCache for when they are forgotten. */
  constructor(
    private readonly db: Db,
    readonly cache?: PlanCache,
  ) {}

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
    const plan = this.cache ? await this.cache.load(id, () => this.read(id)) : await this.read(id);
    return plan && (tenantId === undefined || plan.tenantId === tenantId) ? plan : null;
  }

  /** The plan as stored now, never from the cache (what a notice from another replica refers to). */
  async read(id: string): Promise<PruningPlan | null> {
    const row = await this.db.selectFrom('plans').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toPlan(row) : null;
  }

  /** Plans by id (DataLoader batches), in one query; absent ones are missing from the map. */
  async getMany(ids: readonly string[]): Promise<Map<string, PruningPlan>> {
    const found = new Map<string, PruningPlan>();
    const missing: string[] = [];
    for (const id of ids) {
      const cached = this.cache?.entries.get(id);
      if (cached) found.set(id, cached);
      else missing.push(id);
    }
    if (missing.length > 0) for (const row of await this.db.selectFrom('plans').selectAll().where('id', 'in', missing).execute()) found.set(row.id, toPlan(row));
    return found;
  }

  /** Plans of each model (DataLoader batches), oldest first, in one query. */
  async listByModels(modelIds: readonly string[]): Promise<Map<string, PruningPlan[]>> {
    const byModel = new Map<string, PruningPlan[]>(modelIds.map((id) => [id, []]));
    if (modelIds.length === 0) return byModel;
    const rows = await this.db.selectFrom('plans').selectAll().where('model_id', 'in', [...modelIds]).orderBy('created_at').orderBy('id').execute();
    for (const row of rows) byModel.get(row.model_id)?.push(toPlan(row));
    return byModel;
  }

  async list(filter: { status?: PlanStatus | null; modelId?: string; tenantId?: string } = {}): Promise<PruningPlan[]> {
    let query = this.db.selectFrom('plans').selectAll();
    if (filter.tenantId !== undefined) query = query.where('tenant_id', '=', filter.tenantId);
    if (filter.status) query = query.where('status', '=', filter.status);
    if (filter.modelId !== undefined) query = query.where('model_id', '=', filter.modelId);
    const rows = await query.orderBy('created_at').orderBy('id').execute();
    return rows.map(toPlan);
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
    lastSeq: row.last_seq,
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
    // Rows read at a schema before 0007 (in migrations' own tests) have neither column.
    candidates: PlanCandidateSchema.array().parse(parseJson<unknown>(row.candidates ?? '[]')),
    cancelledCandidates: parseJson<string[]>(row.cancelled_candidates ?? '[]'),
    sweepEstimate: row.sweep_estimate ? parseJson<SweepEstimateRecord>(row.sweep_estimate) : null,
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
