/**
 * Gateway benchmark, on one machine over loopback:
 *  1. `plan(id)` queries per second and latency percentiles at concurrency 64 (HTTP, SQLite store);
 *  2. the delivery lag of progress events to 1,000 concurrent `planProgress` subscribers (graphql-ws):
 *     time from a worker's `reportProgress` call to each subscriber receiving the event.
 * Bounded in count and time; stops by itself.
 *
 *   npm run bench -w services/gateway        (from the repository root)
 */
import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { startGateway } from '../src/server.js';

const CONCURRENCY = 64;
const QUERY_SECONDS = 10;
const SUBSCRIBERS = 1000;
const EVENTS = 20;

const shared = fileURLToPath(new URL('../../../../shared/', import.meta.url));
const dataDir = mkdtempSync(join(tmpdir(), 'streamline-bench-gateway-'));
const gateway = await startGateway({ port: 0, dataDir, workers: 0, log: () => {}, workerToken: 'bench-worker' });
const adminToken = (gateway as { adminToken?: string }).adminToken;
const clientHeaders: Record<string, string> = { 'content-type': 'application/json', ...(adminToken ? { authorization: `Bearer ${adminToken}` } : {}) };

async function gql(query: string, variables: Record<string, unknown> = {}, headers = clientHeaders) {
  const response = await fetch(gateway.url, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
  const body = (await response.json()) as { data?: any; errors?: unknown[] };
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

try {
  const model = await gql(`mutation($source: String!, $tokenizer: String) { registerModel(input: {name: "bench", source: $source, tokenizer: $tokenizer}) { id } }`, {
    source: pathToFileURL(join(shared, 'models/stories260K/stories260K.bin')).href,
    tokenizer: pathToFileURL(join(shared, 'models/stories260K/tok512.bin')).href,
  });
  const { createPruningPlan: plan } = await gql(`mutation($input: CreatePruningPlanInput!) { createPruningPlan(input: $input) { id } }`, {
    input: { modelId: model.registerModel.id, layersToPrune: 2, calibration: { source: pathToFileURL(join(shared, 'data/text/tinystories_val_excerpt.txt')).href } },
  });

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
  const workerHeaders = { 'content-type': 'application/json', authorization: 'Bearer bench-worker' };
  await gql('mutation { claimPlan(workerId: "bench") { planId } }', {}, workerHeaders);
  const sentAt = new Map<number, number>();
  const lags: number[] = [];
  let received = 0;
  const clients: Client[] = [];
  let subscribed = 0;
  await new Promise<void>((ready) => {
    for (let i = 0; i < SUBSCRIBERS; i++) {
      const client = createClient({ url: gateway.wsUrl, webSocketImpl: WebSocket, retryAttempts: 0, connectionParams: adminToken ? { authorization: `Bearer ${adminToken}` } : {} });
      clients.push(client);
      client.subscribe(
        { query: 'subscription($planId: ID!) { planProgress(planId: $planId) { seq } }', variables: { planId: plan.id } },
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
    await gql('mutation($events: [WorkerProgressInput!]!) { reportProgress(planId: "' + plan.id + '", workerId: "bench", events: $events) }', { events: [{ stage: 'TRAINING', progress: seq / 100, step: seq }] }, workerHeaders);
    await new Promise((r) => setTimeout(r, 100));
  }
  const waitUntil = performance.now() + 10_000;
  while (received < SUBSCRIBERS * EVENTS && performance.now() < waitUntil) await new Promise((r) => setTimeout(r, 50));
  lags.sort((a, b) => a - b);
  console.log(
    `progress delivery to ${SUBSCRIBERS} subscribers, ${EVENTS} events: ${received}/${SUBSCRIBERS * EVENTS} delivered; lag p50 ${percentile(lags, 50).toFixed(1)} ms, p95 ${percentile(lags, 95).toFixed(1)} ms, p99 ${percentile(lags, 99).toFixed(1)} ms, max ${lags.at(-1)!.toFixed(1)} ms`,
  );
  await Promise.all(clients.map((c) => c.dispose()));
} finally {
  await gateway.close();
  rmSync(dataDir, { recursive: true, force: true });
}
