/**
 * Two gateway replicas on one PostgreSQL database: progress and plan changes made through one reach
 * subscribers of the other (LISTEN/NOTIFY), with no gap or duplicate, also after the LISTEN connection
 * was cut.
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PlanStage } from '../src/plans/plan.type.js';
import type { RunningGateway } from '../src/server.js';
import { data, useGateways } from './fixtures/gateway.js';
import { createTestSchema, hasPostgres, TEST_DATABASE_URL, type TestSchema } from './fixtures/postgres.js';
import { runWithShared, STORIES_URI, TINYSTORIES_URI } from './fixtures/shared.js';
import { connect, subscribe } from './fixtures/subscriptions.js';
import { claimAsWorker, completeAsWorker } from './fixtures/claim.js';

const PROGRESS = 'subscription ($planId: ID!, $afterSeq: Int) { planProgress(planId: $planId, afterSeq: $afterSeq) { seq step } }';
const UPDATED = 'subscription ($planId: ID!) { planUpdated(planId: $planId) { id status } }';
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

async function readyz(gateway: RunningGateway): Promise<number> {
  return (await fetch(gateway.url.replace('/graphql', '/readyz'))).status;
}

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe.runIf(runWithShared && hasPostgres('gateway replicas'))('gateway replicas on one PostgreSQL', () => {
  const gateways = useGateways();
  let schema: TestSchema;
  let first: RunningGateway;
  let second: RunningGateway;
  let planId: string;
  const append = (through: RunningGateway, step: number) => through.services.progress.appendProgress(planId, { stage: PlanStage.TRAINING, progress: step / 100, step });

  beforeEach(async () => {
    schema = await createTestSchema();
    first = await gateways.start({ databaseUrl: schema.url });
    second = await gateways.start({ databaseUrl: schema.url });
    const { registerModel } = await data(first.url, 'mutation ($input: RegisterModelInput!) { registerModel(input: $input) { id } }', { input: { name: 's', source: STORIES_URI } });
    const { createPruningPlan } = await data(first.url, 'mutation ($input: CreatePruningPlanInput!) { createPruningPlan(input: $input) { id } }', {
      input: { modelId: registerModel.id, layersToPrune: 2, calibration: { source: TINYSTORIES_URI } },
    });
    planId = createPruningPlan.id;
    await claimAsWorker(first.services, planId);
  });
  afterEach(async () => {
    await first.close();
    await second.close();
    await schema.drop();
  });

  it('streams progress appended through one replica to subscribers of the other, then completes there', async () => {
    for (const step of range(1, 3)) await append(first, step);
    const client = connect(second.wsUrl);
    try {
      const progress = subscribe(client, PROGRESS, { planId, afterSeq: 1 }, (d) => d.planProgress.seq as number);
      const updates = subscribe(client, UPDATED, { planId }, (d) => d.planUpdated.status as string);
      await progress.waitFor(2); // the replay: seq 2 and 3, so the live part has begun
      for (const step of range(4, 40)) await append(first, step);
      await progress.waitFor(39);
      await completeAsWorker(first.services, planId);
      expect(await progress.completed).toEqual(range(2, 40));
      expect((await updates.completed).at(-1)).toBe('SUCCEEDED');
    } finally {
      await client.dispose();
    }
  });

  it('loses nothing when its LISTEN connection is cut: it reconnects, and the plan that ended meanwhile ends its streams', async () => {
    const client = connect(second.wsUrl);
    const admin = new pg.Client({ connectionString: TEST_DATABASE_URL! });
    await admin.connect();
    try {
      const progress = subscribe(client, PROGRESS, { planId }, (d) => d.planProgress.seq as number);
      await append(first, 1);
      await progress.waitFor(1);
      // Cut both replicas' LISTEN connections (one channel per database and schema).
      const { rows } = await admin.query<{ name: string }>('select current_database() as name');
      const channel = `streamline_plans_${createHash('sha256').update(`${rows[0].name}.${schema.name}`).digest('hex').slice(0, 16)}`;
      const { rowCount } = await admin.query(`select pg_terminate_backend(pid) from pg_stat_activity where query = $1`, [`LISTEN "${channel}"`]);
      expect(rowCount).toBe(2);
      await until(async () => (await readyz(second)) === 503, 'the replica to report the connection down');
      for (const step of range(2, 5)) await append(first, step);
      await completeAsWorker(first.services, planId);
      expect(await progress.completed).toEqual(range(1, 5));
      await until(async () => (await readyz(second)) === 200, 'the replica to reconnect');
    } finally {
      await admin.end();
      await client.dispose();
    }
  });
});
