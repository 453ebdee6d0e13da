// The test database helper: with no server running, it starts one of its own and removes it again.
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { findPostgresBinaries, isReachable, OWNER_FILE, provideTestPostgres, removeAbandoned, startThrowawayPostgres } from './postgres-server.js';

const binDir = findPostgresBinaries();
if (!binDir && process.env.CI !== 'true') console.warn('testing/postgres-server.test.ts: no PostgreSQL binaries installed, skipped (CI=true makes this a failure)');

describe.runIf(binDir !== null || process.env.CI === 'true')('throwaway PostgreSQL server', () => {
  it('starts a server on a free port with database "test", serves SQL, and leaves nothing behind when stopped', async () => {
    expect(binDir, 'initdb and pg_ctl (apt-get install postgresql)').not.toBeNull();
    const server = await startThrowawayPostgres(binDir!);
    const url = new URL(server.url);
    expect(url.hostname).toBe('127.0.0.1');
    expect(url.pathname).toBe('/test');
    const client = new pg.Client({ connectionString: server.url });
    await client.connect();
    try {
      await client.query('create table t (x bigint)');
      await client.query('insert into t values (9007199254740993)');
      expect((await client.query('select x::text from t')).rows).toEqual([{ x: '9007199254740993' }]);
    } finally {
      await client.end();
    }
    const dataDir = (await (async () => {
      const admin = new pg.Client({ connectionString: server.url });
      await admin.connect();
      try {
        return (await admin.query('show data_directory')).rows[0].data_directory as string;
      } finally {
        await admin.end();
      }
    })());
    expect(existsSync(dataDir)).toBe(true);
    await server.stop();
    expect(existsSync(dataDir)).toBe(false);
    expect(await isReachable(server.url)).toBe(false);
  });

  it('uses TEST_DATABASE_URL when it answers, and starts its own when it does not', async () => {
    const own = await provideTestPostgres({ PATH: process.env.PATH, TEST_DATABASE_URL: 'postgres://postgres@127.0.0.1:1/test' });
    try {
      expect(own.url).not.toBeNull();
      if (own.url === null) return;
      expect(own.origin).toBe('throwaway');
      const reused = await provideTestPostgres({ PATH: process.env.PATH, TEST_DATABASE_URL: own.url });
      expect(reused).toMatchObject({ url: own.url, origin: 'TEST_DATABASE_URL' });
      if (reused.url !== null) await reused.stop(); // a no-op for a server it did not start
      expect(await isReachable(own.url)).toBe(true);
    } finally {
      if (own.url !== null) await own.stop();
    }
  });

  it('stops and removes a throwaway server whose test run was killed, and leaves those of live runs alone', async () => {
    const live = await startThrowawayPostgres(binDir!);
    const orphan = await startThrowawayPostgres(binDir!);
    try {
      const folderOf = async (url: string) => {
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        try {
          return dirname((await client.query('show data_directory')).rows[0].data_directory as string);
        } finally {
          await client.end();
        }
      };
      const orphanFolder = await folderOf(orphan.url);
      const livesFolder = await folderOf(live.url);
      // a run that has ended: the pid of a process that has exited
      const deadPid = spawnSync(process.execPath, ['-e', 'process.exit(0)']).pid!;
      writeFileSync(join(orphanFolder, OWNER_FILE), String(deadPid));
      expect(removeAbandoned(tmpdir(), binDir)).toEqual([orphanFolder.slice(tmpdir().length + 1)]);
      expect(existsSync(orphanFolder)).toBe(false);
      expect(await isReachable(orphan.url)).toBe(false);
      expect(existsSync(livesFolder)).toBe(true);
      expect(await isReachable(live.url)).toBe(true);
    } finally {
      await live.stop();
      await orphan.stop().catch(() => {});
    }
  });
});
