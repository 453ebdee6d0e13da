/**
 * The plan lifecycle in the store, on both databases: every write of PLAN_TRANSITIONS applies from the
 * statuses its row names and is refused from every other one (final statuses stay final); a worker's
 * writes apply only while it holds the plan — a worker whose lease ran out and was taken over cannot
 * finish the plan, even when it read the plan as its own just before (the race is made deterministic by
 * writing with the stale holder directly); and claim, renew, release and cancel still do their work.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../src/errors.js';
import { inProcessPlanEventBus } from '../src/events/plan-events.js';
import { createServices } from '../src/gateway.js';
import { ModelStore } from '../src/models/model.store.js';
import { PlanLifecycle, PLAN_TRANSITIONS, PlanWrite } from '../src/plans/plan.lifecycle.js';
import { PlanStore, type NewPlan } from '../src/plans/plan.store.js';
import { PlanStage, PlanStatus } from '../src/plans/plan.type.js';
import { openDatabase, type Database } from '../src/store/database.js';
import { ProgressStore } from '../src/progress/progress.store.js';
import { WorkerService } from '../src/workers/worker.service.js';
import { storeBackends } from './fixtures/store-backends.js';
import { STORED_MODEL, storedPlanFor } from './fixtures/stored-model.js';
import { completeAsWorker, failAsWorker } from './fixtures/claim.js';

const planFor = (modelId: string): NewPlan => storedPlanFor(modelId);

const HOLDER = 'w1';
const LEASE_MS = 60_000;
const inFuture = () => new Date(Date.now() + LEASE_MS).toISOString();
const inPast = () => new Date(Date.now() - 1000).toISOString();

describe.each(storeBackends('plan lifecycle'))('plan lifecycle on $name', (backend) => {
  let database: Database;
  let lifecycle: PlanLifecycle;
  let plans: PlanStore;

  beforeAll(async () => {
    database = await openDatabase(await backend.setUp());
    lifecycle = new PlanLifecycle(database.db);
    plans = new PlanStore(database.db);
  });
  afterEach(async () => {
    await database.db.deleteFrom('models').execute(); // cascades to the plans
  });
  afterAll(async () => {
    await database?.close();
    await backend.tearDown();
  });

  /**
   * A plan in `status`; a RUNNING one is held by HOLDER under a live lease. Set in the row directly (this
   * test's fixture, not a way into the lifecycle): it is the starting point of each write under test.
   */
  async function planIn(status: PlanStatus): Promise<string> {
    const model = await new ModelStore(database.db).insert(STORED_MODEL);
    const { id } = await plans.insert(planFor(model.id));
    const running = status === PlanStatus.RUNNING;
    await database.db
      .updateTable('plans')
      .set({ status, worker_id: running ? HOLDER : null, lease_expires_at: running ? inFuture() : null })
      .where('id', '=', id)
      .execute();
    return id;
  }

  /** Each write, made as the plan's holder where it takes one; the plan as it became, or null when refused. */
  const writes: Record<PlanWrite, (id: string) => Promise<unknown>> = {
    [PlanWrite.CLAIM]: async () => lifecycle.claimNext('w2', LEASE_MS),
    [PlanWrite.RENEW]: (id) => lifecycle.renew(id, HOLDER, LEASE_MS),
    [PlanWrite.RELEASE]: (id) => lifecycle.release(id, HOLDER),
    [PlanWrite.SUCCEED]: (id) => lifecycle.finishByHolder(id, HOLDER, PlanStatus.SUCCEEDED, { outputUri: 'file:///out' }),
    [PlanWrite.FAIL]: (id) => lifecycle.finishByHolder(id, HOLDER, PlanStatus.FAILED, { error: 'out of memory', errorCode: ErrorCode.INTERNAL }),
    [PlanWrite.FAIL_QUEUED]: (id) => lifecycle.failQueued(id, 'invalid weights', ErrorCode.INVALID_WEIGHTS),
    [PlanWrite.CANCEL]: (id) => lifecycle.cancel(id),
    [PlanWrite.PROGRESS]: async (id) => ((await new ProgressStore(database.db).append(id, { stage: PlanStage.TRAINING, progress: 0.5 })) ?? null),
  };

  const cases = Object.values(PlanWrite).flatMap((write) => Object.values(PlanStatus).map((from) => ({ write, from, allowed: PLAN_TRANSITIONS[write].from.includes(from) })));

  it.each(cases)('$write from $from: allowed $allowed', async ({ write, from, allowed }) => {
    const id = await planIn(from);
    const before = await plans.get(id);
    const result = await writes[write](id);
    const after = await plans.get(id);
    if (!allowed) {
      expect(result).toBeNull();
      expect(after).toEqual(before); // the row untouched
      return;
    }
    expect(result).not.toBeNull();
    const to = PLAN_TRANSITIONS[write].to;
    expect(after!.status).toBe(to === 'unchanged' ? from : to);
  });

  /** The holder's writes, made by another worker: refused from every status. */
  const byOthers: Partial<Record<PlanWrite, (id: string) => Promise<unknown>>> = {
    [PlanWrite.RENEW]: (id) => lifecycle.renew(id, 'w9', LEASE_MS),
    [PlanWrite.RELEASE]: (id) => lifecycle.release(id, 'w9'),
    [PlanWrite.SUCCEED]: (id) => lifecycle.finishByHolder(id, 'w9', PlanStatus.SUCCEEDED),
    [PlanWrite.FAIL]: (id) => lifecycle.finishByHolder(id, 'w9', PlanStatus.FAILED, { error: 'not mine' }),
  };

  it.each(Object.values(PlanWrite).filter((write) => PLAN_TRANSITIONS[write].byHolder))('refuses %s by a worker that does not hold the lease', async (write) => {
    expect(byOthers[write]).toBeDefined();
    for (const from of Object.values(PlanStatus)) {
      const id = await planIn(from);
      const before = await plans.get(id);
      expect(await byOthers[write]!(id)).toBeNull();
      expect(await plans.get(id)).toEqual(before);
    }
  });

  it('refuses every write out of a final status', async () => {
    for (const from of [PlanStatus.SUCCEEDED, PlanStatus.FAILED, PlanStatus.CANCELLED]) {
      for (const write of Object.values(PlanWrite)) expect(PLAN_TRANSITIONS[write].from).not.toContain(from);
    }
  });

  it('refuses to finish a plan whose lease ran out and was taken over by another worker, though its old holder had read it as its own', async () => {
    const id = await planIn(PlanStatus.RUNNING);
    expect(await plans.holder(id)).toBe(HOLDER); // the old holder's read: the plan is RUNNING under its lease
    // Its lease runs out and another worker claims the plan, between that read and its write.
    await database.db.updateTable('plans').set({ lease_expires_at: inPast() }).where('id', '=', id).execute();
    expect(await lifecycle.claimNext('w2', LEASE_MS)).toMatchObject({ id, status: PlanStatus.RUNNING });
    expect(await lifecycle.finishByHolder(id, HOLDER, PlanStatus.SUCCEEDED, { outputUri: 'file:///stale' })).toBeNull();
    expect(await lifecycle.finishByHolder(id, HOLDER, PlanStatus.FAILED, { error: 'late' })).toBeNull();
    expect(await lifecycle.renew(id, HOLDER, LEASE_MS)).toBeNull();
    expect(await lifecycle.release(id, HOLDER)).toBeNull();
    const progress = new ProgressStore(database.db);
    expect(await progress.append(id, { stage: PlanStage.TRAINING, progress: 0.9 }, undefined, HOLDER)).toBeNull();
    expect(await plans.get(id)).toMatchObject({ status: PlanStatus.RUNNING, outputUri: null, error: null, progress: 0 });
    expect(await progress.append(id, { stage: PlanStage.TRAINING, progress: 0.5 }, undefined, 'w2')).toMatchObject({ event: { seq: 1 }, plan: { progress: 0.5 } });
    expect(await plans.holder(id)).toBe('w2');
    // the new holder finishes it
    expect(await lifecycle.finishByHolder(id, 'w2', PlanStatus.SUCCEEDED, { outputUri: 'file:///out' })).toMatchObject({ status: PlanStatus.SUCCEEDED, outputUri: 'file:///out', progress: 1 });
  });

  it('keeps a plan with its holder when the lease ran out but nobody claimed it: a late heartbeat renews it', async () => {
    const id = await planIn(PlanStatus.RUNNING);
    await database.db.updateTable('plans').set({ lease_expires_at: inPast() }).where('id', '=', id).execute();
    expect(await lifecycle.renew(id, 'w2', LEASE_MS)).toBeNull(); // still not another worker's
    expect(await lifecycle.renew(id, HOLDER, LEASE_MS)).toMatchObject({ id, status: PlanStatus.RUNNING });
    expect(await lifecycle.claimNext('w2', LEASE_MS)).toBeNull(); // renewed: held again
    expect(await lifecycle.finishByHolder(id, HOLDER, PlanStatus.SUCCEEDED)).toMatchObject({ id, status: PlanStatus.SUCCEEDED });
  });

  it('claims, renews, releases and cancels', async () => {
    const id = await planIn(PlanStatus.QUEUED);
    const claimed = await lifecycle.claimNext(HOLDER, 1_000);
    expect(claimed).toMatchObject({ id, status: PlanStatus.RUNNING });
    expect(claimed!.startedAt).toBeInstanceOf(Date);
    expect(await lifecycle.claimNext('w2', LEASE_MS)).toBeNull(); // held under a live lease
    const leaseBefore = (await database.db.selectFrom('plans').select('lease_expires_at').where('id', '=', id).executeTakeFirstOrThrow()).lease_expires_at!;
    expect(await lifecycle.renew(id, HOLDER, LEASE_MS)).toMatchObject({ id, status: PlanStatus.RUNNING });
    const leaseAfter = (await database.db.selectFrom('plans').select('lease_expires_at').where('id', '=', id).executeTakeFirstOrThrow()).lease_expires_at!;
    expect(leaseAfter > leaseBefore).toBe(true);
    expect(await lifecycle.renew(id, 'w2', LEASE_MS)).toBeNull(); // not its lease
    expect(await lifecycle.release(id, HOLDER)).toMatchObject({ id, status: PlanStatus.QUEUED });
    expect(await plans.holder(id)).toBeNull();
    expect(await lifecycle.claimNext('w2', LEASE_MS)).toMatchObject({ id, status: PlanStatus.RUNNING });
    expect(await lifecycle.cancel(id, [PlanStatus.QUEUED])).toBeNull(); // running, not queued
    expect(await lifecycle.cancel(id)).toMatchObject({ id, status: PlanStatus.CANCELLED });
    expect(await plans.holder(id)).toBeNull();
    expect(await lifecycle.cancel(id)).toBeNull();
    expect(await lifecycle.cancel('missing')).toBeNull();
  });

  it('answers CONFLICT to workers.complete and workers.fail from a worker whose lease was taken over between its holder check and its write, and stores none of its results', async () => {
    const services = createServices(database.db, { bus: inProcessPlanEventBus() });
    const id = await planIn(PlanStatus.RUNNING);
    // The worker service's holder check (a read) answers HOLDER; right after it, where a slow request or
    // a paused process would let it happen, the lease runs out and another worker claims the plan.
    let takeOver = true;
    class TakenOverAfterRead extends PlanStore {
      override async holder(planId: string): Promise<string | null> {
        const holder = await super.holder(planId);
        if (takeOver) {
          takeOver = false;
          await database.db.updateTable('plans').set({ lease_expires_at: inPast() }).where('id', '=', planId).execute();
          expect(await lifecycle.claimNext('w2', LEASE_MS)).toMatchObject({ id: planId });
        }
        return holder;
      }
    }
    const workers = new WorkerService(lifecycle, new TakenOverAfterRead(database.db), services.plans, services.progress, services.models, services.importance, services.stability);
    await expect(completeAsWorker({ ...services, workers }, id, { outputUri: 'file:///stale' }, HOLDER)).rejects.toMatchObject({ code: 'CONFLICT' });
    expect(await plans.get(id)).toMatchObject({ status: PlanStatus.RUNNING, outputUri: null });
    expect(await services.stability.forPlan(id)).toBeNull(); // the refused finish stored no report
    takeOver = true;
    await database.db.updateTable('plans').set({ worker_id: HOLDER, lease_expires_at: inFuture() }).where('id', '=', id).execute();
    await expect(failAsWorker({ ...services, workers }, id, 'late', HOLDER)).rejects.toMatchObject({ code: 'CONFLICT' });
    expect(await plans.get(id)).toMatchObject({ status: PlanStatus.RUNNING, error: null });
    // the worker that holds it now finishes it, with its report
    expect(await completeAsWorker(services, id, { outputUri: 'file:///out' }, 'w2')).toMatchObject({ status: PlanStatus.SUCCEEDED, outputUri: 'file:///out' });
    expect(await services.stability.forPlan(id)).not.toBeNull();
  });
});
