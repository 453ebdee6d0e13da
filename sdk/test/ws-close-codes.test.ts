/**
 * The close codes a gateway answers connection_init with become the SDK's typed errors: 4401
 * UnauthenticatedError, 4403 ForbiddenError, 4429 QuotaExceededError (the tenant's connection limit),
 * with the server's reason as the message. A scripted graphql-transport-ws server on port 0 closes
 * every connection with the code under test.
 */
import type { AddressInfo } from 'node:net';
import { parse } from 'graphql';
import { WebSocketServer } from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { ForbiddenError, QuotaExceededError, UnauthenticatedError } from '../src/errors.js';
import { WsTransport } from '../src/ws-transport.js';

const servers: WebSocketServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
});

/** A server that closes each connection with `code` and `reason` when it receives connection_init. */
async function closingServer(code: number, reason: string): Promise<string> {
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: () => 'graphql-transport-ws' });
  servers.push(server);
  server.on('connection', (socket) => socket.on('message', () => socket.close(code, reason)));
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  return `ws://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
}

describe('graphql-ws close codes', () => {
  it.each([
    [4401, 'Unauthorized: the API token is not valid', UnauthenticatedError],
    [4403, 'Forbidden: the worker token may not open subscriptions', ForbiddenError],
    [4429, 'QUOTA_EXCEEDED: the tenant has 50 connections, STREAMLINE_WS_MAX_CONNECTIONS_PER_TENANT=50', QuotaExceededError],
  ])('%i → %o', async (code, reason, ErrorClass) => {
    const transport = new WsTransport({ wsUrl: await closingServer(code, reason), token: 'sl_token', timeoutMs: 5_000 });
    try {
      const error = await transport.subscribe(parse('subscription { planUpdated(planId: "x") { id } }'), {}).next().then(
        () => null,
        (thrown: unknown) => thrown,
      );
      expect(error).toBeInstanceOf(ErrorClass);
      expect((error as Error).message).toBe(reason);
    } finally {
      await transport.close();
    }
  });
});
