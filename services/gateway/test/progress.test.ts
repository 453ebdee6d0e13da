/**
 * Progress events over a real WebSocket: the test drives the service (as a worker will) while a
 * graphql-ws client is subscribed, and checks replay-then-live delivers every event exactly once.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Client } from 'graphql-ws';
import { PlanStage } from '../src/plans/plan.type.js';
import type { RunningGateway } from '../src/server.js';
import { data, useGateways } from './fixtures/gateway.js';
import { runWithShared, STORIES_URI, TINYSTORIES_URI } from './fixtures/shared.js';
import { connect, subscribe } from './fixtures/subscriptions.js';
import { claimAsWorker, completeAsWorker, failAsWorker } from './fixtures/claim.js';

const PROGRESS = /* GraphQL */ `
  subscription ($planId: ID!, $afterSeq: Int) {
    planProgress(planId: $planId, afterSeq: $afterSeq) { planId seq at stage progress step message }
  }
`;
const UPDATED = 'subscription ($planId: ID!) { planUpdated(planId: $planId) { id status stage progress } }';
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe.skipIf(!runWithShared)('plan progress', () => {
  const gateways = useGateways();
  let gateway: RunningGateway;
  let client: Client;
  let planId: string;
  const append = (step: number) => gateway.services.progress.appendProgress(planId, { stage: PlanStage.TRAINING, progress: step / 1000, step, message: `step ${step}` });

  beforeEach(async () => {
    gateway = await gateways.start();
    client = connect(gateway.wsUrl);
    const { registerModel } = await data(gateway.url, 'mutation ($input: RegisterModelInput!) { registerModel(input: $input) { id } }', { input: { name: 's', source: STORIES_URI } });
    const { createPruningPlan } = await data(gateway.url, 'mutation ($input: CreatePruningPlanInput!) { createPruningPlan(input: $input) { id } }', {
      input: { modelId: registerModel.id, layersToPrune: 2, calibration: { source: TINYSTORIES_URI } },
    });
    planId = createPruningPlan.id;
  });
  afterEach(async () => {
    await client.dispose();
  });

  it('replays the stored events after afterSeq, then streams live ones, and completes when the plan ends', async () => {
    await claimAsWorker(gateway.services, planId);
    for (const step of range(1, 3)) await append(step);
    const stream = subscribe(client, PROGRESS, { planId, afterSeq: 1 }, (d) => d.planProgress);
    expect((await stream.waitFor(2)).map((e) => e.seq)).toEqual([2, 3]);
    for (const step of range(4, 6)) await append(step);
    await stream.waitFor(5);
    await completeAsWorker(gateway.services, planId);
    const events = await stream.completed;
    expect(events.map((e) => e.seq)).toEqual([2, 3, 4, 5, 6]);
    expect(events[0]).toMatchObject({ planId, stage: 'TRAINING', progress: 0.002, step: 2, message: 'step 2' });
    expect(Date.parse(events[0].at)).not.toBeNaN();
  });

  it('delivers every event exactly once when events keep arriving while the subscription starts', async () => {
    await claimAsWorker(gateway.services, planId);
    let appended = 0;
    let live = false;
    const first: number[] = [];
    // Appends until every subscriber has seen an event, then 100 more: each one's replay and its live
    // part overlap with the producer.
    const producer = (async () => {
      let extra = 100;
      while (!live || extra-- > 0) {
        await append(++appended);
        // SQLite answers synchronously, so without this the loop would never let socket I/O run
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    while (appended < 50) await new Promise((resolve) => setImmediate(resolve));
    const streams = [0, 10, 40].map((afterSeq, i) => ({
      afterSeq,
      stream: subscribe(client, PROGRESS, { planId, afterSeq }, (d) => {
        first[i] ??= appended;
        live = first.filter((n) => n !== undefined).length === 3;
        return d.planProgress.seq as number;
      }),
    }));
    await producer;
    await completeAsWorker(gateway.services, planId);
    for (const { afterSeq, stream } of streams) expect(await stream.completed).toEqual(range(afterSeq + 1, appended));
    expect(appended).toBeGreaterThanOrEqual(150);
  });

  it('replays a finished plan’s events and completes at once', async () => {
    await claimAsWorker(gateway.services, planId);
    for (const step of range(1, 4)) await append(step);
    await failAsWorker(gateway.services, planId, 'out of memory');
    const stream = subscribe(client, PROGRESS, { planId }, (d) => d.planProgress.seq);
    expect(await stream.completed).toEqual([1, 2, 3, 4]);
    await expect(append(5)).rejects.toMatchObject({ code: 'CONFLICT' });
  });

  it('completes a live stream when the plan is cancelled', async () => {
    const stream = subscribe(client, PROGRESS, { planId }, (d) => d.planProgress.seq);
    await append(1);
    await stream.waitFor(1);
    await data(gateway.url, 'mutation ($id: ID!) { cancelPlan(id: $id) { status } }', { id: planId });
    expect(await stream.completed).toEqual([1]);
  });

  it('answers an unknown plan with NOT_FOUND and a negative afterSeq with BAD_USER_INPUT', async () => {
    const missing = subscribe(client, PROGRESS, { planId: 'no-such-plan' }, (d) => d);
    await expect(missing.completed).rejects.toThrow(/NOT_FOUND.*|.*no-such-plan/);
    const negative = subscribe(client, PROGRESS, { planId, afterSeq: -1 }, (d) => d);
    await expect(negative.completed).rejects.toThrow(/afterSeq.*BAD_USER_INPUT|BAD_USER_INPUT.*afterSeq/s);
  });

  it('pushes plan changes with planUpdated and completes after the final status', async () => {
    const updates = subscribe(client, UPDATED, { planId }, (d) => d.planUpdated);
    // Whether the subscription is already live when the plan starts is a race; the final status arrives
    // either way (live, or as the current state of an already finished plan).
    await claimAsWorker(gateway.services, planId);
    await append(1);
    await data(gateway.url, 'mutation ($id: ID!) { cancelPlan(id: $id) { status } }', { id: planId });
    const seen = await updates.completed;
    expect(seen.at(-1)).toMatchObject({ id: planId, status: 'CANCELLED' });
    expect(seen.map((p) => p.status)).toEqual(expect.arrayContaining(['CANCELLED']));

    const finished = subscribe(client, UPDATED, { planId }, (d) => d.planUpdated.status);
    expect(await finished.completed).toEqual(['CANCELLED']);
  });

  it('stops a subscription the client leaves, and the gateway still closes promptly', async () => {
    const stream = subscribe(client, PROGRESS, { planId }, (d) => d.planProgress.seq);
    await append(1);
    await stream.waitFor(1);
    stream.dispose();
    await append(2);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(stream.received).toEqual([1]);
  });
});
