/** The worker process's start-up message when it has no token: accurate about where the token comes from. */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const WORKER_BIN = fileURLToPath(new URL('../bin/streamline-worker.js', import.meta.url));

describe('streamline-worker without STREAMLINE_WORKER_TOKEN', () => {
  it('exits 1 saying the token is chosen by the operator and given to both the gateway and the worker', () => {
    const env = { ...process.env };
    delete env.STREAMLINE_WORKER_TOKEN;
    const run = spawnSync(process.execPath, [WORKER_BIN], { env, encoding: 'utf8', timeout: 60_000 });
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/^streamline-worker: STREAMLINE_WORKER_TOKEN is required\. It is a secret you choose and give to both sides: start the gateway with STREAMLINE_WORKER_TOKEN=<secret>/);
    expect(run.stderr).not.toMatch(/gateway prints/);
  });
});
