/**
 * The CLI's operator commands against a live gateway (no workers): doctor, tenants and tokens, the
 * deletion of a model with plans, and errors that name the CLI's own options. main() runs in this
 * process with its output captured.
 */
import { join } from 'node:path';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { main } from '../src/cli.js';
import { useGateway } from './fixtures/gateway.js';
import { runWithShared, STORIES_TOKENIZER_URI, STORIES_URI, TINYSTORIES_URI } from './fixtures/shared.js';

describe.runIf(runWithShared)('the CLI for operators', () => {
  const live = useGateway({ workers: 0 });

  beforeEach(() => {
    vi.stubEnv('STREAMLINE_CONFIG', join(live.dataDir, 'no-config.json'));
    vi.stubEnv('STREAMLINE_URL', live.gateway.url);
    vi.stubEnv('STREAMLINE_TOKEN', live.gateway.adminToken ?? undefined);
    return () => vi.unstubAllEnvs();
  });

  async function streamline(...argv: string[]) {
    let stdout = '';
    let stderr = '';
    const stream = (write: (text: string) => void) => ({ isTTY: false, write: (text: string) => (write(text), true) }) as unknown as NodeJS.WriteStream;
    const status = await main(argv, { stdout: stream((text) => (stdout += text)), stderr: stream((text) => (stderr += text)) } as Parameters<typeof main>[1]);
    return { status, stdout, stderr };
  }

  it('doctor: reaches the gateway, checks the token and the storage, and says no worker is connected', async () => {
    const run = await streamline('doctor');
    expect(run.status).toBe(1); // no workers
    const lines = run.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^ok {4}gateway {3}http:\/\/127\.0\.0\.1:\d+\/graphql answers$/);
    expect(lines[1]).toMatch(/^ok {4}database {2}ready \(sqlite\)$/);
    expect(lines[2]).toMatch(/^ok {4}token {5}ADMIN of tenant default \(from STREAMLINE_TOKEN\)$/);
    expect(lines[3]).toMatch(/^fail {2}workers {3}none: plans stay QUEUED until a worker claims them/);
    expect(lines[4]).toMatch(/^ok {4}storage {3}file:\/\/\/.*\/gateway is writable$/);

    vi.stubEnv('STREAMLINE_TOKEN', 'not-a-token');
    const refused = JSON.parse((await streamline('doctor', '--json')).stdout);
    expect(refused.find((check: { name: string }) => check.name === 'token')).toMatchObject({ status: 'fail', detail: expect.stringContaining('the token from STREAMLINE_TOKEN was refused') });
  });

  it('names --token and STREAMLINE_TOKEN, not HTTP headers, when the token is missing or refused', async () => {
    vi.stubEnv('STREAMLINE_TOKEN', undefined);
    const missing = await streamline('models', 'list');
    expect(missing.status).toBe(1);
    expect(missing.stderr).toBe('streamline: UNAUTHENTICATED: no API token; give one with --token TOKEN or STREAMLINE_TOKEN=TOKEN (a fresh `npm start` prints the admin token once)\n');
    const refused = await streamline('--token', 'wrong', 'models', 'list');
    expect(refused.stderr).toBe('streamline: UNAUTHENTICATED: the gateway refused the API token from --token (the API token is not valid); check --token or STREAMLINE_TOKEN\n');
  });

  it('creates and lists tenants, and gives a new tenant a token', async () => {
    const created = await streamline('tenants', 'create', '--name', 'acme');
    expect(created.status, created.stderr).toBe(0);
    const id = /\(([0-9a-f-]{36})\)/.exec(created.stdout)![1];
    expect(created.stdout).toContain(`streamline tokens create --tenant ${id} --role ADMIN`);
    const tenants = JSON.parse((await streamline('tenants', 'list', '--json')).stdout);
    expect(tenants.map((t: { name: string }) => t.name)).toEqual(['default', 'acme']);

    const token = JSON.parse((await streamline('tokens', 'create', '--tenant', id, '--role', 'ADMIN', '--json')).stdout);
    vi.stubEnv('STREAMLINE_TOKEN', token.token);
    // A tenant's admin sees only its own tenant, and may not check the operator's storage.
    expect(JSON.parse((await streamline('tenants', 'list', '--json')).stdout)).toEqual([expect.objectContaining({ id, name: 'acme' })]);
    const doctor = JSON.parse((await streamline('doctor', '--json')).stdout);
    expect(doctor.find((check: { name: string }) => check.name === 'storage')).toMatchObject({ status: 'skip' });
    expect((await streamline('tenants', 'create', '--name', 'other')).stderr).toMatch(/^streamline: FORBIDDEN: /);
    vi.stubEnv('STREAMLINE_TOKEN', live.gateway.adminToken ?? undefined);
    expect((await streamline('tokens', 'revoke', token.id)).stdout).toMatch(/^revoked API token /);
  });

  it('refuses to delete a model with plans unless --force, and then says how many went', async () => {
    const model = JSON.parse((await streamline('models', 'register', '--name', 's', '--source', STORIES_URI, '--tokenizer', STORIES_TOKENIZER_URI, '--json')).stdout);
    for (let i = 0; i < 2; i++) {
      const plan = await streamline('plans', 'create', '--model', model.id, '--layers', '2', '--calibration', TINYSTORIES_URI, '--samples', '8', '--seq-len', '64');
      expect(plan.status, plan.stderr).toBe(0);
    }
    const refused = await streamline('models', 'delete', model.id);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/^streamline: CONFLICT: model "[^"]+" has 2 plan\(s\) \(2 QUEUED\); .*`streamline models delete --force`\n$/);
    const forced = await streamline('models', 'delete', model.id, '--force');
    expect(forced).toEqual({ status: 0, stdout: `deleted model ${model.id} with 2 plan(s) (2 cancelled first), their outputs and work folders\n`, stderr: '' });
    expect(JSON.parse((await streamline('plans', 'list', '--json')).stdout)).toEqual([]);
  });
});
