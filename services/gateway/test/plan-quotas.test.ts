/**
 * Per-tenant plan quotas and the order of claims, in the store, on both databases: the queued limit
 * holds when many inserts race (on two connections with PostgreSQL) (two gateway replicas), claims go round-robin across
 * tenants, and a tenant at its running limit waits while others are served — also when claims race.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ModelStore } from '../src/models/model.store.js';
import { PlanStore, type NewPlan } from '../src/plans/plan.store.js';
import { PlanStatus } from '../src/plans/plan.type.js';
import { openDatabase, type Database } from '../src/store/database.js';
import { PlanLifecycle } from '../src/plans/plan.lifecycle.js';
import { storeBackends } from './fixtures/store-backends.js';
import { STORED_MODEL, storedPlanFor } from './fixtures/stored-model.js';

const planFor = (modelId: string, tenantId: string): NewPlan => ({ ...storedPlanFor(modelId), tenantId });

const backends = storeBackends('plan quotas');

/** Plans are created in order: their created_at differs by at least a millisecond. */
const tick = () => new Promise((resolve) => setTimeout(resolve, 3));

describe.each(backends)('plan quotas and claim order on $name', (backend) => {
  let database: Database;
  // A second connection, as a second gateway replica has — on PostgreSQL. SQLite serves one gateway
  // process through one connection (better-sqlite3 is synchronous: a second connection in the same
  // process would block the event loop on the first one's lock), so there the race is between
  // concurrent requests on that connection.
  let replica: Database;
  let modelId = '';

  beforeAll(async () => {
    const options = await backend.setUp();
    database = await openDatabase(options);
    replica = backend.name === 'PostgreSQL' ? await openDatabase(options) : database;
  });
  afterEach(async () => {
    await database.db.deleteFrom('models').execute(); // cascades to the plans
  });
  afterAll(async () => {
    if (replica !== database) await replica?.close();
    await database?.close();
    await backend.tearDown();
  });

  const freshModel = async () => {
    modelId = (await new ModelStore(database.db).insert(STORED_MODEL)).id;
    return modelId;
  };
  const queue = async (tenant: string, count: number) => {
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      ids.push((await new PlanStore(database.db).insert(planFor(modelId, tenant))).id);
      await tick();
    }
    return ids;
  };

  it('refuses a plan over the queued limit, per tenant, and only queued plans count', async () => {
    const plans = new PlanStore(database.db);
    await freshModel();
    for (let i = 0; i < 3; i++) expect(await plans.insertWithinQuota(planFor(modelId, 'a'), 3)).toHaveProperty('plan');
    expect(await plans.insertWithinQuota(planFor(modelId, 'a'), 3)).toEqual({ refused: { queued: 3 } });
    expect(await plans.countByTenant('a', PlanStatus.QUEUED)).toBe(3);
    expect(await plans.insertWithinQuota(planFor(modelId, 'b'), 3)).toHaveProperty('plan');
    // A plan that leaves the queue frees a place.
    const [first] = await plans.list({ tenantId: 'a' });
    expect(await new PlanLifecycle(database.db).cancel(first.id)).not.toBeNull();
    expect(await plans.insertWithinQuota(planFor(modelId, 'a'), 3)).toHaveProperty('plan');
  });

  it('holds the queued limit when 12 inserts race (on two connections with PostgreSQL)', async () => {
    await freshModel();
    const stores = [new PlanStore(database.db), new PlanStore(replica.db)];
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => stores[i % 2].insertWithinQuota(planFor(modelId, 'racer'), 5)));
    expect(results.filter((r) => 'plan' in r)).toHaveLength(5);
    expect(await stores[0].countByTenant('racer', PlanStatus.QUEUED)).toBe(5);
  });

  it('serves tenants round-robin: with A holding many queued plans, B’s new plan is claimed next', async () => {
    const leases = new PlanLifecycle(database.db);
    await freshModel();
    const a = await queue('a', 6);
    expect((await leases.claimNext('w1', 60_000))!.id).toBe(a[0]);
    await tick();
    const [b] = await queue('b', 1);
    expect((await leases.claimNext('w1', 60_000))!.id).toBe(b);
    await tick();
    expect((await leases.claimNext('w1', 60_000))!.id).toBe(a[1]);
    // B again as soon as it has something queued: its last claim is older than A's.
    await tick();
    const [b2] = await queue('b', 1);
    const [c] = await queue('c', 1); // never claimed: served before both
    expect((await leases.claimNext('w1', 60_000))!.id).toBe(c);
    await tick();
    expect((await leases.claimNext('w1', 60_000))!.id).toBe(b2);
    await tick();
    expect((await leases.claimNext('w1', 60_000))!.id).toBe(a[2]);
  });

  it('skips a tenant at its running limit; its plans wait and are claimed once one ends', async () => {
    const leases = new PlanLifecycle(database.db);
    const plans = new PlanStore(database.db);
    await freshModel();
    const a = await queue('a', 4);
    expect((await leases.claimNext('w1', 60_000, 2))!.id).toBe(a[0]);
    expect((await leases.claimNext('w2', 60_000, 2))!.id).toBe(a[1]);
    expect(await leases.claimNext('w3', 60_000, 2)).toBeNull();
    const [b] = await queue('b', 1);
    expect((await leases.claimNext('w3', 60_000, 2))!.id).toBe(b);
    expect(await leases.finishByHolder(a[0], 'w1', PlanStatus.SUCCEEDED)).not.toBeNull();
    expect((await leases.claimNext('w4', 60_000, 2))!.id).toBe(a[2]);
    // A lease that ran out (its worker died) frees the place too, and that plan is claimable again.
    await database.db.updateTable('plans').set({ lease_expires_at: new Date(Date.now() - 1000).toISOString() }).where('id', '=', a[1]).execute();
    const next = await leases.claimNext('w5', 60_000, 2);
    expect([a[1], a[3]]).toContain(next!.id);
  });

  it('holds the running limit when 8 claims race (on two connections with PostgreSQL)', async () => {
    await freshModel();
    await queue('a', 6);
    const stores = [new PlanLifecycle(database.db), new PlanLifecycle(replica.db)];
    const claimed = await Promise.all(Array.from({ length: 8 }, (_, i) => stores[i % 2].claimNext(`w${i}`, 60_000, 3)));
    expect(claimed.filter((plan) => plan !== null)).toHaveLength(3);
    const running = await database.db.selectFrom('plans').select(['id']).where('status', '=', PlanStatus.RUNNING).execute();
    expect(running).toHaveLength(3);
  });
});
