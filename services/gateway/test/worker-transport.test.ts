/**
 * The engine's GraphQL worker transport against a real gateway, through a loopback HTTP proxy that
 * breaks connections the way networks do: a progress batch whose answer is lost after the gateway
 * stored it is sent again by the transport and stored once.
 */
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { GraphqlWorkerTransport } from '../../engine/src/worker/graphql-transport.js';
import { PLAN_CONTRACT_VERSION } from '../src/engine.js';
import { data, useGateways } from './fixtures/gateway.js';
import { runWithShared, STORIES_URI, TINYSTORIES_URI } from './fixtures/shared.js';

const gateways = useGateways();

/** Forwards to `target`; the first request whose body contains `breakOn` reaches the gateway, but its answer is dropped. */
async function lossyProxy(target: string, breakOn: string): Promise<{ url: string; broken: () => number; close(): Promise<void> }> {
  const upstream = new URL(target);
  let broken = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const forward = request({ host: upstream.hostname, port: upstream.port, path: upstream.pathname, method: req.method, headers: req.headers }, (answer) => {
        const parts: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => parts.push(chunk));
        answer.on('end', () => {
          if (broken === 0 && body.includes(breakOn)) {
            broken++;
            req.socket.destroy(); // the gateway did the work; the worker never hears back
            return;
          }
          res.writeHead(answer.statusCode ?? 502, answer.headers).end(Buffer.concat(parts));
        });
      });
      forward.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`,
    broken: () => broken,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe.runIf(runWithShared)('the worker transport', () => {
  it('sends a progress batch again when its answer is lost, and the gateway stores it once', async () => {
    const gateway = await gateways.start({ workerToken: 'transport-test-token' });
    const { registerModel } = await data(gateway.url, 'mutation ($input: RegisterModelInput!) { registerModel(input: $input) { id } }', { input: { name: 's', source: STORIES_URI } });
    const { createPruningPlan } = await data(gateway.url, 'mutation ($input: CreatePruningPlanInput!) { createPruningPlan(input: $input) { id } }', {
      input: { modelId: registerModel.id, layersToPrune: 2, calibration: { source: TINYSTORIES_URI } },
    });
    const proxy = await lossyProxy(gateway.url, 'reportProgress');
    try {
      const transport = new GraphqlWorkerTransport({ url: proxy.url, token: 'transport-test-token', workerId: 'w1' });
      const claimed = await transport.claim();
      expect(claimed?.planId).toBe(createPruningPlan.id);
      expect(claimed?.contractVersion).toBe(PLAN_CONTRACT_VERSION);
      const events = [1, 2, 3].map((step) => ({ stage: 'TRAINING' as const, progress: step / 10, step, message: `step ${step}` }));
      await transport.report(createPruningPlan.id, events, { run: 'run-1', firstIndex: 1 });
      expect(proxy.broken()).toBe(1);
      await transport.report(createPruningPlan.id, [{ stage: 'TRAINING', progress: 0.4, step: 4, message: 'step 4' }], { run: 'run-1', firstIndex: 4 });
      const stored = await gateway.services.plans.events(createPruningPlan.id, 0, 100);
      expect(stored.map((e) => [e.seq, e.step])).toEqual([
        [1, 1],
        [2, 2],
        [3, 3],
        [4, 4],
      ]);
    } finally {
      await proxy.close();
    }
  });
});
