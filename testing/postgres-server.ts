/**
 * A PostgreSQL server for the tests: the one TEST_DATABASE_URL names when it answers, else a throwaway
 * server started from the installed binaries (initdb + pg_ctl on a free loopback port, trust auth,
 * database "test"), removed again when the run ends. No server runs when a session or CI starts, so
 * the tests bring their own.
 */
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { delimiter, join } from 'node:path';
import pg from 'pg';

export interface PostgresServer {
  /** postgres://… of database "test" as a superuser. */
  readonly url: string;
  /** How it was found: an existing server, or one started here. */
  readonly origin: 'TEST_DATABASE_URL' | 'throwaway';
  stop(): Promise<void>;
}

/** Whether a server answers at `url` within a few seconds. */
export async function isReachable(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

/** The folder holding initdb and pg_ctl: on PATH, else Debian's newest /usr/lib/postgresql/N/bin. */
export function findPostgresBinaries(env: NodeJS.ProcessEnv = process.env): string | null {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl'))) return dir;
  }
  const debian = '/usr/lib/postgresql';
  if (!existsSync(debian)) return null;
  const versions = readdirSync(debian).filter((name) => /^\d+$/.test(name)).sort((a, b) => Number(b) - Number(a));
  for (const version of versions) {
    const bin = join(debian, version, 'bin');
    if (existsSync(join(bin, 'initdb')) && existsSync(join(bin, 'pg_ctl'))) return bin;
  }
  return null;
}

/**
 * Starts a fresh server in a temporary folder. PostgreSQL refuses to run as root, so under root (as CI
 * runs) initdb and pg_ctl run as the `postgres` user through runuser.
 */
export async function startThrowawayPostgres(binDir: string): Promise<PostgresServer> {
  const root = mkdtempSync(join(tmpdir(), THROWAWAY_PREFIX));
  writeFileSync(join(root, OWNER_FILE), String(process.pid));
  const data = join(root, 'data');
  const log = join(root, 'server.log');
  const asRoot = userInfo().uid === 0;
  if (asRoot) {
    const owner = postgresUser();
    chownSync(root, owner.uid, owner.gid);
  }
  const run = (command: string, args: string[]) => {
    const result = runPostgresTool(binDir, command, args);
    if (result.status !== 0) {
      const serverLog = existsSync(log) ? readFileSync(log, 'utf8').slice(-2_000) : '';
      throw new Error(`${command} ${args.join(' ')} failed (exit ${result.status}): ${result.error?.message ?? ''}${result.stderr}${serverLog}`);
    }
  };
  try {
    run('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync', '--locale=C']);
    const port = await freePort();
    // fsync off: a test database that a crash loses is no loss, and it saves seconds on every commit.
    const serverOptions = `-p ${port} -k ${root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`;
    run('pg_ctl', ['-D', data, '-l', log, '-o', serverOptions, '-w', '-t', '60', 'start']);
    const url = `postgres://postgres@127.0.0.1:${port}/test`;
    const admin = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${port}/postgres` });
    await admin.connect();
    try {
      await admin.query('create database test');
    } finally {
      await admin.end();
    }
    return {
      url,
      origin: 'throwaway',
      async stop() {
        try {
          run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', '-t', '60', 'stop']);
        } finally {
          rmSync(root, { recursive: true, force: true });
        }
      },
    };
  } catch (error) {
    runPostgresTool(binDir, 'pg_ctl', ['-D', data, '-m', 'immediate', 'stop']);
    rmSync(root, { recursive: true, force: true });
    throw error;
  }
}

const THROWAWAY_PREFIX = 'streamline-pg-';
/** The pid of the test run that made a throwaway folder (a server, or a run's TMPDIR) is written here. */
export const OWNER_FILE = 'owner.pid';

/**
 * Throwaway servers and run folders in `tempDir` whose test run was killed before it could stop them
 * (its pid no longer exists): servers stopped, folders removed. Those of runs still going are left.
 */
export function removeAbandoned(tempDir: string, binDir: string | null): string[] {
  const removed: string[] = [];
  for (const name of readdirSync(tempDir)) {
    if (!name.startsWith('streamline-')) continue;
    const folder = join(tempDir, name);
    let owner: number;
    try {
      owner = Number(readFileSync(join(folder, OWNER_FILE), 'utf8'));
    } catch {
      continue; // not one of ours, or not ours to judge
    }
    if (!Number.isInteger(owner) || owner <= 0 || isAlive(owner)) continue;
    if (name.startsWith(THROWAWAY_PREFIX) && binDir && existsSync(join(folder, 'data', 'postmaster.pid'))) {
      runPostgresTool(binDir, 'pg_ctl', ['-D', join(folder, 'data'), '-m', 'immediate', '-w', 'stop']);
    }
    rmSync(folder, { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** initdb / pg_ctl, as the `postgres` user when this process is root (PostgreSQL refuses to run as root). */
function runPostgresTool(binDir: string, command: string, args: string[]) {
  const tool = join(binDir, command);
  const [file, argv] = userInfo().uid === 0 ? ['runuser', ['-u', 'postgres', '--', tool, ...args]] : [tool, args];
  return spawnSync(file, argv, { encoding: 'utf8', timeout: 120_000 });
}

/**
 * The server the PostgreSQL-backed suites use: TEST_DATABASE_URL when it answers, else a throwaway
 * server when the binaries are installed, else null (the suites then skip, or fail under CI=true).
 */
export async function provideTestPostgres(env: NodeJS.ProcessEnv = process.env): Promise<PostgresServer | { readonly url: null; readonly reason: string }> {
  const configured = env.TEST_DATABASE_URL;
  if (configured && (await isReachable(configured))) {
    return { url: configured, origin: 'TEST_DATABASE_URL', async stop() {} };
  }
  const binDir = findPostgresBinaries(env);
  if (binDir) return startThrowawayPostgres(binDir);
  const why = configured ? `TEST_DATABASE_URL (${redactPassword(configured)}) does not answer` : 'TEST_DATABASE_URL is not set';
  return { url: null, reason: `${why}, and no PostgreSQL binaries (initdb, pg_ctl) are installed to start a throwaway server (apt-get install postgresql)` };
}

function postgresUser(): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((entry) => entry.startsWith('postgres:'));
  if (!line) throw new Error('running as root, PostgreSQL needs a `postgres` user to run as (the postgresql package creates it)');
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

function redactPassword(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(not a URL)';
  }
}
