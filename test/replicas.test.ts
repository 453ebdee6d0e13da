// Two gateway processes on one PostgreSQL database, as the Kubernetes Deployment runs them, with a
// loopback TCP proxy standing in for their Service (a new connection goes to the first replica that
// accepts it, as kube-proxy sends traffic only to ready endpoints):
//   - a client subscribed to replica B receives the progress a worker posts through replica A;
//   - replica A is stopped (SIGTERM) mid-plan; the worker's requests reach B through the proxy, and
//     the plan finishes with every progress event and training step, once, in order.
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestSchema, hasPostgres, type TestSchema } from '../services/gateway/test/fixtures/postgres.js';
import { runWithShared, SHARED, STORIES_TOKENIZER_URI, STORIES_URI, TINYSTORIES_URI } from '../services/gateway/test/fixtures/shared.js';
import { connect, subscribe } from '../services/gateway/test/fixtures/subscriptions.js';
import { CREATE, PROGRESS, REGISTER, startWorker, stopProcess, waitForStatus } from '../services/gateway/test/fixtures/workers.js';
import { PROCESS_ADMIN_TOKEN, PROCESS_WORKER_TOKEN, startGatewayProcess, type GatewayProcess } from '../services/gateway/test/fixtures/gateway-process.js';
import { data } from '../services/gateway/test/fixtures/gateway.js';

const ADMIN_TOKEN = PROCESS_ADMIN_TOKEN;
const WORKER_TOKEN = PROCESS_WORKER_TOKEN;

/** A TCP proxy that sends each new connection to the first of `ports` that accepts it. */
async function startServiceProxy(ports: () => number[]): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.pause();
    const tryNext = (candidates: number[]) => {
      const [port, ...rest] = candidates;
      if (port === undefined) return client.destroy();
      const upstream = createConnection({ host: '127.0.0.1', port });
      upstream.once('error', () => tryNext(rest));
      upstream.once('connect', () => {
        sockets.add(upstream);
        upstream.removeAllListeners('error');
        const end = () => {
          client.destroy();
          upstream.destroy();
        };
        upstream.on('error', end).on('close', end);
        client.on('error', end).on('close', end);
        client.pipe(upstream).pipe(client);
        client.resume();
      });
    };
    tryNext(ports());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe.runIf(runWithShared && hasPostgres('two gateway replicas'))('two gateway replicas on one PostgreSQL', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
  });

  it('streams a plan run through replica A to a subscriber on replica B, and the plan survives A being stopped', async () => {
    const schema: TestSchema = await createTestSchema();
    cleanups.push(() => schema.drop());
    const dataDir = mkdtempSync(join(tmpdir(), 'streamline-replicas-'));
    cleanups.push(async () => rmSync(dataDir, { recursive: true, force: true }));

    // Started together, as a Deployment's pods are: migrations and the admin token must not collide.
    const [a, b] = await Promise.all([startGatewayProcess({ DATABASE_URL: schema.url, STREAMLINE_DATA_DIR: join(dataDir, 'a') }), startGatewayProcess({ DATABASE_URL: schema.url, STREAMLINE_DATA_DIR: join(dataDir, 'b') })]);
    cleanups.push(() => stopProcess(a.child), () => stopProcess(b.child));
    const portOf = (gateway: GatewayProcess) => Number(new URL(gateway.url).port);
    const proxy = await startServiceProxy(() => [portOf(a), portOf(b)]);
    cleanups.push(() => proxy.close());
    const serviceUrl = `http://127.0.0.1:${proxy.port}/graphql`;
    const asAdmin = { token: ADMIN_TOKEN };

    const { registerModel } = await data(a.url, REGISTER, { input: { name: 'stories', source: STORIES_URI, tokenizer: STORIES_TOKENIZER_URI } }, asAdmin);
    const { createPruningPlan: plan } = await data(
      a.url,
      CREATE,
      { input: { modelId: registerModel.id, layersToPrune: 2, replacement: 'SWIGLU', calibration: { source: TINYSTORIES_URI, samples: 8, seqLen: 64 }, training: { epochs: 60, batchSize: 4 } } },
      asAdmin,
    );
    const workerLog: string[] = [];
    const worker = startWorker(serviceUrl, WORKER_TOKEN, join(dataDir, 'worker'), 'pod-1', (line) => workerLog.push(line));
    cleanups.push(() => stopProcess(worker));

    const client = connect(b.wsUrl, ADMIN_TOKEN);
    cleanups.push(() => client.dispose());
    const progress = subscribe(client, PROGRESS, { planId: plan.id }, (d) => d.planProgress);
    await progress.until((e) => e.stage === 'TRAINING' && (e.step ?? 0) >= 5);
    expect(await stopProcess(a.child)).toBe(0); // a graceful stop: requests in flight finish first
    const seenWhenStopped = progress.received.length;

    const events = await progress.completed;
    const done = await waitForStatus(b.url, plan.id, ['SUCCEEDED', 'FAILED'], 120_000, asAdmin);
    expect(done.error).toBeNull();
    expect(done.status).toBe('SUCCEEDED');
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    expect(events.length).toBeGreaterThan(seenWhenStopped + 10); // most of the plan ran after A had gone
    const steps = events.filter((e) => e.stage === 'TRAINING' && e.step !== null).map((e) => e.step);
    expect(steps).toEqual(steps.map((_, i) => i + 1));
    expect(steps.at(-1)).toBe(events.find((e) => e.totalSteps !== null).totalSteps);
    expect(workerLog.filter((line) => line.includes('failed'))).toEqual([]);
  });
});
