/**
 * The CLI's command line without a gateway: where global options may stand, group help, usage errors,
 * and where the gateway's URL and token come from (flags, environment, config file, default).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { main } from '../src/cli.js';
import { connectionSettings, DEFAULT_URL, UsageError } from '../src/cli/settings.js';

const dir = mkdtempSync(join(tmpdir(), 'streamline-cli-args-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs main() in this process with stdout and stderr captured. */
async function streamline(...argv: string[]) {
  let stdout = '';
  let stderr = '';
  const stream = (write: (text: string) => void) => ({ isTTY: false, write: (text: string) => (write(text), true) }) as unknown as NodeJS.WriteStream;
  const io = { stdout: stream((text) => (stdout += text)), stderr: stream((text) => (stderr += text)) } as Parameters<typeof main>[1];
  const status = await main(argv, io);
  return { status, stdout, stderr };
}

describe('the command line', () => {
  beforeEach(() => {
    // No gateway settings from the machine running the tests.
    vi.stubEnv('STREAMLINE_CONFIG', join(dir, 'absent.json'));
    vi.stubEnv('STREAMLINE_URL', undefined);
    vi.stubEnv('STREAMLINE_TOKEN', undefined);
    return () => vi.unstubAllEnvs();
  });

  it('takes --url, --token and --json before the command as well as after it', async () => {
    const refused = await streamline('--url', 'http://127.0.0.1:9/graphql', '--json', 'models', 'list');
    expect(refused.status).toBe(1);
    expect(JSON.parse(refused.stdout).error.code).toBe('NETWORK'); // --json was seen before the command
    expect(refused.stderr).toMatch(/^streamline: NETWORK: http:\/\/127\.0\.0\.1:9\/graphql: fetch failed/);

    const mistake = await streamline('--json', '--token=t', 'plans', 'create', '--model', 'm', '--layers', '2', '--sparsity', '0.2', '--calibration', 'file:///x');
    expect(mistake.status).toBe(2);
    expect(mistake.stderr).toMatch(/^streamline: give exactly one of --layers N and --sparsity F\nusage: streamline plans create/);
  });

  it('registers a model from --source or --from-plan, exactly one', async () => {
    for (const args of [['--source', 'file:///x', '--from-plan', 'p'], []]) {
      const run = await streamline('--token=t', 'models', 'register', '--name', 'n', ...args);
      expect(run.status).toBe(2);
      expect(run.stderr).toMatch(/^streamline: give exactly one of --source URI and --from-plan PLAN_ID .*\nusage: streamline models register --name NAME \(--source URI \| --from-plan PLAN_ID\)/);
    }
    const fromPlan = await streamline('--url', 'http://127.0.0.1:9/graphql', '--token=t', 'models', 'register', '--name', 'n', '--from-plan', 'p');
    expect(fromPlan.stderr).toMatch(/NETWORK/); // accepted by the command line, sent to the gateway
  });

  it('lists a group\'s commands for `streamline GROUP --help`, and asks for an action without one', async () => {
    const help = await streamline('plans', '--help');
    expect(help).toMatchObject({ status: 0, stderr: '' });
    expect(help.stdout).toMatch(/^usage:\n  streamline plans create --model ID/);
    expect(help.stdout).toContain('streamline plans watch PLAN_ID');
    expect(help.stdout).toContain('streamline plans retry PLAN_ID [--watch]');
    expect(help.stdout).not.toContain('models list');

    const bare = await streamline('importance');
    expect(bare).toMatchObject({ status: 2, stdout: '' });
    expect(bare.stderr).toMatch(/^streamline: importance needs one of: show\nusage:\n  streamline importance show PLAN_ID/);
  });

  it('answers --help with the usage, and an unknown command with status 2', async () => {
    for (const argv of [[], ['--help'], ['-h'], ['help']]) {
      const run = await streamline(...argv);
      expect(run.status).toBe(0);
      expect(run.stdout).toMatch(/^usage: streamline <command> \[options\]\n/);
    }
    expect((await streamline('models', 'show', '--help')).stdout).toBe('usage: streamline models show MODEL_ID\n');

    const unknown = await streamline('--json', 'plans', 'explode');
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toBe('streamline: unknown command "plans explode"\nrun `streamline --help` for the commands\n');
  });

  it('prints its version', async () => {
    const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
    for (const flag of ['--version', '-V']) expect(await streamline(flag)).toEqual({ status: 0, stdout: `streamline ${version}\n`, stderr: '' });
  });

  it('suggests the command or option meant by a typo', async () => {
    expect((await streamline('plan', 'list')).stderr).toMatch(/^streamline: unknown command "plan list"; did you mean plans list\?\n/);
    expect((await streamline('models', 'delet', 'm')).stderr).toMatch(/^streamline: unknown command "models delet"; did you mean models delete\?\n/);
    expect((await streamline('doctr')).stderr).toMatch(/^streamline: unknown command "doctr"; did you mean doctor\?\n/);
    const flag = await streamline('--token=t', 'plans', 'create', '--model', 'm', '--layer', '2');
    expect(flag.status).toBe(2);
    expect(flag.stderr).toMatch(/^streamline: unknown option --layer; did you mean --layers\?\nusage: streamline plans create/);
    expect((await streamline('models', 'list', '--jsno')).stderr).toMatch(/^streamline: unknown option --jsno; did you mean --json\?\n/);
    expect((await streamline('models', 'list', '--bogus-thing')).stderr).toMatch(/^streamline: unknown option --bogus-thing\nusage/);
    expect((await streamline('models', 'show', '--url')).stderr).toMatch(/^streamline: --url needs a value\n/);
  });

  it('says what a gateway URL looks like', async () => {
    const bare = await streamline('--url', '127.0.0.1:4610/graphql', 'models', 'list');
    expect(bare.status).toBe(2);
    expect(bare.stderr).toMatch(
      /^streamline: --url: "127\.0\.0\.1:4610\/graphql" is not a gateway URL \(did you mean http:\/\/127\.0\.0\.1:4610\/graphql\?\); it must look like http:\/\/HOST:PORT\/graphql/,
    );
    vi.stubEnv('STREAMLINE_URL', 'ftp://example.com/graphql');
    expect((await streamline('models', 'list')).stderr).toMatch(/^streamline: STREAMLINE_URL: "ftp:\/\/example\.com\/graphql" is not a gateway URL; it must look like/);
  });

  it('names --url and STREAMLINE_URL when the gateway cannot be reached', async () => {
    const run = await streamline('--url', 'http://127.0.0.1:9/graphql', 'models', 'list');
    expect(run.stderr).toMatch(/is the gateway running at http:\/\/127\.0\.0\.1:9\/graphql \(from --url\)\? Set its address with --url or STREAMLINE_URL\n/);
  });

  it('doctor: an unreachable gateway fails the first check and skips the rest', async () => {
    const run = await streamline('--url', 'http://127.0.0.1:9/graphql', 'doctor', '--json');
    expect(run.status).toBe(1);
    expect(JSON.parse(run.stdout).map((check: { name: string; status: string }) => `${check.name} ${check.status}`)).toEqual([
      'gateway fail',
      'database skip',
      'token skip',
      'workers skip',
      'storage skip',
    ]);
  });
});

describe('connectionSettings', () => {
  const config = join(dir, 'config.json');
  writeFileSync(config, JSON.stringify({ url: 'http://from-file/graphql', token: 'file-token' }));

  it('prefers flags, then STREAMLINE_URL/STREAMLINE_TOKEN, then the config file, then the default', () => {
    const env = { STREAMLINE_CONFIG: config, STREAMLINE_URL: 'http://from-env/graphql', STREAMLINE_TOKEN: 'env-token' };
    expect(connectionSettings({ url: 'http://from-flag/graphql', token: 'flag-token' }, env)).toMatchObject({ url: 'http://from-flag/graphql', token: 'flag-token' });
    expect(connectionSettings({}, env)).toMatchObject({ url: 'http://from-env/graphql', token: 'env-token' });
    expect(connectionSettings({}, { STREAMLINE_CONFIG: config })).toMatchObject({ url: 'http://from-file/graphql', token: 'file-token' });
    expect(connectionSettings({}, { STREAMLINE_CONFIG: join(dir, 'absent.json') })).toMatchObject({ url: DEFAULT_URL, token: undefined });
  });

  it('finds the config file under XDG_CONFIG_HOME', () => {
    const xdg = join(dir, 'xdg');
    mkdirSync(join(xdg, 'streamline'), { recursive: true });
    writeFileSync(join(xdg, 'streamline', 'config.json'), JSON.stringify({ token: 'xdg-token' }));
    expect(connectionSettings({}, { XDG_CONFIG_HOME: xdg })).toMatchObject({ url: DEFAULT_URL, token: 'xdg-token' });
  });

  it('refuses a config file that is not JSON, naming it', () => {
    const broken = join(dir, 'broken.json');
    writeFileSync(broken, '{"url": ');
    expect(() => connectionSettings({}, { STREAMLINE_CONFIG: broken })).toThrow(UsageError);
    expect(() => connectionSettings({}, { STREAMLINE_CONFIG: broken })).toThrow(`${broken}: not valid JSON`);
  });
});
