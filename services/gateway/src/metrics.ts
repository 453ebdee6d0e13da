/**
 * Prometheus metrics at /metrics, in a registry of this gateway's own (not prom-client's global one),
 * so several gateways in one process never collide. Plan counts, queue depth and workers are read
 * from the store when scraped, so every replica on one PostgreSQL reports the same, current numbers.
 */
import type { ChildProcess } from 'node:child_process';
import type { ApolloServerPlugin } from '@apollo/server';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { CacheCounts } from './caching.js';
import { PlanStatus } from './plans/plan.type.js';
import { isoNow } from './store/columns.js';
import type { Db } from './store/database.js';

export interface GatewayMetrics {
  readonly registry: Registry;
  /** Times GraphQL HTTP requests by operation type (query, mutation, subscription; unknown when unparsed). */
  readonly apolloPlugin: ApolloServerPlugin;
}

export interface MetricsSources {
  readonly db: Db;
  /** The local engine worker processes; those alive count as workers. */
  readonly localWorkers: () => readonly { readonly id: string; readonly process: ChildProcess }[];
  /** Workers that asked this replica for a plan lately, idle ones included (WorkerService.recentlySeen). */
  readonly recentWorkers?: () => readonly string[];
  /** The read caches' hit and miss counts, by cache name (`token`, `plan`). */
  readonly caches?: Readonly<Record<string, CacheCounts>>;
  /** Subscriptions open on this gateway by kind, and those disconnected for reading too slowly. */
  readonly subscriptions?: () => { readonly open: Readonly<Record<string, number>>; readonly slowDisconnects: number };
}

export function createMetrics({ db, localWorkers, recentWorkers = () => [], caches = {}, subscriptions }: MetricsSources): GatewayMetrics {
  const registry = new Registry();

  new Counter({
    name: 'streamline_cache_requests_total',
    help: 'Reads of the gateway\'s caches (token: API tokens; plan: plans by id), by result (hit or miss); hit rate = hit / (hit + miss).',
    labelNames: ['cache', 'result'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [cache, counts] of Object.entries(caches)) {
        this.inc({ cache, result: 'hit' }, counts.hits);
        this.inc({ cache, result: 'miss' }, counts.misses);
      }
    },
  });

  new Gauge({
    name: 'streamline_cache_hit_ratio',
    help: 'Hits over all reads of each cache since the gateway started (0 before any read).',
    labelNames: ['cache'] as const,
    registers: [registry],
    collect() {
      for (const [cache, counts] of Object.entries(caches)) {
        const total = counts.hits + counts.misses;
        this.set({ cache }, total === 0 ? 0 : counts.hits / total);
      }
    },
  });

  new Gauge({
    name: 'streamline_subscriptions',
    help: 'Subscriptions open on this gateway (graphql-ws), by kind (planProgress, planUpdated).',
    labelNames: ['kind'] as const,
    registers: [registry],
    collect() {
      if (!subscriptions) return;
      for (const [kind, open] of Object.entries(subscriptions().open)) this.set({ kind }, open);
    },
  });

  new Counter({
    name: 'streamline_slow_subscribers_disconnected_total',
    help: 'Subscriptions ended because their client read more slowly than events came (STREAMLINE_WS_MAX_BUFFERED_EVENTS).',
    registers: [registry],
    collect() {
      if (!subscriptions) return;
      this.reset();
      this.inc(subscriptions().slowDisconnects);
    },
  });

  new Gauge({
    name: 'streamline_plans',
    help: 'Pruning plans by status.',
    labelNames: ['status'] as const,
    registers: [registry],
    async collect() {
      const rows = await db
        .selectFrom('plans')
        .select((eb) => ['status', eb.fn.countAll<number | string>().as('count')])
        .groupBy('status')
        .execute();
      const counts = new Map(rows.map((row) => [row.status, Number(row.count)]));
      for (const status of Object.values(PlanStatus)) this.set({ status }, counts.get(status) ?? 0);
    },
  });

  new Gauge({
    name: 'streamline_queue_depth',
    help: 'Plans waiting for a worker (QUEUED).',
    registers: [registry],
    async collect() {
      const row = await db
        .selectFrom('plans')
        .select((eb) => eb.fn.countAll<number | string>().as('count'))
        .where('status', '=', PlanStatus.QUEUED)
        .executeTakeFirstOrThrow();
      this.set(Number(row.count));
    },
  });

  new Gauge({
    name: 'streamline_workers',
    help: 'Engine workers: distinct workers holding a live lease, workers that asked this replica for a plan within the lease time, and local worker processes alive.',
    registers: [registry],
    async collect() {
      const rows = await db
        .selectFrom('plans')
        .select('worker_id')
        .distinct()
        .where('status', '=', PlanStatus.RUNNING)
        .where('worker_id', 'is not', null)
        .where('lease_expires_at', '>', isoNow())
        .execute();
      const workers = new Set([...rows.map((row) => row.worker_id as string), ...recentWorkers()]);
      for (const local of localWorkers()) {
        if (local.process.exitCode === null && local.process.signalCode === null) workers.add(local.id);
      }
      this.set(workers.size);
    },
  });

  const duration = new Histogram({
    name: 'streamline_request_duration_seconds',
    help: 'GraphQL HTTP requests, by operation type.',
    labelNames: ['operation'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });

  // one child per operation type, so that an observation does not hash its labels
  const byOperation = new Map<string, ReturnType<typeof duration.labels>>();
  const observe = (operation: string, seconds: number) => {
    let child = byOperation.get(operation);
    if (!child) byOperation.set(operation, (child = duration.labels({ operation })));
    child.observe(seconds);
  };
  const apolloPlugin: ApolloServerPlugin = {
    async requestDidStart() {
      const started = performance.now();
      let operation = 'unknown';
      return {
        async didResolveOperation({ operation: resolved }) {
          operation = resolved?.operation ?? 'unknown';
        },
        async willSendResponse() {
          observe(operation, (performance.now() - started) / 1000);
        },
      };
    },
  };

  return { registry, apolloPlugin };
}
