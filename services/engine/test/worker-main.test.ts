/** The worker process at its edges: started without a token, and stopped while its gateway is away. */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const WORKER_BIN = fileURLToPath(new URL('../bin/streamline-worker.js', import.meta.url));

/** A loopback port nothing listens on (taken, then freed). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('streamline-worker', () => {
  it('without STREAMLINE_WORKER_TOKEN exits 1 saying the operator chooses the token for both the gateway and the worker', () => {
    const env = { ...process.env };
    delete env.STREAMLINE_WORKER_TOKEN;
    const run = spawnSync(process.execPath, [WORKER_BIN], { env, encoding: 'utf8', timeout: 60_000 });
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/^streamline-worker: STREAMLINE_WORKER_TOKEN is required\. It is a secret you choose and give to both sides: start the gateway with STREAMLINE_WORKER_TOKEN=<secret>/);
    expect(run.stderr).not.toMatch(/gateway prints/);
  });

  it('stops at once on SIGTERM while its gateway cannot be reached, instead of retrying the claim for minutes', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'streamline-worker-main-'));
    const worker = spawn(process.execPath, [WORKER_BIN], {
      env: { ...process.env, STREAMLINE_WORKER_TOKEN: 'worker-main-test-token', STREAMLINE_GATEWAY_URL: `http://127.0.0.1:${await closedPort()}/graphql`, STREAMLINE_DATA_DIR: dataDir },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    try {
      let stderr = '';
      worker.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => worker.once('exit', (code) => resolve(code)));
      while (!stderr.includes('started')) await new Promise((resolve) => setTimeout(resolve, 100));
      await new Promise((resolve) => setTimeout(resolve, 1500)); // its first claim is being retried now
      const signalledAt = Date.now();
      worker.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(Date.now() - signalledAt).toBeLessThan(10_000);
      expect(stderr).toMatch(/stopped\n$/);
    } finally {
      worker.kill('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
