// The services as the images run them: built with tsc (`npm run build` in each workspace, into its
// dist/) and started with `node --conditions=streamline-dist dist/…`, no tsx.
//   - the builds succeed from clean, and '@streamline/engine/spec' resolves to the engine's build under
//     the condition (to its sources without it, as in development and tests);
//   - the compiled gateway and one compiled worker process register stories260K (inspected in the
//     gateway's thread, dist/models/inspect-thread.js) and run a dry-run plan to SUCCEEDED through
//     GraphQL, then stop cleanly on SIGTERM;
//   - a module hook in both processes (and their threads) logs every module loaded: nothing from tsx,
//     no TypeScript file, and the entries, the inspection thread and the engine's light entry from dist/.
// The builds write the workspaces' dist/ folders in place (as `npm run build` does; they are ignored by
// git and by the images' build context): the gateway's build compiles against the engine's, through the
// package's exports, so a copy elsewhere would not be what runs.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runWithShared, SHARED, sharedUri } from '@streamline/testing/shared-data';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ENGINE = join(ROOT, 'services/engine');
const GATEWAY = join(ROOT, 'services/gateway');
const CONDITION = '--conditions=streamline-dist';
const ADMIN_TOKEN = 'dist-smoke-admin-token-0123456789abcdef';
const WORKER_TOKEN = 'dist-smoke-worker-token-0123456789abcdef';

const REGISTER = 'mutation ($input: RegisterModelInput!) { registerModel(input: $input) { id status } }';
const CREATE = 'mutation ($input: CreatePruningPlanInput!) { createPruningPlan(input: $input) { id status } }';
const PLAN = 'query ($id: ID!) { plan(id: $id) { status error profiles { blockSize metric } } }';

// Appends `<thread> <url>` for every module a process or any of its threads loads (kept synchronous,
// so nothing is lost when a process is killed).
const LOAD_LOG_HOOKS = `import { appendFileSync } from 'node:fs';
let file = '';
let thread = '';
export function initialize(data) { file = data.file; thread = data.thread; }
export async function load(url, context, nextLoad) { appendFileSync(file, thread + ' ' + url + '\\n'); return nextLoad(url, context); }
`;
const LOAD_LOG = `import { register } from 'node:module';
import { isMainThread, threadId } from 'node:worker_threads';
register('./load-log-hooks.mjs', import.meta.url, { data: { file: process.env.STREAMLINE_SMOKE_LOAD_LOG, thread: isMainThread ? 'main' : 'thread-' + threadId } });
`;

const temp = mkdtempSync(join(tmpdir(), 'streamline-dist-smoke-'));
afterAll(() => rmSync(temp, { recursive: true, force: true }));

describe('the services built with tsc', () => {
  beforeAll(() => {
    for (const workspace of ['services/engine', 'services/gateway']) {
      const build = spawnSync('npm', ['run', 'build', '-w', workspace], { cwd: ROOT, encoding: 'utf8' });
      expect(build.status, `npm run build -w ${workspace}:\n${build.stdout}\n${build.stderr}`).toBe(0);
    }
  }, 240_000);

  it('emit the entries the images start, and the inspection thread as plain JavaScript', () => {
    for (const file of ['services/engine/dist/streamline-worker.js', 'services/engine/dist/spec.js', 'services/engine/dist/spec.d.ts', 'services/gateway/dist/streamline-gateway.js']) {
      expect(existsSync(join(ROOT, file)), file).toBe(true);
    }
    // in src/ inspect-thread.js registers tsx; its build is inspect-thread.ts compiled
    expect(readFileSync(join(GATEWAY, 'src/models/inspect-thread.js'), 'utf8')).toContain('tsx');
    expect(readFileSync(join(GATEWAY, 'dist/models/inspect-thread.js'), 'utf8')).not.toContain('tsx');
  });

  it("resolve the engine's light entry to its build under --conditions=streamline-dist, to its sources without", () => {
    const resolveSpec = (flags: string[]) => {
      const run = spawnSync(process.execPath, [...flags, '--input-type=module', '-e', "console.log(import.meta.resolve('@streamline/engine/spec'))"], { cwd: GATEWAY, encoding: 'utf8' });
      expect(run.status, run.stderr).toBe(0);
      return run.stdout.trim();
    };
    expect(resolveSpec([CONDITION])).toBe(pathToFileURL(join(ENGINE, 'dist/spec.js')).href);
    expect(resolveSpec([])).toBe(pathToFileURL(join(ENGINE, 'src/spec.ts')).href);
  });

  describe.runIf(runWithShared)('started with node, no tsx', () => {
    const children: ChildProcess[] = [];
    const loadLog = join(temp, 'loads.log');
    const output: string[] = [];

    /**
     * `node --conditions=streamline-dist --import <load log> <entry>`, with NODE_ENV=production as in the
     * images and only the given settings beside PATH, HOME and TMPDIR (no NODE_OPTIONS).
     */
    function startCompiled(entry: string, env: Record<string, string>): ChildProcess {
      const child = spawn(process.execPath, [CONDITION, '--import', pathToFileURL(join(temp, 'load-log.mjs')).href, entry], {
        cwd: temp,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? temp, TMPDIR: process.env.TMPDIR ?? tmpdir(), NODE_ENV: 'production', STREAMLINE_SMOKE_LOAD_LOG: loadLog, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      for (const stream of [child.stdout!, child.stderr!]) stream.setEncoding('utf8').on('data', (chunk: string) => output.push(chunk));
      children.push(child);
      return child;
    }

    /** SIGTERM, then SIGKILL after `graceMs`; how the process ended: its exit code, or the signal. */
    async function stop(child: ChildProcess, graceMs = 15_000): Promise<string> {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      }
      return String(child.exitCode ?? child.signalCode);
    }

    afterAll(async () => {
      await Promise.all(children.map((child) => stop(child)));
    });

    it('serve a dry-run plan on stories260K to SUCCEEDED, and stop on SIGTERM', async () => {
      writeFileSync(join(temp, 'load-log-hooks.mjs'), LOAD_LOG_HOOKS);
      writeFileSync(join(temp, 'load-log.mjs'), LOAD_LOG);
      const gateway = startCompiled(join(GATEWAY, 'dist/streamline-gateway.js'), {
        PORT: '0',
        STREAMLINE_WORKERS: '0',
        STREAMLINE_DATA_DIR: join(temp, 'gateway'),
        STREAMLINE_ADMIN_TOKEN: ADMIN_TOKEN,
        STREAMLINE_WORKER_TOKEN: WORKER_TOKEN,
        STREAMLINE_FILE_ROOTS: SHARED,
      });
      const url = await new Promise<string>((resolve, reject) => {
        const onData = () => {
          const found = /streamline gateway: (http:\/\/\S+\/graphql)/.exec(output.join(''))?.[1];
          if (found) resolve(found);
        };
        gateway.stderr!.on('data', onData);
        gateway.once('exit', (code, signal) => reject(new Error(`the gateway exited (${signal ?? code}) before serving:\n${output.join('')}`)));
      });
      const worker = startCompiled(join(ENGINE, 'dist/streamline-worker.js'), {
        STREAMLINE_GATEWAY_URL: url,
        STREAMLINE_WORKER_TOKEN: WORKER_TOKEN,
        STREAMLINE_DATA_DIR: join(temp, 'worker'),
        STREAMLINE_WORKER_ID: 'dist-smoke-worker',
      });

      async function graphql(query: string, variables: Record<string, unknown>): Promise<any> {
        const response = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_TOKEN}` },
          body: JSON.stringify({ query, variables }),
        });
        const body = (await response.json()) as { data?: any; errors?: unknown };
        expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
        return body.data;
      }

      const { registerModel } = await graphql(REGISTER, {
        input: { name: 'stories', source: sharedUri('models/stories260K/stories260K.bin'), tokenizer: sharedUri('models/stories260K/tok512.bin') },
      });
      expect(registerModel.status).toBe('READY');
      const calibration = { source: sharedUri('data/text/tinystories_val_excerpt.txt'), samples: 4, seqLen: 32 };
      const { createPruningPlan } = await graphql(CREATE, { input: { modelId: registerModel.id, dryRun: true, layersToPrune: 1, calibration } });
      let plan: { status: string; error: string | null; profiles: { blockSize: number; metric: string }[] };
      const deadline = Date.now() + 60_000;
      do {
        await new Promise((resolve) => setTimeout(resolve, 200));
        ({ plan } = await graphql(PLAN, { id: createPruningPlan.id }));
        expect(worker.exitCode, `the worker exited:\n${output.join('')}`).toBeNull();
      } while (!['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(plan.status) && Date.now() < deadline);
      expect(plan.error, output.join('')).toBeNull();
      expect(plan.status).toBe('SUCCEEDED');
      expect(plan.profiles.some((profile) => profile.metric === 'COSINE')).toBe(true);

      expect(await stop(worker), output.join('')).toBe('0');
      // Ends by itself, with its own close finished (Apollo's SIGTERM handler is off: see http-app.ts).
      expect(await stop(gateway), output.join('')).toBe('0');

      const loads = readFileSync(loadLog, 'utf8').split('\n').filter(Boolean);
      const urls = loads.map((line) => line.slice(line.indexOf(' ') + 1));
      expect(urls.filter((loaded) => /\/node_modules\/tsx\/|\.[cm]?ts$/.test(loaded))).toEqual([]);
      const dist = (path: string) => pathToFileURL(join(ROOT, path)).href;
      expect(urls).toContain(dist('services/gateway/dist/streamline-gateway.js'));
      expect(urls).toContain(dist('services/engine/dist/streamline-worker.js'));
      expect(urls).toContain(dist('services/engine/dist/spec.js'));
      expect(loads).toContainEqual(expect.stringMatching(/^thread-\d+ .*\/services\/gateway\/dist\/models\/inspect-thread\.js$/));
    }, 120_000);
  });
});
