/**
 * Leases on plans. A claim takes a plan that is QUEUED, or RUNNING under a lease that has run out (its
 * worker died), with a conditional update — so two workers, or two gateway replicas on one PostgreSQL,
 * can never both win the same plan.
 *
 * Which plan: claims go round-robin across tenants. Among the tenants with a claimable plan and fewer
 * than `maxRunningPerTenant` plans running under a live lease, the one whose most recent claim is the
 * oldest (never claimed first) is served, with its oldest claimable plan (created_at, then id). So a
 * tenant with 300 queued plans gets one claim, then every other waiting tenant gets one, and so on;
 * a tenant at its running limit waits while the others are served.
 *
 * The running limit holds across replicas: the claim, the recount of the tenant's running plans and
 * the rollback when it went over happen in one transaction, under the tenant's lock (see
 * lockTenantPlans).
 */
import { sql, type Kysely, type Updateable } from 'kysely';
import { isoNow } from '../store/columns.js';
import type { PlansTable, Tables } from '../store/tables.js';
import type { Db } from '../store/database.js';
import { lockTenantPlans, toPlan } from '../plans/plan.store.js';
import { PlanStatus, type PruningPlan } from '../plans/plan.type.js';

/** No limit on running plans per tenant. */
const UNLIMITED = Number.MAX_SAFE_INTEGER;

export class LeaseStore {
  constructor(private readonly db: Db) {}

  async claimNext(workerId: string, leaseMs: number, maxRunningPerTenant = UNLIMITED): Promise<PruningPlan | null> {
    const overLimit = new Error('over the running limit');
    for (let attempt = 0; attempt < 5; attempt++) {
      const now = isoNow();
      const candidate = await nextCandidate(this.db, now, maxRunningPerTenant);
      if (!candidate) return null;
      try {
        const row = await this.db.transaction().execute(async (trx) => {
          await lockTenantPlans(trx, candidate.tenant_id);
          const claimed = await trx
            .updateTable('plans')
            .set((eb) => ({
              status: PlanStatus.RUNNING,
              worker_id: workerId,
              lease_expires_at: new Date(Date.now() + leaseMs).toISOString(),
              started_at: eb.fn.coalesce('started_at', eb.val(now)),
              claimed_at: now,
              updated_at: now,
            }))
            .where('id', '=', candidate.id)
            .where((eb) => eb.or([eb('status', '=', PlanStatus.QUEUED), eb.and([eb('status', '=', PlanStatus.RUNNING), eb('lease_expires_at', '<', now)])]))
            .returningAll()
            .executeTakeFirst();
          if (claimed && (await countRunning(trx, candidate.tenant_id, now)) > maxRunningPerTenant) throw overLimit;
          return claimed;
        });
        if (row) return toPlan(row);
        // Someone else took it between the two statements: look again.
      } catch (error) {
        if (error !== overLimit) throw error;
        // Another claim for the same tenant got there first: the next look skips the tenant.
      }
    }
    return null;
  }

  /** Extends the lease of a plan this worker holds; null when it does not hold it (any more). */
  renew(planId: string, workerId: string, leaseMs: number): Promise<PruningPlan | null> {
    return this.updateHeld(planId, workerId, { lease_expires_at: new Date(Date.now() + leaseMs).toISOString() });
  }

  /** Gives a running plan back to the queue (its worker is stopping). */
  release(planId: string, workerId: string): Promise<PruningPlan | null> {
    return this.updateHeld(planId, workerId, { status: PlanStatus.QUEUED, worker_id: null, lease_expires_at: null, updated_at: isoNow() });
  }

  /** Changes a plan only while it is RUNNING under this worker's lease. */
  private async updateHeld(planId: string, workerId: string, changes: Updateable<PlansTable>): Promise<PruningPlan | null> {
    const row = await this.db
      .updateTable('plans')
      .set(changes)
      .where('id', '=', planId)
      .where('worker_id', '=', workerId)
      .where('status', '=', PlanStatus.RUNNING)
      .returningAll()
      .executeTakeFirst();
    return row ? toPlan(row) : null;
  }

  async holder(planId: string): Promise<string | null> {
    const row = await this.db.selectFrom('plans').select(['worker_id']).where('id', '=', planId).executeTakeFirst();
    return row?.worker_id ?? null;
  }
}

/** Running under a live lease (a RUNNING plan without a lease counts too). */
function liveRunning(now: string) {
  return sql`(status = ${PlanStatus.RUNNING} and (lease_expires_at is null or lease_expires_at >= ${now}))`;
}

/** Claimable: QUEUED, or RUNNING under an expired lease. */
function claimable(now: string) {
  return sql`(p.status = ${PlanStatus.QUEUED} or (p.status = ${PlanStatus.RUNNING} and p.lease_expires_at < ${now}))`;
}

/**
 * The next plan to claim, by the rule above, in one query (portable SQL: '' sorts before any ISO time
 * in both databases, standing for "never claimed"). It reads the running plans (few) and, per candidate,
 * its tenant's latest claim through the (tenant_id, claimed_at) index — never the whole history.
 */
async function nextCandidate(db: Kysely<Tables>, now: string, maxRunningPerTenant: number): Promise<{ id: string; tenant_id: string } | undefined> {
  const { rows } = await sql<{ id: string; tenant_id: string }>`
    with running as (
      select tenant_id, count(*) as n from plans where ${liveRunning(now)} group by tenant_id
    )
    select p.id, p.tenant_id from plans p
    left join running r on r.tenant_id = p.tenant_id
    where ${claimable(now)} and coalesce(r.n, 0) < ${maxRunningPerTenant}
    order by coalesce((select max(c.claimed_at) from plans c where c.tenant_id = p.tenant_id), '') asc, p.created_at asc, p.id asc
    limit 1`.execute(db);
  return rows[0];
}

async function countRunning(db: Kysely<Tables>, tenantId: string, now: string): Promise<number> {
  const { rows } = await sql<{ n: number | string }>`select count(*) as n from plans where tenant_id = ${tenantId} and ${liveRunning(now)}`.execute(db);
  return Number(rows[0]?.n ?? 0);
}
