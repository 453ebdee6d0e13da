/**
 * A worker process (bin/streamline-worker.js, the GraphQL transport) meeting a gateway of another plan
 * contract version: it releases what it claimed without running it, says which side to upgrade, and
 * exits with status 3. The gateway here is a loopback stand-in answering the worker's documents, since
 * the real gateway always speaks this engine's version (services/gateway/test/worker-transport.test.ts
 * checks that it sends it).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { PLAN_CONTRACT_VERSION } from '../src/spec.js';
import { EXIT_CONTRACT_MISMATCH } from '../src/worker/main.js';

const work = mkdtempSync(join(tmpdir(), 'streamline-worker-contract-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const engineDir = fileURLToPath(new URL('..', import.meta.url));

interface Received {
  readonly operation: string;
  readonly variables: Record<string, unknown>;
}
type Answer = (operation: string) => { status?: number; body: unknown };

/** Runs a worker process against a stand-in gateway answering with `answer`; resolves when it exits. */
async function runWorkerAgainst(answer: Answer): Promise<{ status: number | null; stderr: string; received: Received[] }> {
  const received: Received[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const { query, variables } = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { query: string; variables: Record<string, unknown> };
      const operation = /^\s*mutation (\w+)/.exec(query)?.[1] ?? '?';
      received.push({ operation, variables });
      const { status = 200, body } = answer(operation);
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      STREAMLINE_GATEWAY_URL: `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`,
      STREAMLINE_WORKER_TOKEN: 'contract-test-token',
      STREAMLINE_WORKER_ID: 'w-old',
      STREAMLINE_DATA_DIR: join(work, `data-${received.length}-${Math.random()}`),
    };
    delete env.STREAMLINE_STORAGE;
    const child = spawn(process.execPath, ['bin/streamline-worker.js'], { cwd: engineDir, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000); // a worker that polls on is a failure, not a hang
    const status = await new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    clearTimeout(timer);
    return { status, stderr, received };
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

describe('a worker meeting a gateway of another plan contract version', () => {
  it('releases the plan it claimed, unrun, says to upgrade the worker image, and exits 3', async () => {
    const newer = PLAN_CONTRACT_VERSION + 1;
    const { status, stderr, received } = await runWorkerAgainst((operation) =>
      operation === 'Claim'
        ? { body: { data: { claimPlan: { planId: 'p-new', config: { renamedEverything: true }, contractVersion: newer } } } }
        : operation === 'Release'
          ? { body: { data: { releasePlan: true } } }
          : { body: { errors: [{ message: `unexpected ${operation}` }] } },
    );
    expect(status).toBe(EXIT_CONTRACT_MISMATCH);
    expect(stderr).toContain(`streamline-worker: this worker speaks plan contract ${PLAN_CONTRACT_VERSION}, the gateway sends ${newer} (plan p-new, released): upgrade the worker image`);
    expect(received).toEqual([
      { operation: 'Claim', variables: { workerId: 'w-old' } },
      { operation: 'Release', variables: { planId: 'p-new', workerId: 'w-old' } },
    ]);
  }, 60_000);

  it('stops with the same status when the gateway predates contract versions (its schema has no contractVersion)', async () => {
    const { status, stderr, received } = await runWorkerAgainst(() => ({
      status: 400, // what the gateway answers a document its schema does not validate
      body: { errors: [{ message: 'Cannot query field "contractVersion" on type "WorkerClaim".', extensions: { code: 'BAD_USER_INPUT' } }] },
    }));
    expect(status).toBe(EXIT_CONTRACT_MISMATCH);
    expect(stderr).toContain(
      `streamline-worker: this worker speaks plan contract ${PLAN_CONTRACT_VERSION}, the gateway sends none: the gateway is older than this worker: deploy a worker image matching the gateway`,
    );
    expect(received.map((r) => r.operation)).toEqual(['Claim']); // nothing was claimed, so nothing to release
  }, 60_000);
});
