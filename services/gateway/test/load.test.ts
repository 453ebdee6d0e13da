/**
 * The gateway under load (issue 18), feature by feature through the real protocols:
 * - nested fields are loaded in batches per request: `models { plans { … } }` costs the same number of
 *   queries for two models as for four (counted with the database's query hook);
 * - plans read by id are cached, yet a change is seen at once by the replica that made it and, through
 *   PostgreSQL NOTIFY, by another replica well within a second (with a cache time far longer than that);
 * - a subscriber that stops reading is disconnected once its bounded buffer overflows (4413), and
 *   resuming with `afterSeq` gives it every later event exactly once, in order.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { PlanStage } from '../src/plans/plan.type.js';
import { limitsFromEnv } from '../src/limits/limits.settings.js';
import { CLOSE_SLOW_SUBSCRIBER } from '../src/limits/ws-guards.js';
import type { RunningGateway } from '../src/server.js';
import { claimAsWorker } from './fixtures/claim.js';
import { data, useGateways } from './fixtures/gateway.js';
import { createTestSchema, hasPostgres, type TestSchema } from './fixtures/postgres.js';
import { runWithShared, STORIES_URI, TINYSTORIES_URI } from './fixtures/shared.js';
import { connect, subscribe } from './fixtures/subscriptions.js';

const REGISTER = 'mutation ($input: RegisterModelInput!) { registerModel(input: $input) { id } }';
const CREATE = 'mutation ($input: CreatePruningPlanInput!) { createPruningPlan(input: $input) { id } }';
const NESTED = `{ models { id importance { blockSize } plans { id status model { id name } events { seq } profiles { blockSize } importance { blockSize } stability { stability } } } }`;

async function modelWithPlans(url: string, plans: number): Promise<string> {
  const { registerModel } = await data(url, REGISTER, { input: { name: 'stories', source: STORIES_URI } });
  for (let i = 0; i < plans; i++) await data(url, CREATE, { input: { modelId: registerModel.id, layersToPrune: 1, calibration: { source: TINYSTORIES_URI } } });
  return registerModel.id;
}

describe.runIf(runWithShared)('batched loads of nested fields (DataLoader)', () => {
  const gateways = useGateways();

  it('answers models { plans { model events profiles importance stability } } with as many queries for four models as for two', async () => {
    const queries: string[] = [];
    let counting = false;
    const gateway = await gateways.start({ onQuery: (sql) => counting && queries.push(sql) });
    const count = async () => {
      await data(gateway.url, NESTED); // the token is looked up (and cached) here
      queries.length = 0;
      counting = true;
      const answer = await data(gateway.url, NESTED);
      counting = false;
      return { queries: queries.length, answer };
    };
    await modelWithPlans(gateway.url, 2);
    await modelWithPlans(gateway.url, 2);
    const two = await count();
    expect(two.answer.models).toHaveLength(2);
    await modelWithPlans(gateway.url, 3);
    await modelWithPlans(gateway.url, 3);
    const four = await count();
    expect(four.answer.models).toHaveLength(4);
    expect(four.answer.models.flatMap((m: { plans: unknown[] }) => m.plans)).toHaveLength(10);
    for (const model of four.answer.models) for (const plan of model.plans) expect(plan.model.id).toBe(model.id);
    // models, importance of models, plans of models, their models, events, profiles (importance reuses them), stability
    expect(two.queries).toBeLessThanOrEqual(7);
    expect(four.queries).toBe(two.queries);
  });
});

describe.runIf(runWithShared && hasPostgres('plan cache across replicas'))('the plan cache across two replicas on one PostgreSQL', () => {
  const gateways = useGateways();
  let schema: TestSchema;
  let first: RunningGateway;
  let second: RunningGateway;
  let planId: string;
  const PLAN = 'query ($id: ID!) { plan(id: $id) { id status stage progress } }';
  const CANCEL = 'mutation ($id: ID!) { cancelPlan(id: $id) { status } }';

  beforeEach(async () => {
    schema = await createTestSchema();
    // a cache time far beyond the test: whatever is seen changing here is the bus's doing
    first = await gateways.start({ databaseUrl: schema.url, planCacheMs: 600_000 });
    second = await gateways.start({ databaseUrl: schema.url, planCacheMs: 600_000 });
    const modelId = await modelWithPlans(first.url, 0);
    planId = (await data(first.url, CREATE, { input: { modelId, layersToPrune: 1, calibration: { source: TINYSTORIES_URI } } })).createPruningPlan.id;
  });
  afterEach(async () => {
    await first.close();
    await second.close();
    await schema.drop();
  });

  const statusOn = async (gateway: RunningGateway) => (await data(gateway.url, PLAN, { id: planId })).plan;

  it('serves repeated reads from the cache, shows the writer its own write at once and the other replica within a second', async () => {
    expect((await statusOn(first)).status).toBe('QUEUED');
    expect((await statusOn(second)).status).toBe('QUEUED');
    const hitsBefore = second.services.plans.cacheCounts()!.hits;
    expect((await statusOn(second)).status).toBe('QUEUED');
    expect(second.services.plans.cacheCounts()!.hits).toBeGreaterThan(hitsBefore);

    // read-your-writes: the replica that cancelled answers CANCELLED on the very next read
    expect((await data(first.url, CANCEL, { id: planId })).cancelPlan.status).toBe('CANCELLED');
    expect((await statusOn(first)).status).toBe('CANCELLED');
    // the other replica forgets its copy when the NOTIFY arrives
    const started = performance.now();
    while ((await statusOn(second)).status !== 'CANCELLED') {
      expect(performance.now() - started).toBeLessThan(1_000);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  });

  it('sees progress written through the other replica (stage and progress) within a second', async () => {
    await statusOn(second); // cached
    await claimAsWorker(first.services, planId);
    await first.services.progress.appendProgress(planId, { stage: PlanStage.TRAINING, progress: 0.5, step: 1 });
    const started = performance.now();
    for (;;) {
      const plan = await statusOn(second);
      if (plan.status === 'RUNNING' && plan.progress === 0.5 && plan.stage === 'TRAINING') break;
      expect(performance.now() - started).toBeLessThan(1_000);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  });
});

describe.runIf(runWithShared)('a subscriber that stops reading', () => {
  const gateways = useGateways();

  it('is disconnected once its bounded buffer overflows (4413), and resumes with afterSeq without a gap or a duplicate', async () => {
    const limits = { ...limitsFromEnv({}), maxBufferedEvents: 4 };
    const gateway = await gateways.start({ limits });
    const modelId = await modelWithPlans(gateway.url, 0);
    const planId = (await data(gateway.url, CREATE, { input: { modelId, layersToPrune: 1, calibration: { source: TINYSTORIES_URI } } })).createPruningPlan.id;
    await claimAsWorker(gateway.services, planId);
    const bulk = 'x'.repeat(64 * 1024); // big events fill the socket's buffers quickly
    let appended = 0;
    const append = async () => {
      appended++;
      await gateway.services.progress.appendProgress(planId, { stage: PlanStage.TRAINING, progress: Math.min(1, appended / 10_000), step: appended, message: bulk });
    };

    // a raw graphql-ws client, so that the test can stop reading from its TCP socket
    const socket = new WebSocket(gateway.wsUrl, 'graphql-transport-ws');
    const seen: number[] = [];
    const closed = new Promise<{ code: number; reason: string }>((resolve) => socket.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    socket.on('message', (raw) => {
      const message = JSON.parse(raw.toString());
      if (message.type === 'connection_ack') {
        socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: 'subscription ($planId: ID!) { planProgress(planId: $planId) { seq message } }', variables: { planId } } }));
      }
      if (message.type === 'next') seen.push(message.payload.data.planProgress.seq);
    });
    await new Promise((resolve) => socket.once('open', resolve));
    socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${gateway.adminToken}` } }));
    await append();
    while (seen.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));

    // stop reading: the kernel's buffers fill, the server's writes wait, its queue grows past 4
    const tcp = (socket as unknown as { _socket: import('node:net').Socket })._socket;
    tcp.pause();
    while (gateway.services.progress.streams.slowDisconnects === 0) {
      expect(appended).toBeLessThan(2_000);
      await append();
    }
    tcp.resume();
    const close = await closed;
    expect(close.code).toBe(CLOSE_SLOW_SUBSCRIBER);
    expect(close.reason).toMatch(/^SLOW_SUBSCRIBER: resume planProgress with afterSeq=\d+$/);
    const lastSeen = seen.at(-1)!;
    expect(seen).toEqual(Array.from({ length: seen.length }, (_, i) => i + 1));
    expect(lastSeen).toBeLessThan(appended);
    expect(gateway.services.progress.streams.open).toBe(0);

    // resume where it stopped: every later event exactly once, in order, then live ones too
    const client = connect(gateway.wsUrl);
    try {
      const resumed = subscribe(client, 'subscription ($planId: ID!, $afterSeq: Int) { planProgress(planId: $planId, afterSeq: $afterSeq) { seq } }', { planId, afterSeq: lastSeen }, (d) => d.planProgress.seq as number);
      await resumed.waitFor(appended - lastSeen);
      await append();
      const all = await resumed.waitFor(appended - lastSeen);
      expect(all).toEqual(Array.from({ length: appended - lastSeen }, (_, i) => lastSeen + 1 + i));
      const metrics = await (await fetch(gateway.url.replace('/graphql', '/metrics'))).text();
      expect(metrics).toMatch(/streamline_slow_subscribers_disconnected_total 1/);
      expect(metrics).toMatch(/streamline_subscriptions\{kind="planProgress"\} 1/);
      expect(metrics).toMatch(/streamline_cache_requests_total\{cache="token",result="hit"\} [1-9]/);
      expect(metrics).toMatch(/streamline_cache_hit_ratio\{cache="plan"\} 0?\.?\d/);
    } finally {
      await client.dispose();
    }
  });
});
