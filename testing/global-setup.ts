/**
 * Run once around the whole test run (vitest globalSetup):
 *   - a PostgreSQL server for the PostgreSQL-backed suites (postgres-server.ts), provided to them as
 *     `testDatabaseUrl` (null when none could be had: they skip with one line, except under CI=true,
 *     where that fails the run here);
 *   - a temporary folder of the run's own as TMPDIR for every test process and the workers they spawn,
 *     removed at the end, so that nothing a test (or a killed worker) forgot stays in the system's
 *     temporary directory. What was left in it is named, since a test should clean up after itself.
 */
import { chmodSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { findPostgresBinaries, OWNER_FILE, provideTestPostgres, removeAbandoned } from './postgres-server.js';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const abandoned = removeAbandoned(tmpdir(), findPostgresBinaries());
  if (abandoned.length > 0) console.warn(`tests: removed what killed test runs left behind: ${abandoned.join(', ')}`);
  const postgres = await provideTestPostgres();
  if (postgres.url === null) {
    if (process.env.CI === 'true') throw new Error(`the PostgreSQL-backed suites need a server (required under CI=true): ${postgres.reason}`);
    console.warn(`PostgreSQL-backed suites will be skipped: ${postgres.reason}`);
  } else if (postgres.origin === 'throwaway') {
    console.log(`tests: a throwaway PostgreSQL server at ${postgres.url}`);
  }
  project.provide('testDatabaseUrl', postgres.url);

  const systemTemp = tmpdir();
  const runTemp = mkdtempSync(join(systemTemp, 'streamline-test-run-'));
  chmodSync(runTemp, 0o755); // a throwaway PostgreSQL server made in it runs as another user
  writeFileSync(join(runTemp, OWNER_FILE), String(process.pid));
  process.env.TMPDIR = runTemp;

  return async () => {
    process.env.TMPDIR = systemTemp;
    // Libraries write there too (onnxruntime's mat-debug-*.log): only the project's own folders are named.
    const left = readdirSync(runTemp).filter((name) => name.startsWith('streamline-'));
    if (left.length > 0) console.warn(`tests left ${left.length} temporary folder(s) behind, removed now: ${left.join(', ')}`);
    rmSync(runTemp, { recursive: true, force: true });
    if (postgres.url !== null) await postgres.stop();
  };
}
