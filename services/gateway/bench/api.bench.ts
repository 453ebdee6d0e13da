/**
 * Gateway benchmark, on one machine over loopback, every server in a process of its own:
 *  1. `plan(id) { id status progress removedLayers }` with a Bearer token at concurrency 64, through the
 *     gateway as `npm start` runs it (auth and the security limits on, SQLite), side by side with a bare
 *     Apollo Server 5 + express 5 answering the same query from memory (bench/bare-apollo.ts), measured
 *     in the same run, interleaved (bare, gateway, bare, gateway), with wrk (`-t2 -c64 -d10s`; Debian's
 *     `wrk` package). Without wrk, a Node client in this process stands in (it says so);
 *  2. the delivery lag of progress events to 1,000 `planProgress` subscribers (graphql-ws, in a process
 *     of their own: bench/subscriber-fleet.ts) at 20 events/s (reports on a fixed schedule): time from a worker's `reportProgress`
 *     call to each subscriber's receipt;
 *  3. the same across two gateway replicas on one PostgreSQL database (BENCH_DATABASE_URL, default a
 *     throwaway server from the installed binaries; skipped with a message when there is none): events
 *     posted through replica A, the 1,000 subscribers on replica B (LISTEN/NOTIFY).
 * Bounded in count and time; stops by itself. BENCH_CPU_PROF=<dir> writes the gateway process's CPU
 * profile there (node --cpu-prof).
 *
 *   npm run bench -w services/gateway        (from the repository root)
 */
import 'reflect-metadata';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';
import { provideTestPostgres } from '@streamline/testing/postgres-server';
import { startGateway, type RunningGateway } from '../src/server.js';

const CONCURRENCY = 64;
const QUERY_SECONDS = 10;
const ROUNDS = 2;
const SUBSCRIBERS = 1000;
const EVENTS_PER_SECOND = 20;
const EVENTS = 100;
/** Subscriber processes (the 1,000 subscribers split between them, so that their own reading adds less lag). */
const FLEETS = 2;
const QUERY = 'query($id: ID!) { plan(id: $id) { id status progress removedLayers } }';

const here = fileURLToPath(new URL('.', import.meta.url));
const shared = fileURLToPath(new URL('../../../../shared/', import.meta.url));
const gatewayBin = fileURLToPath(new URL('../bin/streamline-gateway.js', import.meta.url));
const dataDir = mkdtempSync(join(tmpdir(), 'streamline-bench-gateway-'));
const ADMIN_TOKEN = `bench-admin-${randomBytes(8).toString('hex')}`;
const WORKER_TOKEN = `bench-worker-${randomBytes(8).toString('hex')}`;
const sources = { fileRoots: [shared], s3Sources: [], hf: false };
const children: ChildProcess[] = [];

const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');

/** Starts `args` with node; resolves with the first match of `pattern` in its output. */
function startProcess(args: string[], env: NodeJS.ProcessEnv, pattern: RegExp): Promise<{ child: ChildProcess; match: RegExpExecArray }> {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let output = '';
  return new Promise((resolve, reject) => {
    const onData = (chunk: string) => {
      output += chunk;
      const match = pattern.exec(output);
      if (match) resolve({ child, match });
    };
    child.stdout!.setEncoding('utf8').on('data', onData);
    child.stderr!.setEncoding('utf8').on('data', onData);
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited (${code}) before it served:\n${output}`)));
  });
}

async function gql(url: string, query: string, variables: Record<string, unknown> = {}, token = ADMIN_TOKEN) {
  const request = () => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ query, variables }) });
  // a kept-alive connection the server closed while idle fails once; a new one is opened for the retry
  const response = await request().catch(request);
  const body = (await response.json()) as { data?: any; errors?: unknown[] };
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

async function createPlan(url: string): Promise<string> {
  const model = await gql(url, `mutation($source: String!, $tokenizer: String) { registerModel(input: {name: "bench", source: $source, tokenizer: $tokenizer}) { id } }`, {
    source: pathToFileURL(join(shared, 'models/stories260K/stories260K.bin')).href,
    tokenizer: pathToFileURL(join(shared, 'models/stories260K/tok512.bin')).href,
  });
  const { createPruningPlan } = await gql(url, `mutation($input: CreatePruningPlanInput!) { createPruningPlan(input: $input) { id } }`, {
    input: { modelId: model.registerModel.id, layersToPrune: 2, calibration: { source: pathToFileURL(join(shared, 'data/text/tinystories_val_excerpt.txt')).href } },
  });
  return createPruningPlan.id;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

interface Rate {
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly errors: number;
}

function hasWrk(): boolean {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
    return true;
  } catch (error) {
    // wrk --version exits 1 after printing its version
    return (error as { status?: number }).status === 1;
  }
}

function milliseconds(value: string): number {
  const match = /([\d.]+)(us|ms|s)/.exec(value)!;
  const n = Number(match[1]);
  return match[2] === 'us' ? n / 1000 : match[2] === 's' ? n * 1000 : n;
}

function wrk(url: string, planId: string): Rate {
  const out = execFileSync('wrk', ['-t2', `-c${CONCURRENCY}`, `-d${QUERY_SECONDS}s`, '--latency', '-s', join(here, 'plan-query.lua'), url], {
    env: { ...process.env, PLAN_ID: planId, TOKEN: ADMIN_TOKEN },
    encoding: 'utf8',
  });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)![1]);
  const p50 = milliseconds(/\s50%\s+(\S+)/.exec(out)![1]);
  const p99 = milliseconds(/\s99%\s+(\S+)/.exec(out)![1]);
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = non2xx + (socketErrors ? socketErrors.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0);
  return { rps, p50, p99, errors };
}

/** Without wrk: CONCURRENCY loops of fetch in this process (which shares the CPUs with the servers). */
async function nodeClient(url: string, planId: string): Promise<Rate> {
  const latencies: number[] = [];
  let errors = 0;
  const deadline = performance.now() + QUERY_SECONDS * 1000;
  const started = performance.now();
  const body = JSON.stringify({ query: QUERY, variables: { id: planId } });
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < deadline) {
        const t = performance.now();
        const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_TOKEN}` }, body });
        await response.arrayBuffer();
        if (response.status !== 200) errors++;
        latencies.push(performance.now() - t);
      }
    }),
  );
  latencies.sort((a, b) => a - b);
  return { rps: latencies.length / ((performance.now() - started) / 1000), p50: percentile(latencies, 50), p99: percentile(latencies, 99), errors };
}

const show = (rate: Rate) => `${Math.round(rate.rps).toString().padStart(6)} q/s, p50 ${rate.p50.toFixed(1).padStart(6)} ms, p99 ${rate.p99.toFixed(1).padStart(7)} ms${rate.errors ? `, ${rate.errors} errors` : ''}`;

/** 1. plan(id): the gateway process against the bare Apollo process, interleaved. */
async function comparePlanQuery(gatewayUrl: string, planId: string): Promise<void> {
  const { match } = await startProcess(['--import', 'tsx', join(here, 'bare-apollo.ts')], { PORT: '0' }, /bare apollo: (http:\S+)/);
  const bareUrl = match[1];
  const useWrk = hasWrk();
  const measure = useWrk ? async (url: string) => wrk(url, planId) : nodeClient;
  console.log(
    useWrk
      ? `plan(id) at concurrency ${CONCURRENCY}, wrk -t2 -c${CONCURRENCY} -d${QUERY_SECONDS}s --latency -s bench/plan-query.lua (separate processes sharing this machine's CPUs):`
      : `plan(id) at concurrency ${CONCURRENCY}: wrk NOT FOUND (apt-get install -y wrk, Debian's wrk package); falling back to a Node client in the bench process, which competes with the servers for the CPUs — figures are lower and noisier than wrk's:`,
  );
  // warm both (JIT, caches), then interleave
  await gql(gatewayUrl, QUERY, { id: planId });
  await gql(bareUrl, QUERY, { id: planId });
  const ratios: number[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const before = load();
    const bare = await measure(bareUrl);
    const gateway = await measure(gatewayUrl);
    const ratio = gateway.rps / bare.rps;
    ratios.push(ratio);
    console.log(`  round ${round} (load ${before}):`);
    console.log(`    bare Apollo  ${show(bare)}`);
    console.log(`    gateway      ${show(gateway)}   → ${ratio.toFixed(2)}× the rate, p99 ${(gateway.p99 / bare.p99).toFixed(2)}× bare's`);
  }
  console.log(`  gateway/bare rate: ${ratios.map((r) => r.toFixed(2)).join(', ')} (target ≥ 0.80; p99 ≤ 1.5× bare's)`);
}

/** A worker claims `planId` through `posterUrl` and reports EVENTS events at EVENTS_PER_SECOND; SUBSCRIBERS watch it on `watcherWsUrl`. */
async function measureDelivery(posterUrl: string, watcherWsUrl: string, planId: string, label: string, subscriptionsOpen: () => Promise<number>): Promise<string> {
  await gql(posterUrl, 'mutation { claimPlan(workerId: "bench") { planId } }', {}, WORKER_TOKEN);
  const fleets = Array.from({ length: FLEETS }, (_, i) => {
    const count = Math.floor(SUBSCRIBERS / FLEETS) + (i < SUBSCRIBERS % FLEETS ? 1 : 0);
    const fleet = spawn(process.execPath, ['--import', 'tsx', join(here, 'subscriber-fleet.ts')], {
      env: { ...process.env, WS_URL: watcherWsUrl, TOKEN: ADMIN_TOKEN, PLAN_ID: planId, SUBSCRIBERS: String(count) },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    children.push(fleet);
    const state = { fleet, output: '' };
    fleet.stdout!.setEncoding('utf8').on('data', (chunk: string) => (state.output += chunk));
    return state;
  });
  const waitUntil = async (check: () => boolean | Promise<boolean>, what: string, ms: number) => {
    const deadline = performance.now() + ms;
    while (!(await check())) {
      if (performance.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  await waitUntil(() => fleets.every((f) => f.output.includes('subscribed')), 'the subscribers to connect', 60_000);
  // every subscription has reached the server (its /metrics says so)
  await waitUntil(async () => (await subscriptionsOpen()) >= SUBSCRIBERS, 'the subscriptions to open', 60_000);
  // One report every 1/EVENTS_PER_SECOND s on a fixed schedule, each event numbered by its step; a
  // report is not held back by the previous one's answer (as a worker's would not be by a slow network).
  const sentAt = new Map<number, number>();
  const started = performance.now();
  const reports: Promise<unknown>[] = [];
  for (let step = 1; step <= EVENTS; step++) {
    const wait = started + ((step - 1) * 1000) / EVENTS_PER_SECOND - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    sentAt.set(step, performance.timeOrigin + performance.now());
    reports.push(gql(posterUrl, `mutation($events: [WorkerProgressInput!]!) { reportProgress(planId: "${planId}", workerId: "bench", events: $events) }`, { events: [{ stage: 'TRAINING', progress: step / (EVENTS + 1), step }] }, WORKER_TOKEN));
  }
  await Promise.all(reports);
  const rate = EVENTS / ((performance.now() - started) / 1000);
  await new Promise((r) => setTimeout(r, 2000));
  const lags: number[] = [];
  let errors = 0;
  for (const { fleet } of fleets) fleet.stdin!.end();
  for (const state of fleets) {
    await new Promise((r) => (state.fleet.exitCode !== null ? r(null) : state.fleet.once('exit', r)));
    const result = JSON.parse(state.output.split('\n').find((line) => line.startsWith('{'))!) as { received: Record<string, number[]>; errors: number };
    errors += result.errors;
    for (const [step, times] of Object.entries(result.received)) for (const at of times) lags.push(at - sentAt.get(Number(step))!);
  }
  lags.sort((a, b) => a - b);
  const result = { errors };
  return `${label}, ${EVENTS} events at ${rate.toFixed(1)}/s: ${lags.length}/${SUBSCRIBERS * EVENTS} delivered${result.errors ? ` (${result.errors} errors)` : ''}; lag p50 ${percentile(lags, 50).toFixed(1)} ms, p95 ${percentile(lags, 95).toFixed(1)} ms, p99 ${percentile(lags, 99).toFixed(1)} ms, max ${lags.at(-1)!.toFixed(1)} ms (target p99 < 100 ms)`;
}

async function openSubscriptions(metricsUrl: string): Promise<number> {
  const text = await (await fetch(metricsUrl)).text();
  return Number(/streamline_subscriptions\{kind="planProgress"\} (\d+)/.exec(text)?.[1] ?? 0);
}

async function measureAcrossReplicas(): Promise<void> {
  const server = await provideTestPostgres({ PATH: process.env.PATH, TEST_DATABASE_URL: process.env.BENCH_DATABASE_URL });
  if (server.url === null) {
    console.log(`across replicas: skipped, ${server.reason.replace('TEST_DATABASE_URL', 'BENCH_DATABASE_URL')}`);
    return;
  }
  const schema = `streamline_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  await admin.query(`create schema "${schema}"`);
  const scoped = new URL(server.url);
  scoped.searchParams.set('options', `-c search_path=${schema}`);
  const limits = { ...(await import('../src/limits/limits.settings.js')).limitsFromEnv({}), maxConnectionsPerTenant: SUBSCRIBERS + 10, maxSubscriptionsPerTenant: SUBSCRIBERS + 10 };
  const options = { port: 0, workers: 0, log: () => {}, workerToken: WORKER_TOKEN, adminToken: ADMIN_TOKEN, databaseUrl: scoped.toString(), sources, limits };
  const replicas: RunningGateway[] = [];
  try {
    replicas.push(await startGateway(options), await startGateway(options));
    const [a, b] = replicas;
    const planId = await createPlan(a.url);
    console.log(await measureDelivery(a.url, b.wsUrl, planId, `across replicas on PostgreSQL (posted to A, ${SUBSCRIBERS} subscribers on B, both in the bench process)`, () => openSubscriptions(b.url.replace(/\/graphql$/, '/metrics'))));
  } finally {
    for (const replica of replicas) await replica.close();
    await admin.query(`drop schema if exists "${schema}" cascade`);
    await admin.end();
    await server.stop();
  }
}

try {
  console.log(`load average at start: ${load()} (${(await import('node:os')).cpus().length} CPUs)`);
  const profile = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
  const { child: gatewayProcess, match } = await startProcess(
    [...profile, gatewayBin],
    {
      PORT: '0',
      STREAMLINE_DATA_DIR: dataDir,
      STREAMLINE_WORKERS: '0',
      STREAMLINE_ADMIN_TOKEN: ADMIN_TOKEN,
      STREAMLINE_WORKER_TOKEN: WORKER_TOKEN,
      STREAMLINE_FILE_ROOTS: shared,
      STREAMLINE_AUTH: 'on',
      // the security limits stay at their defaults, except the per-tenant WebSocket quotas, raised so one
      // tenant may hold the 1,000 subscriptions of part 2
      STREAMLINE_WS_MAX_CONNECTIONS_PER_TENANT: String(SUBSCRIBERS + 10),
      STREAMLINE_WS_MAX_SUBSCRIPTIONS_PER_TENANT: String(SUBSCRIBERS + 10),
    },
    /streamline gateway: (http:\/\/\S+\/graphql)/,
  );
  const gatewayUrl = match[1];
  const planId = await createPlan(gatewayUrl);

  // 1. plan(id), gateway vs bare Apollo.
  await comparePlanQuery(gatewayUrl, planId);

  // 2. Progress delivery lag to 1,000 subscribers at 20 events/s.
  console.log(await measureDelivery(gatewayUrl, gatewayUrl.replace('http://', 'ws://'), planId, `progress delivery to ${SUBSCRIBERS} subscribers (gateway process, subscribers in ${FLEETS} others)`, () => openSubscriptions(gatewayUrl.replace(/\/graphql$/, '/metrics'))));
  gatewayProcess.kill('SIGINT');
  await new Promise((r) => gatewayProcess.once('exit', r));

  // 3. The same across two replicas on PostgreSQL.
  await measureAcrossReplicas();
  console.log(`load average at end: ${load()}`);
} finally {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
}
process.exit(0);
