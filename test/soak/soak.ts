/**
 * Soak test (issue 18): the gateway as `npm start` runs it, under a few minutes of realistic churn, on
 * loopback only. Not part of CI or `npm test` (vitest only runs *.test.ts); bounded in time (SOAK_MAX_MINUTES,
 * default 8) and in everything it starts, which it stops at the end whatever happens.
 *
 *   npm run soak                                  (from the repository root; needs ../shared)
 *
 * What it does:
 * - one gateway process (SQLite, auth on, the security limits on; the per-tenant WebSocket quotas sized
 *   for 200 subscribers per tenant) and 4 engine worker processes of its own on loopback;
 * - 5 tenants (createTenant, createApiToken), each with the stories260K model and 10 plans within its
 *   quotas (queued ≤ STREAMLINE_TENANT_MAX_QUEUED, running ≤ STREAMLINE_TENANT_MAX_RUNNING): tiny dry
 *   runs, LINEAR fits and short trainings (FFN, SWIGLU: 600 steps) on 8–16 windows of 64 tokens;
 * - 1,000 logical subscribers (20 per plan, each on its tenant's token) attaching over the first
 *   seconds, each dropping its connection at random and resuming with `afterSeq` = the last seq it saw;
 * - one worker SIGKILLed while it holds a plan (its lease runs out; another resumes the plan), and the
 *   gateway restarted (SIGTERM, then a new process on the same port and data): every subscriber's
 *   connection drops with it, and each resumes with `afterSeq`;
 * - then it checks: every plan SUCCEEDED; every logical subscriber saw seq 1..last of its plan exactly
 *   once, in order; no subscriber ever received an event of a plan other than its own (so no tenant saw
 *   another's), and another tenant's planProgress answers NOT_FOUND; the gateway's RSS, sampled every
 *   10 s, ended ≤ 1.2× its level after a 1-minute warm-up (of the process serving at the end);
 * - and prints plans/min, events/s, the lag percentiles (the event's store time, stamped when the
 *   worker's reportProgress call is handled, to the subscriber's receipt; live deliveries only) and the
 *   RSS samples. Exit status 0 when every check passed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';

const env = (name: string, fallback: number) => (process.env[name] ? Number(process.env[name]) : fallback);
const TENANTS = env('SOAK_TENANTS', 5);
const PLANS_PER_TENANT = env('SOAK_PLANS_PER_TENANT', 10);
const SUBSCRIBERS_PER_PLAN = env('SOAK_SUBSCRIBERS_PER_PLAN', 20);
const WORKERS = env('SOAK_WORKERS', 4);
const MAX_MINUTES = env('SOAK_MAX_MINUTES', 8);
const WARM_UP_MS = 60_000;
const RSS_EVERY_MS = 10_000;
/** A logical subscriber drops its connection with this probability per second it is attached. */
const DROP_PER_SECOND = 0.02;

const root = fileURLToPath(new URL('../../', import.meta.url));
const shared = join(root, '..', 'shared');
const gatewayBin = join(root, 'services/gateway/bin/streamline-gateway.js');
const workerBin = join(dirname(createRequire(import.meta.url).resolve('@streamline/engine/package.json')), 'bin', 'streamline-worker.js');
const dataDir = mkdtempSync(join(tmpdir(), 'streamline-soak-'));
const ADMIN = `soak-admin-${randomBytes(12).toString('hex')}`;
const WORKER_TOKEN = `soak-worker-${randomBytes(12).toString('hex')}`;
const STORIES = pathToFileURL(join(shared, 'models/stories260K/stories260K.bin')).href;
const TOKENIZER = pathToFileURL(join(shared, 'models/stories260K/tok512.bin')).href;
const TEXT = pathToFileURL(join(shared, 'data/text/tinystories_val_excerpt.txt')).href;

const started = performance.now();
const elapsed = () => ((performance.now() - started) / 1000).toFixed(0).padStart(4);
const say = (line: string) => console.log(`[${elapsed()} s] ${line}`);
const wall = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const port = await freePort();
const url = `http://127.0.0.1:${port}/graphql`;
const wsUrl = `ws://127.0.0.1:${port}/graphql`;
const children = new Set<ChildProcess>();
// stopped early (Ctrl-C): nothing it started outlives it
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    for (const child of children) child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
    process.exit(130);
  });
}

// ---------------------------------------------------------------- processes

interface GatewayRun {
  readonly child: ChildProcess;
  readonly generation: number;
  readonly startedAt: number;
}
let gateway: GatewayRun;
let generation = 0;

async function startGatewayProcess(): Promise<GatewayRun> {
  const child = spawn(process.execPath, [gatewayBin], {
    env: {
      ...process.env,
      PORT: String(port),
      STREAMLINE_DATA_DIR: dataDir,
      STREAMLINE_WORKERS: '0', // the soak runs its 4 workers itself, so that it can SIGKILL one
      STREAMLINE_ADMIN_TOKEN: ADMIN,
      STREAMLINE_WORKER_TOKEN: WORKER_TOKEN,
      STREAMLINE_FILE_ROOTS: shared,
      STREAMLINE_AUTH: 'on',
      STREAMLINE_WS_MAX_CONNECTIONS_PER_TENANT: String(SUBSCRIBERS_PER_PLAN * PLANS_PER_TENANT + 50),
      STREAMLINE_WS_MAX_SUBSCRIPTIONS_PER_TENANT: String(SUBSCRIBERS_PER_PLAN * PLANS_PER_TENANT + 50),
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let log = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      if (log.length < 100_000) log += chunk;
      if (log.includes('streamline gateway: http')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`gateway exited (${code}) before serving:\n${log}`)));
  });
  generation++;
  return { child, generation, startedAt: performance.now() };
}

async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 30_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

const workers = new Map<string, ChildProcess>();
let workerCount = 0;
function startWorker(): void {
  const id = `soak-worker-${++workerCount}`;
  const child = spawn(process.execPath, [workerBin], {
    env: { ...process.env, STREAMLINE_GATEWAY_URL: url, STREAMLINE_WORKER_TOKEN: WORKER_TOKEN, STREAMLINE_DATA_DIR: dataDir, STREAMLINE_WORKER_ID: id },
    stdio: ['ignore', 'ignore', 'ignore'],
  });
  children.add(child);
  workers.set(id, child);
  child.once('exit', () => {
    children.delete(child);
    workers.delete(id);
  });
}

// ---------------------------------------------------------------- GraphQL over HTTP

async function gql<T = any>(query: string, variables: Record<string, unknown>, token: string): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ query, variables }) });
      const body = (await response.json()) as { data?: T; errors?: { message: string; extensions?: { code?: string } }[] };
      if (body.errors?.length) throw Object.assign(new Error(JSON.stringify(body.errors)), { graphql: body.errors });
      return body.data!;
    } catch (error) {
      // the gateway restarting: try again for a while
      if ((error as { graphql?: unknown }).graphql || attempt >= 100) throw error;
      await sleep(200);
    }
  }
}

// ---------------------------------------------------------------- subscribers

/** A client's dispose rejects when its socket never opened (the gateway restarting): nothing to clean up then. */
function disposeQuietly(client: Client): void {
  Promise.resolve(client.dispose()).catch(() => {});
}
// graphql-ws clients whose connection attempt meets a gateway that is restarting reject internally with
// the socket's ErrorEvent; their subscriptions' sinks hear of it and resume. Counted, never fatal here.
let clientErrors = 0;
process.on('unhandledRejection', () => {
  clientErrors++;
});

interface Logical {
  readonly planId: string;
  readonly tenant: number;
  readonly token: string;
  readonly seqs: number[];
  foreign: number;
  duplicates: number;
  attempts: number;
  done: boolean;
  client: Client | null;
  /** Drops the current attempt's connection (as a client going away would) and resumes later with afterSeq. */
  drop: (() => void) | null;
  attemptStartedAt: number;
}
const subscribers: Logical[] = [];
const lags: number[] = [];
/** Lags of receipts outside the 15 s after the gateway restart (when 1,000 subscribers resume and replay at once). */
const steadyLags: number[] = [];
let restartedAtWall = Number.POSITIVE_INFINITY;
let delivered = 0;
const PROGRESS = 'subscription ($planId: ID!, $afterSeq: Int) { planProgress(planId: $planId, afterSeq: $afterSeq) { planId seq at } }';

function attach(sub: Logical): void {
  if (sub.done) return;
  const afterSeq = sub.seqs.at(-1) ?? 0;
  const client = createClient({ url: wsUrl, webSocketImpl: WebSocket, retryAttempts: 0, lazy: true, connectionParams: { authorization: `Bearer ${sub.token}` } });
  sub.client = client;
  sub.attempts++;
  sub.attemptStartedAt = wall();
  let ended = false;
  const resume = (delayMs = 200 + Math.random() * 800) => {
    if (ended) return;
    ended = true; // whatever the disposed client reports next (it completes its sinks) is not this attempt's end
    if (sub.client === client) (sub.client = null), (sub.drop = null);
    disposeQuietly(client);
    if (!sub.done) setTimeout(() => attach(sub), delayMs);
  };
  sub.drop = () => resume(200 + Math.random() * 1800);
  client.subscribe(
    { query: PROGRESS, variables: { planId: sub.planId, afterSeq } },
    {
      next: (result) => {
        const event = (result.data as { planProgress?: { planId: string; seq: number; at: string } } | undefined)?.planProgress;
        if (!event) return;
        const now = wall();
        delivered++;
        if (event.planId !== sub.planId) {
          sub.foreign++;
          return;
        }
        const last = sub.seqs.at(-1) ?? 0;
        if (event.seq <= last) sub.duplicates++;
        sub.seqs.push(event.seq);
        const at = Date.parse(event.at);
        if (at >= sub.attemptStartedAt) {
          lags.push(now - at);
          if (now < restartedAtWall || now > restartedAtWall + 15_000) steadyLags.push(now - at);
        }
      },
      error: () => resume(),
      complete: () => {
        if (ended) return;
        sub.done = true;
        ended = true;
        if (sub.client === client) (sub.client = null), (sub.drop = null);
        disposeQuietly(client);
      },
    },
  );
}

/** Drops attached subscribers at random; each resumes (attach) with afterSeq = the last seq it saw. */
function churn(): NodeJS.Timeout {
  return setInterval(() => {
    for (const sub of subscribers) {
      if (sub.done || !sub.drop || Math.random() >= DROP_PER_SECOND) continue;
      sub.drop();
    }
  }, 1000);
}

function rssOf(child: ChildProcess): number {
  const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

// ---------------------------------------------------------------- the run

const failures: string[] = [];
const rss: { at: number; generation: number; mib: number }[] = [];
let rssTimer: NodeJS.Timeout | null = null;
let churnTimer: NodeJS.Timeout | null = null;

try {
  say(`soak: ${TENANTS} tenants × ${PLANS_PER_TENANT} plans, ${SUBSCRIBERS_PER_PLAN} subscribers per plan, ${WORKERS} workers; at most ${MAX_MINUTES} min; load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  gateway = await startGatewayProcess();
  for (let i = 0; i < WORKERS; i++) startWorker();
  rssTimer = setInterval(() => {
    try {
      rss.push({ at: performance.now() - started, generation: gateway.generation, mib: rssOf(gateway.child) / 2 ** 20 });
    } catch {
      // between two gateway processes
    }
  }, RSS_EVERY_MS);

  // tenants, their tokens and models
  const tenants: { id: string; token: string; modelId: string }[] = [];
  for (let t = 0; t < TENANTS; t++) {
    const { createTenant } = await gql(`mutation ($name: String!) { createTenant(name: $name) { id } }`, { name: `soak-${t}` }, ADMIN);
    const { createApiToken } = await gql(`mutation ($id: ID!) { createApiToken(tenantId: $id, role: ADMIN) { token } }`, { id: createTenant.id }, ADMIN);
    const token = createApiToken.token as string;
    const { registerModel } = await gql(`mutation ($input: RegisterModelInput!) { registerModel(input: $input) { id } }`, { input: { name: 'stories260K', source: STORIES, tokenizer: TOKENIZER } }, token);
    tenants.push({ id: createTenant.id, token, modelId: registerModel.id });
  }

  // 50 plans: tiny dry runs and short trainings, round-robin across tenants, all within the quotas
  // (a training reports one event per step: about 600 events each; measured here, 300 FFN steps take about 6 s alone)
  const kinds = [
    (modelId: string) => ({ modelId, layersToPrune: 1, dryRun: true, calibration: { source: TEXT, samples: 8, seqLen: 64 } }),
    (modelId: string) => ({ modelId, layersToPrune: 2, replacement: 'FFN', calibration: { source: TEXT, samples: 16, seqLen: 64 }, training: { minSteps: 600, batchSize: 4, checkpointEvery: 50 } }),
    (modelId: string) => ({ modelId, layersToPrune: 1, replacement: 'LINEAR', calibration: { source: TEXT, samples: 8, seqLen: 64 } }),
    (modelId: string) => ({ modelId, layersToPrune: 2, replacement: 'SWIGLU', calibration: { source: TEXT, samples: 16, seqLen: 64 }, training: { minSteps: 600, batchSize: 4, checkpointEvery: 50 } }),
  ];
  const plans: { id: string; tenant: number }[] = [];
  // the tenants create their plans side by side, each one after the other
  await Promise.all(tenants.map(async (_, t) => {
    for (let i = 0; i < PLANS_PER_TENANT; i++) {
      const input = kinds[(i + t) % kinds.length](tenants[t].modelId);
      const { createPruningPlan } = await gql(`mutation ($input: CreatePruningPlanInput!) { createPruningPlan(input: $input) { id } }`, { input }, tenants[t].token);
      const plan = { id: createPruningPlan.id as string, tenant: t };
      plans.push(plan);
      // its subscribers attach over the next 3 s (some while it is queued, some while it runs)
      for (let s = 0; s < SUBSCRIBERS_PER_PLAN; s++) {
        const sub: Logical = { planId: plan.id, tenant: plan.tenant, token: tenants[plan.tenant].token, seqs: [], foreign: 0, duplicates: 0, attempts: 0, done: false, client: null, drop: null, attemptStartedAt: 0 };
        subscribers.push(sub);
        setTimeout(() => attach(sub), Math.random() * 3_000);
      }
      churnTimer ??= churn();
    }
  }));
  const plansCreatedAt = performance.now();
  say(`${plans.length} plans created, ${subscribers.length} logical subscribers attaching`);

  // another tenant's plan is as if absent
  const probe = await new Promise<string>((resolve) => {
    const client = createClient({ url: wsUrl, webSocketImpl: WebSocket, retryAttempts: 0, connectionParams: { authorization: `Bearer ${tenants[1].token}` } });
    client.subscribe({ query: PROGRESS, variables: { planId: plans.find((p) => p.tenant === 0)!.id } }, {
      next: (result) => resolve(result.errors ? JSON.stringify(result.errors) : `an event: ${JSON.stringify(result.data)}`),
      error: (error) => resolve(JSON.stringify(error)),
      complete: () => resolve('complete'),
    });
  });
  if (!probe.includes('NOT_FOUND')) failures.push(`another tenant's planProgress answered ${probe.slice(0, 200)}, not NOT_FOUND`);
  else say('another tenant\'s planProgress: NOT_FOUND, as for an absent plan');

  const statusOf = async () => {
    const counts: Record<string, number> = {};
    for (const tenant of tenants) {
      const { plans: list } = await gql(`{ plans { id status } }`, {}, tenant.token);
      for (const plan of list) counts[plan.status] = (counts[plan.status] ?? 0) + 1;
    }
    return counts;
  };

  // a worker SIGKILLed while it holds a plan, replaced by a new one
  let killed = false;
  /** When the last plan finished (±2 s): the rates are over the time plans were running. */
  let lastFinishedAt = performance.now();
  let restarted = false;
  const deadline = started + MAX_MINUTES * 60_000 - 30_000;
  for (;;) {
    await sleep(2000);
    const counts = await statusOf();
    const finished = (counts.SUCCEEDED ?? 0) + (counts.FAILED ?? 0) + (counts.CANCELLED ?? 0);
    if (finished < plans.length) lastFinishedAt = performance.now();
    const attached = subscribers.filter((s) => s.client !== null).length;
    say(`plans ${JSON.stringify(counts)}; subscribers attached ${attached}, done ${subscribers.filter((s) => s.done).length}; events delivered ${delivered}`);
    if (!killed && (counts.RUNNING ?? 0) > 0 && performance.now() - plansCreatedAt > 10_000) {
      const [id, victim] = [...workers.entries()][Math.floor(Math.random() * workers.size)];
      victim.kill('SIGKILL');
      killed = true;
      say(`SIGKILLed worker ${id} (pid ${victim.pid}); its plan waits for its lease to run out; a new worker takes its place`);
      startWorker();
    }
    if (!restarted && performance.now() - plansCreatedAt > 30_000) {
      say(`restarting the gateway (SIGTERM, then a new process on port ${port} and the same data)`);
      restartedAtWall = wall();
      await stopChild(gateway.child);
      gateway = await startGatewayProcess();
      restarted = true;
      say(`gateway generation ${gateway.generation} serving`);
    }
    // done when every plan and subscriber is, and the gateway serving now has run past its warm-up (RSS baseline and two samples after it)
    const sampled = restarted && performance.now() - gateway.startedAt >= WARM_UP_MS + 2 * RSS_EVERY_MS + 1_000;
    if (finished === plans.length && subscribers.every((s) => s.done) && sampled) break;
    if (performance.now() > deadline) {
      failures.push(`not finished within ${MAX_MINUTES} minutes: ${JSON.stringify(counts)}, ${subscribers.filter((s) => !s.done).length} subscribers still waiting`);
      break;
    }
  }
  const runSeconds = (lastFinishedAt - plansCreatedAt) / 1000;
  if (!killed) failures.push('no worker was SIGKILLed: no plan was running at the time');
  if (churnTimer) clearInterval(churnTimer);
  try {
    rss.push({ at: performance.now() - started, generation: gateway.generation, mib: rssOf(gateway.child) / 2 ** 20 });
  } catch {
    // gone
  }

  // ---------------------------------------------------------------- checks
  const lastSeq = new Map<string, number>();
  for (const plan of plans) {
    const { plan: stored } = await gql(`query ($id: ID!) { plan(id: $id) { status events(limit: 1) { seq } } }`, { id: plan.id }, tenants[plan.tenant].token);
    if (stored.status !== 'SUCCEEDED') failures.push(`plan ${plan.id} ended ${stored.status}`);
    lastSeq.set(plan.id, stored.events.at(-1)?.seq ?? 0);
  }
  let incomplete = 0;
  let foreign = 0;
  let duplicates = 0;
  for (const sub of subscribers) {
    const expected = lastSeq.get(sub.planId)!;
    const exact = sub.seqs.length === expected && sub.seqs.every((seq, i) => seq === i + 1);
    if (!exact) incomplete++;
    foreign += sub.foreign;
    duplicates += sub.duplicates;
  }
  if (incomplete > 0) {
    failures.push(`${incomplete} of ${subscribers.length} logical subscribers did not see seq 1..last of their plan exactly once in order`);
    for (const sub of subscribers.filter((s) => !(s.seqs.length === lastSeq.get(s.planId) && s.seqs.every((seq, i) => seq === i + 1))).slice(0, 5)) {
      const gap = sub.seqs.findIndex((seq, i) => seq !== i + 1);
      console.log(`  e.g. plan ${sub.planId}: ${sub.seqs.length} of ${lastSeq.get(sub.planId)} events, first out of place at index ${gap} (${sub.seqs.slice(Math.max(0, gap - 2), gap + 3).join(',')}), ${sub.attempts} attempts`);
    }
  }
  if (foreign > 0) failures.push(`${foreign} events reached a subscriber of another plan`);
  if (duplicates > 0) failures.push(`${duplicates} duplicate or out-of-order events`);
  const serving = rss.filter((sample) => sample.generation === gateway.generation);
  const warm = serving.find((sample) => sample.at >= gateway.startedAt - started + WARM_UP_MS);
  const end = serving.at(-1);
  if (!warm || !end) failures.push(`the serving gateway ran less than its 1-minute warm-up: no RSS baseline`);
  else if (end.mib > 1.2 * warm.mib) failures.push(`gateway RSS grew from ${warm.mib.toFixed(1)} MiB after warm-up to ${end.mib.toFixed(1)} MiB (> 1.2×)`);

  // ---------------------------------------------------------------- report
  lags.sort((a, b) => a - b);
  steadyLags.sort((a, b) => a - b);
  const pctOf = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))].toFixed(1) : 'n/a');
  const pct = (p: number) => pctOf(lags, p);
  const events = [...lastSeq.values()].reduce((a, b) => a + b, 0);
  const attempts = subscribers.reduce((sum, s) => sum + s.attempts, 0);
  console.log('\nsoak summary');
  console.log(`  plans: ${plans.length} from ${TENANTS} tenants in ${runSeconds.toFixed(0)} s: ${((plans.length / runSeconds) * 60).toFixed(1)} plans/min`);
  console.log(`  events: ${events} stored (${(events / runSeconds).toFixed(1)}/s), ${delivered} delivered (${(delivered / runSeconds).toFixed(0)}/s) to ${subscribers.length} logical subscribers over ${attempts} subscriptions (${attempts - subscribers.length} resumptions with afterSeq)`);
  console.log(`  lag (report → receipt, live deliveries): p50 ${pct(50)} ms, p95 ${pct(95)} ms, p99 ${pct(99)} ms, max ${lags.length ? lags.at(-1)!.toFixed(1) : 'n/a'} ms over ${lags.length} receipts`);
  console.log(`  lag outside the 15 s after the gateway restart: p50 ${pctOf(steadyLags, 50)} ms, p95 ${pctOf(steadyLags, 95)} ms, p99 ${pctOf(steadyLags, 99)} ms over ${steadyLags.length} receipts`);
  console.log(`  worker SIGKILLed: ${killed}; gateway restarted: ${restarted}; client connection errors (resumed): ${clientErrors}`);
  console.log(`  gateway RSS every ${RSS_EVERY_MS / 1000} s (generation: MiB): ${rss.map((s) => `${(s.at / 1000).toFixed(0)}s g${s.generation}:${s.mib.toFixed(0)}`).join(', ')}`);
  if (warm && end) console.log(`  RSS after warm-up ${warm.mib.toFixed(1)} MiB → at the end ${end.mib.toFixed(1)} MiB (${(end.mib / warm.mib).toFixed(2)}×, limit 1.2×)`);
  console.log(`  load average at the end: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  console.log(failures.length === 0 ? '\nsoak: PASSED' : `\nsoak: FAILED\n  - ${failures.join('\n  - ')}`);
} catch (error) {
  failures.push((error as Error).stack ?? String(error));
  console.log(`\nsoak: FAILED\n  - ${(error as Error).stack ?? error}`);
} finally {
  if (rssTimer) clearInterval(rssTimer);
  if (churnTimer) clearInterval(churnTimer);
  for (const sub of subscribers) {
    sub.done = true;
    if (sub.client) disposeQuietly(sub.client);
  }
  await Promise.all([...workers.values()].map((child) => stopChild(child, 'SIGTERM', 10_000)));
  await Promise.all([...children].map((child) => stopChild(child, 'SIGTERM', 10_000)));
  rmSync(dataDir, { recursive: true, force: true });
}
process.exit(failures.length === 0 ? 0 : 1);
