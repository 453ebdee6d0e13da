/**
 * `npm start` as a newcomer runs it: the gateway is the process npm waits on, so a signal to npm (or to
 * the gateway) stops the gateway and its local worker, and npm exits 0 without an error report. A port
 * already in use is one line, before any database is created.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const GATEWAY_BIN = join(REPO, 'services/gateway/bin/streamline-gateway.js');

const dirs: string[] = [];
const pids: number[] = [];
afterEach(() => {
  for (const pid of pids.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'streamline-npm-start-'));
  dirs.push(dir);
  return dir;
}

function childrenOf(pid: number): number[] {
  try {
    return execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
  } catch {
    return []; // ps exits 1 when there are none
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('npm start', () => {
  it('runs the gateway as npm’s own child: SIGTERM to npm stops the gateway and its worker, and npm exits 0 quietly', async () => {
    const dataDir = tempDir();
    const npm = spawn('npm', ['start'], {
      cwd: REPO,
      env: { ...process.env, PORT: '0', STREAMLINE_DATA_DIR: dataDir, STREAMLINE_WORKERS: '1', STREAMLINE_AUTH: 'off' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    pids.push(npm.pid!);
    let output = '';
    const exited = new Promise<number | null>((done) => npm.once('exit', (code) => done(code)));
    await new Promise<void>((ready, fail) => {
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        if (/\[worker \S+\] started/.test(output)) ready();
      };
      npm.stdout.on('data', onData);
      npm.stderr.on('data', onData);
      npm.once('exit', () => fail(new Error(`npm start exited early:\n${output}`)));
    });
    const [gateway] = childrenOf(npm.pid!);
    expect(execFileSync('ps', ['-o', 'args=', '-p', String(gateway)], { encoding: 'utf8' })).toMatch(/^node services\/gateway\/bin\/streamline-gateway\.js/);
    const workers = childrenOf(gateway).filter((pid) => /streamline-worker/.test(execFileSync('ps', ['-o', 'args=', '-p', String(pid)], { encoding: 'utf8' })));
    expect(workers).toHaveLength(1);
    pids.push(gateway, ...workers);

    npm.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(output).toContain('streamline gateway: SIGTERM, closing');
    expect(output).not.toMatch(/npm error|code 143/);
    expect(alive(gateway)).toBe(false);
    expect(alive(workers[0])).toBe(false);
  });

  it('reports a port in use in one line and creates nothing', async () => {
    const busy = createServer();
    await new Promise<void>((listening) => busy.listen(0, '127.0.0.1', listening));
    try {
      const dataDir = join(tempDir(), 'data');
      const gateway = spawn(process.execPath, [GATEWAY_BIN], {
        env: { ...process.env, PORT: String((busy.address() as AddressInfo).port), STREAMLINE_DATA_DIR: dataDir, STREAMLINE_WORKERS: '0' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      pids.push(gateway.pid!);
      let output = '';
      gateway.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      gateway.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      const code = await new Promise<number | null>((done) => gateway.once('exit', (exitCode) => done(exitCode)));
      expect(code).toBe(1);
      expect(output).toBe(`streamline gateway: port ${(busy.address() as AddressInfo).port} on 127.0.0.1 is in use (another gateway, or another program): stop it, or choose another port with PORT=…\n`);
      expect(existsSync(dataDir) ? readdirSync(dataDir) : []).toEqual([]);
    } finally {
      busy.close();
    }
  });
});
