/**
 * Gateway benchmark, on one machine over loopback:
 *  1. `plan(id)` queries per second and latency percentiles at concurrency 64 (HTTP, SQLite store);
 *  2. the delivery lag of progress events to 1,000 concurrent `planProgress` subscribers (graphql-ws):
 *     time from a worker's `reportProgress` call to each subscriber receiving the event;
 *  3. the same across two gateway replicas on one PostgreSQL database (BENCH_DATABASE_URL, default the
 *     local server's `test` database; skipped with a message when it cannot be reached): events posted
 *     through replica A, the 1,000 subscribers on replica B (LISTEN/NOTIFY).
 * Bounded in count and time; stops by itself.
 *
 *   npm run bench -w services/gateway        (from the repository root)
 */
import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { createClient, type Client } from 'graphql-ws';
import pg from 'pg';
import { provideTestPostgres } from '@streamline/testing/postgres-server';
import WebSocket from 'ws';
import { startGateway, type RunningGateway } from '../src/server.js';

const CONCURRENCY = 64;
const QUERY_SECONDS = 10;
const SUBSCRIBERS = 1000;
const EVENTS = 20;

const shared = fileURLToPath(new URL('../../../../shared/', import.meta.url));
const dataDir = mkdtempSync(join(tmpdir(), 'streamline-bench-gateway-'));
const ADMIN_TOKEN = `bench-admin-${randomBytes(8).toString('hex')}`;
/** Tenants may name file:// sources from the shared data only (STREAMLINE_FILE_ROOTS). */
const sources = { fileRoots: [shared], s3Sources: [], hf: false };
const gateway = await startGateway({ port: 0, dataDir, workers: 0, log: () => {}, workerToken: 'bench-worker', adminToken: ADMIN_TOKEN, sources });
const clientHeaders: Record<string, string> = { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_TOKEN}` };
const workerHeaders = { 'content-type': 'application/json', authorization: 'Bearer bench-worker' };

async function gql(query: string, variables: Record<string, unknown> = {}, headers = clientHeaders, url = gateway.url) {
  const response = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
  const body = (await response.json()) as { data?: any; errors?: unknown[] };
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

async function createPlan(url: string): Promise<string> {
  const model = await gql(
    `mutation($source: String!, $tokenizer: String) { registerModel(input: {name: "bench", source: $source, tokenizer: $tokenizer}) { id } }`,
    { source: pathToFileURL(join(shared, 'models/stories260K/stories260K.bin')).href, tokenizer: pathToFileURL(join(shared, 'models/stories260K/tok512.bin')).href },
    clientHeaders,
    url,
  );
  const { createPruningPlan } = await gql(
    `mutation($input: CreatePruningPlanInput!) { createPruningPlan(input: $input) { id } }`,
    { input: { modelId: model.registerModel.id, layersToPrune: 2, calibration: { source: pathToFileURL(join(shared, 'data/text/tinystories_val_excerpt.txt')).href } } },
    clientHeaders,
    url,
  );
  return createPruningPlan.id;
}

/** A worker claims the plan through `poster` and reports EVENTS events; SUBSCRIBERS watch it on `watcher`. */
async function measureDelivery(poster: RunningGateway, watcher: RunningGateway, planId: string, label: string): Promise<string> {
  await gql('mutation { claimPlan(workerId: "bench") { planId } }', {}, workerHeaders, poster.url);
  const sentAt = new Map<number, number>();
  const lags: number[] = [];
  let received = 0;
  const clients: Client[] = [];
  let subscribed = 0;
  await new Promise<void>((ready) => {
    for (let i = 0; i < SUBSCRIBERS; i++) {
      const client = createClient({ url: watcher.wsUrl, webSocketImpl: WebSocket, retryAttempts: 0, connectionParams: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      clients.push(client);
      client.subscribe(
        { query: 'subscription($planId: ID!) { planProgress(planId: $planId) { seq } }', variables: { planId } },
        {
          next: (result) => {
            const seq = (result.data as { planProgress: { seq: number } }).planProgress.seq;
            lags.push(performance.now() - sentAt.get(seq)!);
            received++;
          },
          error: (error) => console.error('subscription error', error),
          complete: () => {},
        },
      );
      client.on('connected', () => {
        if (++subscribed === SUBSCRIBERS) ready();
      });
    }
  });
  await new Promise((r) => setTimeout(r, 500)); // let every subscription reach the server
  for (let seq = 1; seq <= EVENTS; seq++) {
    sentAt.set(seq, performance.now());
    await gql('mutation($events: [WorkerProgressInput!]!) { reportProgress(planId: "' + planId + '", workerId: "bench", events: $events) }', { events: [{ stage: 'TRAINING', progress: seq / 100, step: seq }] }, workerHeaders, poster.url);
    await new Promise((r) => setTimeout(r, 100));
  }
  const waitUntil = performance.now() + 10_000;
  while (received < SUBSCRIBERS * EVENTS && performance.now() < waitUntil) await new Promise((r) => setTimeout(r, 50));
  lags.sort((a, b) => a - b);
  await Promise.all(clients.map((c) => c.dispose()));
  return `${label}, ${EVENTS} events: ${received}/${SUBSCRIBERS * EVENTS} delivered; lag p50 ${percentile(lags, 50).toFixed(1)} ms, p95 ${percentile(lags, 95).toFixed(1)} ms, p99 ${percentile(lags, 99).toFixed(1)} ms, max ${lags.at(-1)!.toFixed(1)} ms`;
}

async function measureAcrossReplicas(): Promise<void> {
  // BENCH_DATABASE_URL when it answers, else a throwaway server from the installed PostgreSQL binaries.
  const server = await provideTestPostgres({ PATH: process.env.PATH, TEST_DATABASE_URL: process.env.BENCH_DATABASE_URL });
  if (server.url === null) {
    console.log(`across replicas: skipped, ${server.reason.replace('TEST_DATABASE_URL', 'BENCH_DATABASE_URL')}`);
    return;
  }
  const url = server.url;
  const schema = `streamline_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(`create schema "${schema}"`);
  const scoped = new URL(url);
  scoped.searchParams.set('options', `-c search_path=${schema}`);
  const options = { port: 0, workers: 0, log: () => {}, workerToken: 'bench-worker', adminToken: ADMIN_TOKEN, databaseUrl: scoped.toString(), sources };
  const replicas: RunningGateway[] = [];
  try {
    replicas.push(await startGateway(options), await startGateway(options));
    const [a, b] = replicas;
    const planId = await createPlan(a.url);
    console.log(await measureDelivery(a, b, planId, `across replicas on PostgreSQL (posted to A, ${SUBSCRIBERS} subscribers on B)`));
  } finally {
    for (const replica of replicas) await replica.close();
    await admin.query(`drop schema if exists "${schema}" cascade`);
    await admin.end();
    await server.stop();
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

try {
  const plan = { id: await createPlan(gateway.url) };

  // 1. plan(id) at concurrency 64.
  const latencies: number[] = [];
  const deadline = performance.now() + QUERY_SECONDS * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < deadline) {
        const t = performance.now();
        await gql('query($id: ID!) { plan(id: $id) { id status stage progress layersToPrune replacement createdAt } }', { id: plan.id });
        latencies.push(performance.now() - t);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  console.log(`plan(id) at concurrency ${CONCURRENCY} for ${QUERY_SECONDS} s: ${Math.round(latencies.length / seconds)} queries/s; latency p50 ${percentile(latencies, 50).toFixed(1)} ms, p95 ${percentile(latencies, 95).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms`);

  // 2. Progress delivery lag to 1,000 subscribers. A worker claims the plan and reports events.
  console.log(await measureDelivery(gateway, gateway, plan.id, `progress delivery to ${SUBSCRIBERS} subscribers`));

  // 3. The same across two replicas on PostgreSQL.
  await measureAcrossReplicas();
} finally {
  await gateway.close();
  rmSync(dataDir, { recursive: true, force: true });
}
