/**
 * The plan lifecycle: the one owner of every change to a plan's status, lease and progress columns
 * (rows are created by PlanStore's inserts, which are QUEUED by construction; reads stay in the stores).
 *
 * Each write is ONE guarded UPDATE whose WHERE clause is the row of PLAN_TRANSITIONS it performs (the
 * statuses it leaves from and, for a worker's writes, that the worker holds the plan), and each
 * answers the plan as it became, or null when the guard did not hold — so two callers racing (a cancel
 * and a worker finishing, two workers claiming, a worker whose lease was taken over finishing) cannot
 * both win, and no caller reads first and writes after.
 *
 * Claims go round-robin across tenants. Among the tenants with a claimable plan and fewer than
 * `maxRunningPerTenant` plans running under a live lease, the one whose most recent claim is the
 * oldest (never claimed first) is served, with its oldest claimable plan (created_at, then id). So a
 * tenant with 300 queued plans gets one claim, then every other waiting tenant gets one, and so on;
 * a tenant at its running limit waits while the others are served. The running limit holds across
 * replicas: the claim, the recount of the tenant's running plans and the rollback when it went over
 * happen in one transaction, under the tenant's lock (see lockTenantPlans).
 *
 * Lease expiry is not a write of its own: a RUNNING plan whose lease has run out is claimable exactly
 * as a QUEUED one is (RUNNING→QUEUED by expiry and QUEUED→RUNNING by the next claim, in one UPDATE),
 * and its former holder's writes are refused from the moment the lease ran out.
 */
import { sql, type Kysely, type Updateable } from 'kysely';
import { isoNow } from '../store/columns.js';
import type { Db } from '../store/database.js';
import type { PlansTable, Tables } from '../store/tables.js';
import { lockTenantPlans, toPlan, type FinishRecord } from './plan.store.js';
import { PlanStatus, type PlanStage, type PruningPlan } from './plan.type.js';

/** The writes a plan's status can take; each names who makes it. */
export enum PlanWrite {
  /** A worker takes a queued plan, or one whose lease ran out, under a new lease. */
  CLAIM = 'CLAIM',
  /** The holder extends its lease (a heartbeat). */
  RENEW = 'RENEW',
  /** The holder gives the plan back to the queue (it is stopping). */
  RELEASE = 'RELEASE',
  /** The holder ends the plan with its result. */
  SUCCEED = 'SUCCEED',
  /** The holder ends the plan with an error. */
  FAIL = 'FAIL',
  /** The gateway fails a queued plan for a reason known before any worker took it (its model's weights are invalid). */
  FAIL_QUEUED = 'FAIL_QUEUED',
  /** A user cancels a plan that has not ended; a running plan's worker learns of it at its next heartbeat. */
  CANCEL = 'CANCEL',
  /** A progress event moves the plan's stage and progress (status unchanged); a worker's only while it holds the RUNNING plan. */
  PROGRESS = 'PROGRESS',
}

export interface PlanTransition {
  readonly write: PlanWrite;
  readonly from: readonly PlanStatus[];
  readonly to: PlanStatus | 'unchanged';
  /** Only the worker holding a live lease may make it. */
  readonly byHolder: boolean;
}

/**
 * Every change a plan's status may take; anything else is refused. SUCCEEDED, FAILED and CANCELLED are
 * final: no write leaves them (retryPlan makes a new plan). A RUNNING plan under an expired lease counts
 * as claimable (see above).
 */
export const PLAN_TRANSITIONS: Readonly<Record<PlanWrite, PlanTransition>> = {
  [PlanWrite.CLAIM]: { write: PlanWrite.CLAIM, from: [PlanStatus.QUEUED], to: PlanStatus.RUNNING, byHolder: false },
  [PlanWrite.RENEW]: { write: PlanWrite.RENEW, from: [PlanStatus.RUNNING], to: PlanStatus.RUNNING, byHolder: true },
  [PlanWrite.RELEASE]: { write: PlanWrite.RELEASE, from: [PlanStatus.RUNNING], to: PlanStatus.QUEUED, byHolder: true },
  [PlanWrite.SUCCEED]: { write: PlanWrite.SUCCEED, from: [PlanStatus.RUNNING], to: PlanStatus.SUCCEEDED, byHolder: true },
  [PlanWrite.FAIL]: { write: PlanWrite.FAIL, from: [PlanStatus.RUNNING], to: PlanStatus.FAILED, byHolder: true },
  [PlanWrite.FAIL_QUEUED]: { write: PlanWrite.FAIL_QUEUED, from: [PlanStatus.QUEUED], to: PlanStatus.FAILED, byHolder: false },
  [PlanWrite.CANCEL]: { write: PlanWrite.CANCEL, from: [PlanStatus.QUEUED, PlanStatus.RUNNING], to: PlanStatus.CANCELLED, byHolder: false },
  [PlanWrite.PROGRESS]: { write: PlanWrite.PROGRESS, from: [PlanStatus.QUEUED, PlanStatus.RUNNING], to: 'unchanged', byHolder: false },
};

/** No limit on running plans per tenant. */
const UNLIMITED = Number.MAX_SAFE_INTEGER;

/** What a finished plan records. */
const finalColumns = (now: string) => ({ finished_at: now, worker_id: null, lease_expires_at: null, updated_at: now });

export class PlanLifecycle {
  constructor(private readonly db: Db) {}

  /** CLAIM: the next plan by the round-robin rule above, RUNNING under `workerId`'s lease; null when none is claimable. */
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

  /** RENEW: extends the lease of a plan this worker holds; null when it does not hold it (any more). */
  renew(planId: string, workerId: string, leaseMs: number): Promise<PruningPlan | null> {
    return this.updateHeld(PlanWrite.RENEW, planId, workerId, { lease_expires_at: new Date(Date.now() + leaseMs).toISOString() });
  }

  /** RELEASE: gives a plan this worker holds back to the queue; null when it does not hold it. */
  release(planId: string, workerId: string): Promise<PruningPlan | null> {
    return this.updateHeld(PlanWrite.RELEASE, planId, workerId, { status: PlanStatus.QUEUED, worker_id: null, lease_expires_at: null, updated_at: isoNow() });
  }

  /**
   * SUCCEED or FAIL by the holder: ends the plan with what it produced, only while `workerId` holds
   * it, in the same statement — a worker whose plan was taken over by another gets null.
   * `alongside` writes the plan's results (reports) in the same transaction, after the guarded UPDATE
   * applied and only then: a refused finish leaves nothing behind, and readers see the status and the
   * results together. It must write through the executor it is given.
   */
  async finishByHolder(
    planId: string,
    workerId: string,
    status: PlanStatus.SUCCEEDED | PlanStatus.FAILED,
    outcome: FinishRecord = {},
    alongside?: (trx: Db) => Promise<void>,
  ): Promise<PruningPlan | null> {
    const write = status === PlanStatus.SUCCEEDED ? PlanWrite.SUCCEED : PlanWrite.FAIL;
    const changes: Updateable<PlansTable> = {
      status,
      ...finalColumns(isoNow()),
      ...outcomeColumns(outcome),
      ...(status === PlanStatus.SUCCEEDED ? { progress: 1, stage: 'DONE' } : {}),
    };
    if (!alongside) return updateHeld(this.db, write, planId, workerId, changes);
    return this.db.transaction().execute(async (trx) => {
      const finished = await updateHeld(trx, write, planId, workerId, changes);
      if (finished) await alongside(trx);
      return finished;
    });
  }

  /** FAIL_QUEUED: fails a plan no worker has taken; null when it is not QUEUED (claimed or cancelled meanwhile). */
  async failQueued(planId: string, error: string, errorCode: FinishRecord['errorCode']): Promise<PruningPlan | null> {
    const now = isoNow();
    const row = await this.db
      .updateTable('plans')
      .set({ status: PlanStatus.FAILED, ...finalColumns(now), ...outcomeColumns({ error, errorCode }) })
      .where('id', '=', planId)
      .where('status', 'in', [...PLAN_TRANSITIONS.FAIL_QUEUED.from])
      .returningAll()
      .executeTakeFirst();
    return row ? toPlan(row) : null;
  }

  /** CANCEL from one of `from` (some of CANCEL's); null when the plan is elsewhere or missing. */
  async cancel(planId: string, from: readonly PlanStatus[] = PLAN_TRANSITIONS.CANCEL.from): Promise<PruningPlan | null> {
    const allowed = from.filter((status) => PLAN_TRANSITIONS.CANCEL.from.includes(status));
    if (allowed.length === 0) return null;
    const row = await this.db
      .updateTable('plans')
      .set({ status: PlanStatus.CANCELLED, ...finalColumns(isoNow()) })
      .where('id', '=', planId)
      .where('status', 'in', allowed)
      .returningAll()
      .executeTakeFirst();
    return row ? toPlan(row) : null;
  }

  /**
   * Adds `candidateId` to a QUEUED or RUNNING sweep's cancelled candidates (once); null when the plan
   * is in another status. Compare-and-set on the list, so concurrent cancellations all land.
   */
  async cancelCandidate(planId: string, candidateId: string): Promise<PruningPlan | null> {
    for (;;) {
      const current = await this.db.selectFrom('plans').select(['cancelled_candidates', 'status']).where('id', '=', planId).executeTakeFirst();
      if (!current || !PLAN_TRANSITIONS.CANCEL.from.includes(current.status as PlanStatus)) return null;
      const cancelled = JSON.parse(current.cancelled_candidates) as string[];
      if (cancelled.includes(candidateId)) return this.db.selectFrom('plans').selectAll().where('id', '=', planId).executeTakeFirst().then((row) => (row ? toPlan(row) : null));
      const row = await this.db
        .updateTable('plans')
        .set({ cancelled_candidates: JSON.stringify([...cancelled, candidateId]), updated_at: isoNow() })
        .where('id', '=', planId)
        .where('cancelled_candidates', '=', current.cancelled_candidates)
        .where('status', 'in', [...PLAN_TRANSITIONS.CANCEL.from])
        .returningAll()
        .executeTakeFirst();
      if (row) return toPlan(row);
    }
  }

  private updateHeld(write: PlanWrite, planId: string, workerId: string, changes: Updateable<PlansTable>): Promise<PruningPlan | null> {
    return updateHeld(this.db, write, planId, workerId, changes);
  }
}

/**
 * A write guarded by PLAN_TRANSITIONS[write].from and by `workerId` holding the plan, in one UPDATE. A
 * lease that ran out while nobody claimed the plan is still the holder's (a late heartbeat on a loaded
 * machine must not restart the plan); once another worker claims it, worker_id changes and the old
 * holder's writes are refused.
 */
async function updateHeld(db: Kysely<Tables>, write: PlanWrite, planId: string, workerId: string, changes: Updateable<PlansTable>): Promise<PruningPlan | null> {
  const row = await db
    .updateTable('plans')
    .set(changes)
    .where('id', '=', planId)
    .where('status', 'in', [...PLAN_TRANSITIONS[write].from])
    .where('worker_id', '=', workerId)
    .returningAll()
    .executeTakeFirst();
  return row ? toPlan(row) : null;
}

/**
 * PROGRESS, inside the caller's transaction (ProgressStore.append, which stores the event in the same
 * one): moves the stage and progress of a plan that has not ended and bumps its event sequence; the
 * plan's row as it became, or undefined when it has ended or is missing. With `holder` (a worker's
 * report), only while that worker holds a live lease on the RUNNING plan, in the same UPDATE.
 */
export function advanceProgress(trx: Kysely<Tables>, planId: string, stage: PlanStage, progress: number, now: string, holder?: string) {
  let update = trx
    .updateTable('plans')
    .set((eb) => ({ last_seq: eb('last_seq', '+', 1), stage, progress, updated_at: now }))
    .where('id', '=', planId)
    .where('status', 'in', [...PLAN_TRANSITIONS.PROGRESS.from]);
  if (holder !== undefined) update = update.where('status', '=', PlanStatus.RUNNING).where('worker_id', '=', holder);
  return update.returningAll().executeTakeFirst();
}

function outcomeColumns(outcome: FinishRecord): Updateable<PlansTable> {
  return {
    ...(outcome.startLayer !== undefined ? { start_layer: outcome.startLayer } : {}),
    ...(outcome.removedLayers !== undefined ? { removed_layers: JSON.stringify(outcome.removedLayers) } : {}),
    ...(outcome.outputUri !== undefined ? { output_uri: outcome.outputUri } : {}),
    ...(outcome.prunedParameters !== undefined ? { pruned_parameters: outcome.prunedParameters } : {}),
    ...(outcome.error !== undefined ? { error: outcome.error } : {}),
    ...(outcome.errorCode !== undefined ? { error_code: outcome.errorCode } : {}),
    ...(outcome.candidates !== undefined ? { candidates: JSON.stringify(outcome.candidates) } : {}),
    ...(outcome.sweepEstimate !== undefined ? { sweep_estimate: outcome.sweepEstimate === null ? null : JSON.stringify(outcome.sweepEstimate) } : {}),
  };
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
