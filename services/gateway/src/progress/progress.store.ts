import { sql, type Selectable } from 'kysely';
import type { Db } from '../store/database.js';
import { isoNow, parseJson } from '../store/columns.js';
import type { ProgressEventsTable } from '../store/tables.js';
import { toPlan } from '../plans/plan.store.js';
import { advanceProgress } from '../plans/plan.lifecycle.js';
import type { PruningPlan } from '../plans/plan.type.js';
import type { EventOrigin, ProgressEvent, ProgressReport } from './progress.type.js';

/** Thrown inside append's transaction to roll it back: the event is already stored. */
class AlreadyStored extends Error {}

export class ProgressStore {
  constructor(private readonly db: Db) {}

  /**
   * Stores the plan's next event and moves the plan's stage and progress with it (the plan's write is
   * PlanLifecycle's advanceProgress, made in this transaction). The sequence number
   * comes from bumping `plans.last_seq` in the same transaction: the row update serialises concurrent
   * appends on both SQLite and PostgreSQL, so numbers are gap-free and never reused.
   * With `holder`, only while that worker holds a live lease on the plan (see advanceProgress).
   * Returns null when the plan does not exist, has already finished or (with `holder`) is not held, and 'duplicate' when `origin`
   * says the event is one of its run that is already stored (checked after the row update, which holds
   * the plan's row until commit, so two copies of a batch in flight at once still store it once).
   */
  async append(planId: string, report: ProgressReport, origin?: EventOrigin, holder?: string): Promise<{ event: ProgressEvent; plan: PruningPlan } | null | 'duplicate'> {
    const appended = this.db.transaction().execute(async (trx) => {
      const now = isoNow();
      const planRow = await advanceProgress(trx, planId, report.stage, report.progress, now, holder);
      if (!planRow) return null;
      if (origin) {
        const latest = await trx.selectFrom('progress_events').select(['payload']).where('plan_id', '=', planId).orderBy('seq', 'desc').limit(1).executeTakeFirst();
        const previous = latest ? parseJson<{ origin?: EventOrigin }>(latest.payload).origin : undefined;
        if (previous && previous.run === origin.run && previous.index >= origin.index) throw new AlreadyStored();
      }
      const payload = {
        stage: report.stage,
        progress: report.progress,
        step: report.step ?? null,
        totalSteps: report.totalSteps ?? null,
        loss: report.loss ?? null,
        validationLoss: report.validationLoss ?? null,
        learningRate: report.learningRate ?? null,
        tokensPerSecond: report.tokensPerSecond ?? null,
        message: report.message ?? null,
        layer: report.layer ?? null,
        layers: report.layers ?? null,
        bytesRead: report.bytesRead ?? null,
        candidateId: report.candidateId ?? null,
        ...(origin ? { origin } : {}),
      };
      const row = { plan_id: planId, seq: planRow.last_seq, at: now, payload: JSON.stringify(payload) };
      await trx.insertInto('progress_events').values(row).execute();
      return { event: toEvent(row), plan: toPlan(planRow) };
    });
    return appended.catch((error: unknown) => {
      if (error instanceof AlreadyStored) return 'duplicate' as const;
      throw error;
    });
  }

  /** Events with seq > `after`, oldest first, at most `limit` of them. */
  async listAfter(planId: string, after: number, limit?: number): Promise<ProgressEvent[]> {
    let query = this.db.selectFrom('progress_events').selectAll().where('plan_id', '=', planId).where('seq', '>', after).orderBy('seq');
    if (limit !== undefined) query = query.limit(limit);
    return (await query.execute()).map(toEvent);
  }

  /**
   * Events of several plans (DataLoader batches), in one query: per plan, those with seq > `after`
   * (oldest `limit`) or, when `after` is null, the latest `limit`; oldest first.
   */
  async listMany(planIds: readonly string[], after: number | null, limit: number): Promise<Map<string, ProgressEvent[]>> {
    const byPlan = new Map<string, ProgressEvent[]>(planIds.map((id) => [id, []]));
    if (planIds.length === 0) return byPlan;
    const order = after === null ? sql`seq desc` : sql`seq`;
    let ranked = this.db
      .selectFrom('progress_events')
      .selectAll()
      .select(sql<number>`row_number() over (partition by plan_id order by ${order})`.as('rank'))
      .where('plan_id', 'in', [...planIds]);
    if (after !== null) ranked = ranked.where('seq', '>', after);
    const rows = await this.db.selectFrom(ranked.as('ranked')).selectAll().where('rank', '<=', limit).orderBy('plan_id').orderBy('seq').execute();
    for (const row of rows) byPlan.get(row.plan_id)?.push(toEvent(row));
    return byPlan;
  }

  /** The latest `limit` events, oldest first. */
  async listLatest(planId: string, limit: number): Promise<ProgressEvent[]> {
    const rows = await this.db.selectFrom('progress_events').selectAll().where('plan_id', '=', planId).orderBy('seq', 'desc').limit(limit).execute();
    return rows.reverse().map(toEvent);
  }
}

function toEvent(row: Selectable<ProgressEventsTable>): ProgressEvent {
  // Events stored before the layer fields existed have none.
  const payload = parseJson<Omit<ProgressEvent, 'planId' | 'seq' | 'at' | 'layer' | 'layers' | 'bytesRead' | 'candidateId'> & Partial<Pick<ProgressEvent, 'layer' | 'layers' | 'bytesRead' | 'candidateId'>>>(row.payload);
  return { ...payload, layer: payload.layer ?? null, layers: payload.layers ?? null, bytesRead: payload.bytesRead ?? null, candidateId: payload.candidateId ?? null, planId: row.plan_id, seq: row.seq, at: new Date(row.at) };
}
