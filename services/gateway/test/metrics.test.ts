/**
 * Prometheus metrics at /metrics: plans by status, queue depth and workers read from the store when
 * scraped (SQLite and PostgreSQL), request latency by operation type, a registry per gateway.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ModelStore } from '../src/models/model.store.js';
import { PlanStore } from '../src/plans/plan.store.js';
import type { GatewayOptions, RunningGateway } from '../src/server.js';
import { PlanLifecycle } from '../src/plans/plan.lifecycle.js';
import { completeAsWorker } from './fixtures/claim.js';
import { data, failure, useGateways } from './fixtures/gateway.js';
import { createTestSchema, ifPostgres, type TestSchema } from './fixtures/postgres.js';
import { STORED_MODEL, storedPlanFor } from './fixtures/stored-model.js';

const gateways = useGateways();

async function scrape(gateway: RunningGateway): Promise<string> {
  const response = await fetch(gateway.url.replace('/graphql', '/metrics'));
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
  return response.text();
}

/** The value of one sample, e.g. sample(text, 'streamline_plans', { status: 'QUEUED' }). */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = match[2] ? match[2].split(',') : [];
    if (wanted.every((label) => have.includes(label)) && have.length === wanted.length) return Number(match[3]);
  }
  throw new Error(`no sample ${name}${JSON.stringify(labels)} in\n${text}`);
}

/** A model and plans straight through the stores: the metrics only read the tables. */
async function seed(gateway: RunningGateway, plans: number): Promise<string[]> {
  const model = await new ModelStore(gateway.database.db).insert(STORED_MODEL);
  const store = new PlanStore(gateway.database.db);
  const ids: string[] = [];
  for (let i = 0; i < plans; i++) {
    const plan = await store.insert(storedPlanFor(model.id, { layersToPrune: 1, replacement: 'NONE' }));
    ids.push(plan.id);
  }
  return ids;
}

const schemas: TestSchema[] = [];
afterEach(async () => {
  for (const schema of schemas.splice(0)) await schema.drop();
});

const backends: { name: string; storage: () => Promise<GatewayOptions> }[] = [
  { name: 'SQLite', storage: async () => ({}) },
  ...ifPostgres(`metrics on PostgreSQL`, {
    name: 'PostgreSQL',
    async storage() {
      const schema = await createTestSchema();
      schemas.push(schema);
      return { databaseUrl: schema.url };
    },
  }),
];

describe.each(backends)('metrics on $name', (backend) => {
  it('counts plans by status, the queue and the workers holding a live lease, as they change', async () => {
    const gateway = await gateways.start({ ...(await backend.storage()) });
    let text = await scrape(gateway);
    for (const status of ['QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED']) expect(sample(text, 'streamline_plans', { status })).toBe(0);
    expect(sample(text, 'streamline_queue_depth')).toBe(0);
    expect(sample(text, 'streamline_workers')).toBe(0);

    const [first, second, third] = await seed(gateway, 3);
    text = await scrape(gateway);
    expect(sample(text, 'streamline_plans', { status: 'QUEUED' })).toBe(3);
    expect(sample(text, 'streamline_queue_depth')).toBe(3);

    // two workers lease a plan each (the leases the worker API's claimPlan takes); one plan is cancelled
    const leases = new PlanLifecycle(gateway.database.db);
    const claimed = [(await leases.claimNext('w1', 60_000))?.id, (await leases.claimNext('w2', 60_000))?.id];
    expect(claimed).toEqual([first, second]);
    await gateway.services.plans.cancel(third);
    text = await scrape(gateway);
    expect(sample(text, 'streamline_plans', { status: 'RUNNING' })).toBe(2);
    expect(sample(text, 'streamline_plans', { status: 'CANCELLED' })).toBe(1);
    expect(sample(text, 'streamline_plans', { status: 'QUEUED' })).toBe(0);
    expect(sample(text, 'streamline_queue_depth')).toBe(0);
    expect(sample(text, 'streamline_workers')).toBe(2);

    // a lease that has run out holds no worker; a finished plan neither
    await gateway.database.db.updateTable('plans').set({ lease_expires_at: new Date(Date.now() - 1000).toISOString() }).where('id', '=', first).execute();
    await completeAsWorker(gateway.services, second, {}, 'w2');
    text = await scrape(gateway);
    expect(sample(text, 'streamline_workers')).toBe(0);
    expect(sample(text, 'streamline_plans', { status: 'SUCCEEDED' })).toBe(1);
  });
});

describe('metrics', () => {
  it('counts a worker that asks for a plan while none is queued (it holds no lease) as connected, for the lease time', async () => {
    const gateway = await gateways.start({ leaseMs: 200 });
    expect(sample(await scrape(gateway), 'streamline_workers')).toBe(0);
    expect(await gateway.services.workers.claim('idle-worker')).toBeNull();
    expect(sample(await scrape(gateway), 'streamline_workers')).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(sample(await scrape(gateway), 'streamline_workers')).toBe(0);
  });

  it('times GraphQL HTTP requests by operation type', async () => {
    const gateway = await gateways.start();
    const count = (text: string, operation: string) => {
      try {
        return sample(text, 'streamline_request_duration_seconds_count', { operation });
      } catch {
        return 0;
      }
    };
    const before = await scrape(gateway);
    for (let i = 0; i < 3; i++) await data(gateway.url, '{ models { id } }');
    await data(gateway.url, 'mutation { createTenant(name: "t") { id } }');
    await failure(gateway.url, '{ models { id }'); // does not parse
    const after = await scrape(gateway);
    expect(count(after, 'query') - count(before, 'query')).toBe(3);
    expect(count(after, 'mutation') - count(before, 'mutation')).toBe(1);
    expect(count(after, 'unknown') - count(before, 'unknown')).toBe(1);
    expect(sample(after, 'streamline_request_duration_seconds_sum', { operation: 'query' })).toBeGreaterThan(0);
    expect(sample(after, 'streamline_request_duration_seconds_bucket', { operation: 'query', le: '+Inf' })).toBe(3);
  });

  it('keeps a registry per gateway, so two in one process report their own numbers', async () => {
    const one = await gateways.start();
    const two = await gateways.start();
    await seed(one, 2);
    await data(two.url, '{ plans { id } }');
    const [a, b] = [await scrape(one), await scrape(two)];
    expect(sample(a, 'streamline_queue_depth')).toBe(2);
    expect(sample(b, 'streamline_queue_depth')).toBe(0);
    expect(sample(b, 'streamline_request_duration_seconds_count', { operation: 'query' })).toBe(1);
    expect(() => sample(a, 'streamline_request_duration_seconds_count', { operation: 'query' })).toThrow();
  });

  it('counts local worker processes while they are alive', async () => {
    const gateway = await gateways.start({ workers: 2 });
    expect(sample(await scrape(gateway), 'streamline_workers')).toBe(2);
    const [worker] = gateway.workers;
    const exited = new Promise((resolve) => worker.once('exit', resolve));
    worker.kill('SIGKILL');
    await exited;
    expect(sample(await scrape(gateway), 'streamline_workers')).toBe(1);
  });
});
