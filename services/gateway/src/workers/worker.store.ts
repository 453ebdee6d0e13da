/**
 * Leases on plans. A claim takes the oldest plan that is QUEUED, or RUNNING under a lease that has run
 * out (its worker died), with a conditional update — so two workers, or two gateway replicas on one
 * PostgreSQL, can never both win the same plan — and no dialect-specific locking.
 */
import type { Updateable } from 'kysely';
import { isoNow } from '../store/columns.js';
import type { PlansTable } from '../store/tables.js';
import type { Db } from '../store/database.js';
import { toPlan } from '../plans/plan.store.js';
import { PlanStatus, type PruningPlan } from '../plans/plan.type.js';

export class LeaseStore {
  constructor(private readonly db: Db) {}

  async claimNext(workerId: string, leaseMs: number): Promise<PruningPlan | null> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const now = isoNow();
      const candidate = await this.db
        .selectFrom('plans')
        .select(['id'])
        .where((eb) => eb.or([eb('status', '=', PlanStatus.QUEUED), eb.and([eb('status', '=', PlanStatus.RUNNING), eb('lease_expires_at', '<', now)])]))
        .orderBy('created_at')
        .orderBy('id')
        .limit(1)
        .executeTakeFirst();
      if (!candidate) return null;
      const row = await this.db
        .updateTable('plans')
        .set((eb) => ({
          status: PlanStatus.RUNNING,
          worker_id: workerId,
          lease_expires_at: new Date(Date.now() + leaseMs).toISOString(),
          started_at: eb.fn.coalesce('started_at', eb.val(now)),
          updated_at: now,
        }))
        .where('id', '=', candidate.id)
        .where((eb) => eb.or([eb('status', '=', PlanStatus.QUEUED), eb.and([eb('status', '=', PlanStatus.RUNNING), eb('lease_expires_at', '<', now)])]))
        .returningAll()
        .executeTakeFirst();
      if (row) return toPlan(row);
      // Someone else took it between the two statements: look again.
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
