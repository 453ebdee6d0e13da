/**
 * The published shape: `npm pack` (its prepack builds dist/ with tsconfig.build.json) makes a tarball
 * holding the compiled ESM and its declarations and no sources or tests. Unpacked into a consumer
 * project with only the dependencies the package declares (linked from this repository's node_modules:
 * no network), it imports from plain Node, its `streamline` bin runs without tsx, and a consumer's
 * TypeScript checks against its declarations (skipLibCheck off), for Node and for a browser bundler.
 *
 * The package is packed from a copy of sdk/ in a temporary folder, so the test never writes sdk/dist
 * in the working tree (other tests, or a second test run, may be reading it).
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runProcess as run } from './fixtures/process.js';

const SDK = fileURLToPath(new URL('..', import.meta.url));
const ROOT = join(SDK, '..');
const TSC = fileURLToPath(import.meta.resolve('typescript/bin/tsc'));

/** This process's environment without the npm_* variables an outer `npm test` or `npx` sets (they are config to npm). */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name)));
}

/** `name` (maybe scoped) in the consumer's node_modules, pointing at the repository's installed copy. */
function link(consumer: string, name: string): void {
  const target = join(ROOT, 'node_modules', name);
  if (!existsSync(target)) throw new Error(`${name} is not installed in ${ROOT}/node_modules: run npm ci`);
  const path = join(consumer, 'node_modules', name);
  mkdirSync(dirname(path), { recursive: true });
  symlinkSync(target, path, 'dir');
}

const CONSUMER_TS = `import {
  NetworkError,
  NotFoundError,
  PlanDocument,
  StreamlineClient,
  type CreatePruningPlanInput,
  type Plan,
  type PlanStatus,
  type ProgressEvent,
} from '@streamline/sdk';

const client = new StreamlineClient({ url: 'http://localhost:4000/graphql', token: 'secret', retries: 1 });

export async function follow(planId: string): Promise<PlanStatus> {
  const handle = client.planHandle(planId);
  for await (const event of handle.progress({ afterSeq: 0 })) {
    const step: number | null = event.step;
    const seen: ProgressEvent = event;
    void step, seen;
  }
  const plan: Plan = await handle.wait();
  const removed: number[] = plan.removedLayers;
  const { plan: raw } = await client.query(PlanDocument, { id: planId, eventsLimit: 5 });
  void removed, raw?.stability?.parameterReduction;
  return plan.status;
}

export function isMissing(error: unknown): boolean {
  return error instanceof NotFoundError || (error instanceof NetworkError && error.status === 404);
}

const input: CreatePruningPlanInput = { modelId: 'm', layersToPrune: 2, replacement: 'LAYER', calibration: { source: 'file:///data.txt' } };
void client.createPruningPlan(input);
// The declarations are real types, not any: a wrong field type is an error.
// @ts-expect-error layersToPrune is a number
void client.createPruningPlan({ modelId: 'm', layersToPrune: 'two', calibration: { source: 'file:///data.txt' } });
`;

const CONSUMER_CHECK_MJS = `import * as sdk from '@streamline/sdk';
const client = new sdk.StreamlineClient({ url: 'http://127.0.0.1:9/graphql', retries: 0 });
// HTTP, then graphql-ws (Node 20: through the ws package, loaded on first use), both refused at once.
const http = await client.models().catch((error) => error);
const ws = await client.planHandle('p').progress().next().catch((error) => error);
await client.close();
console.log(JSON.stringify({
  exports: Object.keys(sdk).sort(),
  http: { networkError: http instanceof sdk.NetworkError, message: http.message },
  ws: { networkError: ws instanceof sdk.NetworkError, message: ws.message },
}));
`;

describe('the packed package', () => {
  let work: string;
  let tarball: string;
  let files: string[];
  let consumer: string;
  let packed: { dependencies: Record<string, string>; exports: Record<string, Record<string, string>>; bin: Record<string, string> };

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'streamline-sdk-pack-'));
    // A copy of the repository's bones: tsconfig.base.json, node_modules (linked) and sdk/ without builds.
    const repo = join(work, 'repo');
    mkdirSync(repo);
    cpSync(join(ROOT, 'tsconfig.base.json'), join(repo, 'tsconfig.base.json'));
    symlinkSync(join(ROOT, 'node_modules'), join(repo, 'node_modules'), 'dir');
    cpSync(SDK, join(repo, 'sdk'), { recursive: true, filter: (source) => !/^(dist|node_modules)(\/|$)/.test(relative(SDK, source)) });

    const packDir = join(work, 'pack');
    mkdirSync(packDir);
    const pack = await run('npm', ['pack', '--offline', '--pack-destination', packDir], { cwd: join(repo, 'sdk'), env: cleanEnv() });
    expect(pack.status, `npm pack failed:\n${pack.stdout}\n${pack.stderr}`).toBe(0);
    const [name, ...others] = readdirSync(packDir);
    expect(others, 'npm pack made more than one file').toEqual([]);
    tarball = join(packDir, name);
    const listing = await run('tar', ['-tzf', tarball], { cwd: work });
    expect(listing.status, listing.stderr).toBe(0);
    files = listing.stdout.split('\n').filter(Boolean).map((path) => path.replace(/^package\//, ''));

    // The consumer: the tarball unpacked as an installed package, plus only its declared dependencies.
    consumer = join(work, 'consumer');
    const installed = join(consumer, 'node_modules', '@streamline', 'sdk');
    mkdirSync(installed, { recursive: true });
    const untar = await run('tar', ['-xzf', tarball, '-C', installed, '--strip-components=1'], { cwd: work });
    expect(untar.status, untar.stderr).toBe(0);
    packed = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8'));
    for (const dependency of Object.keys(packed.dependencies)) link(consumer, dependency);
    link(consumer, '@types/node'); // the consumer's own, as a Node project has it
    writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    writeFileSync(join(consumer, 'check.mjs'), CONSUMER_CHECK_MJS);
    writeFileSync(join(consumer, 'index.ts'), CONSUMER_TS);
    const strict = { strict: true, noEmit: true, skipLibCheck: false, target: 'ES2022', isolatedModules: true };
    writeFileSync(
      join(consumer, 'tsconfig.node.json'),
      JSON.stringify({ compilerOptions: { ...strict, module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['ES2023'], types: ['node'] }, files: ['index.ts'] }),
    );
    // A browser app built by a bundler: DOM's fetch and WebSocket, no Node types.
    writeFileSync(
      join(consumer, 'tsconfig.browser.json'),
      JSON.stringify({ compilerOptions: { ...strict, module: 'ESNext', moduleResolution: 'Bundler', lib: ['ES2023', 'DOM', 'DOM.Iterable'], types: [] }, files: ['index.ts'] }),
    );
  });

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('holds the compiled ESM, its declarations, the bin and the README, and no sources or tests', () => {
    for (const file of ['package.json', 'README.md', 'bin/streamline.js', 'dist/index.js', 'dist/index.d.ts', 'dist/cli.js', 'dist/generated/graphql.js', 'dist/generated/graphql.d.ts']) {
      expect(files, `the tarball has no ${file}`).toContain(file);
    }
    // Every .js has its .d.ts, and nothing else is in dist/.
    const dist = files.filter((file) => file.startsWith('dist/'));
    expect(dist.filter((file) => !/\.(js|d\.ts)$/.test(file))).toEqual([]);
    for (const js of dist.filter((file) => file.endsWith('.js'))) expect(dist).toContain(js.replace(/\.js$/, '.d.ts'));
    expect(files.filter((file) => /^(src|test|examples)\//.test(file) || /\.tsbuildinfo$|^tsconfig|^codegen\.ts$/.test(file))).toEqual([]);
    expect(packed.exports['.']).toMatchObject({ types: './dist/index.d.ts', default: './dist/index.js' });
    expect(packed.bin).toEqual({ streamline: './bin/streamline.js' });
  });

  it('imports from plain Node ESM with every export of the sources, and talks HTTP and graphql-ws', async () => {
    const check = await run(process.execPath, ['check.mjs'], { cwd: consumer, env: cleanEnv() });
    expect(check.status, check.stderr).toBe(0);
    const result = JSON.parse(check.stdout);
    const sourceExports = Object.keys(await import('../src/index.js')).sort();
    expect(result.exports).toEqual(sourceExports);
    expect(result.exports).toEqual(expect.arrayContaining(['StreamlineClient', 'PlanHandle', 'NotFoundError', 'PlanDocument', 'FINAL_STATUSES']));
    expect(result.http).toMatchObject({ networkError: true, message: expect.stringMatching(/^http:\/\/127\.0\.0\.1:9\/graphql: fetch failed/) });
    expect(result.ws).toMatchObject({ networkError: true, message: expect.stringMatching(/^ws:\/\/127\.0\.0\.1:9\/graphql: /) });
  });

  it('runs the streamline bin with plain Node (no tsx, no sources)', async () => {
    const bin = join(consumer, 'node_modules', '@streamline', 'sdk', 'bin', 'streamline.js');
    const help = await run(process.execPath, [bin, '--help'], { cwd: consumer, env: cleanEnv() });
    expect(help.status, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/^usage: streamline <command> \[options\]/);
    expect(help.stdout).toContain('plans create --model ID');
    const refused = await run(process.execPath, [bin, 'models', 'list', '--url', 'http://127.0.0.1:9/graphql'], { cwd: consumer, env: cleanEnv() });
    expect(refused).toMatchObject({ status: 1, stdout: '' });
    expect(refused.stderr).toMatch(/^streamline: NETWORK: http:\/\/127\.0\.0\.1:9\/graphql: fetch failed/);
  });

  it.each(['tsconfig.node.json', 'tsconfig.browser.json'])('type-checks a consumer against its declarations (%s)', async (tsconfig) => {
    const check = await run(process.execPath, [TSC, '-p', tsconfig], { cwd: consumer, env: cleanEnv() });
    expect(check.status, `${check.stdout}${check.stderr}`).toBe(0);
  });
});
