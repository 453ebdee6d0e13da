/**
 * The gateway, put together: its infrastructure (database, plan-event bus, services, first admin
 * token: infrastructure.ts), the HTTP and WebSocket app on one port (http-app.ts), the local engine
 * workers (workers/local-workers.ts) and the output retention sweep (plans/plan.retention.ts), with one
 * close that stops them in the reverse order. The port is checked first, so a busy one creates nothing.
 */
import 'reflect-metadata';
import { resolve } from 'node:path';
import type { Services } from './context.js';
import { GRAPHQL_PATH, startHttpApp, type HttpApp } from './http-app.js';
import { startInfrastructure } from './infrastructure.js';
import { checkPortFree } from './port-check.js';
import { PlanWorkCleanup } from './plans/plan.cleanup.js';
import { OutputRetention } from './plans/plan.retention.js';
import type { GatewayLimits } from './limits/limits.settings.js';
import type { InspectModel } from './models/model.service.js';
import type { SourcePolicy } from './sources/source.settings.js';
import type { Database } from './store/database.js';
import { startLocalWorkers, stopGracefully, workerStorageEnv, type LocalWorker } from './workers/local-workers.js';
import type { ChildProcess } from 'node:child_process';

export { GRAPHQL_PATH };

export interface GatewayOptions {
  /** 0 picks a free port. Default 4000. */
  readonly port?: number;
  /** Default 127.0.0.1 (loopback only); "0.0.0.0" in containers. */
  readonly host?: string;
  /** Holds the SQLite file when no databaseUrl is given. Default ./.streamline */
  readonly dataDir?: string;
  /** PostgreSQL connection URL. */
  readonly databaseUrl?: string;
  readonly defaultCalibrationSource?: string | null;
  readonly inspectModel?: InspectModel;
  readonly log?: (message: string) => void;
  /** The token engine workers present. Default: a random one, handed to the local workers. */
  readonly workerToken?: string;
  /** STREAMLINE_WORKER_TOKENS: worker tokens accepted beside workerToken (rotation); local workers get the first. */
  readonly workerTokens?: readonly string[];
  /** Local engine worker processes to start (they use the worker API over loopback). Default 0. */
  readonly workers?: number;
  /** How long a worker's claim or heartbeat keeps a plan; default 30 s. */
  readonly leaseMs?: number;
  /**
   * 'off' (local development only; a warning is logged): requests without a valid API token act as
   * the default tenant's admin. Default 'on'.
   */
  readonly auth?: 'on' | 'off';
  /** The first admin token (stored hashed) instead of a generated one; e.g. STREAMLINE_ADMIN_TOKEN. */
  readonly adminToken?: string;
  /**
   * STREAMLINE_STORAGE: `s3://bucket/prefix` keeps checkpoints and outputs in S3; default, the data
   * directory. Handed to the local workers; never accepted from or shown in the API.
   */
  readonly storage?: string;
  /**
   * Where S3 and Hugging Face settings and credentials come from (AWS_*, STREAMLINE_S3_FORCE_PATH_STYLE,
   * HF_*), for s3:// and hf:// sources here and in the local workers. Default: process.env.
   */
  readonly storageEnv?: NodeJS.ProcessEnv;
  /** Where tenants' sources may come from (STREAMLINE_FILE_ROOTS, _S3_SOURCES, _HF); default: nowhere. */
  readonly sources?: SourcePolicy;
  /** Query limits, request deadline, WebSocket quotas, introspection and CORS (limits/limits.settings.ts). Default: limitsFromEnv({ NODE_ENV }). */
  readonly limits?: GatewayLimits;
  /**
   * STREAMLINE_TOKEN_CACHE_MS: how long an API token looked up in the store is trusted (default 5000; 0
   * off). A token revoked on another replica is refused here within this.
   */
  readonly tokenCacheMs?: number;
  /**
   * STREAMLINE_PLAN_CACHE_MS: the longest a plan read by id is kept (default 5000; 0 off). Changes made
   * here or announced by another replica (PostgreSQL NOTIFY) are seen at once; this bounds the rest.
   */
  readonly planCacheMs?: number;
  /** Told the SQL of every query the gateway sends (tests count queries with it). */
  readonly onQuery?: (sql: string) => void;
  /**
   * STREAMLINE_OUTPUT_RETENTION_DAYS: outputs of plans that SUCCEEDED more than this many days ago are
   * deleted (see plans/plan.retention.ts). Default: kept.
   */
  readonly outputRetentionDays?: number;
  /** Per-tenant plan quotas and bounds on plan settings (STREAMLINE_TENANT_MAX_*, STREAMLINE_PLAN_MAX_*; see plans/plan.limits.ts). */
  readonly planLimits?: import('./plans/plan.limits.js').PlanLimits;
  /** STREAMLINE_CONSOLE_DIR: the web console's build, served at / (default: web/dist of this repository or image). */
  readonly consoleDir?: string;
}

export interface RunningGateway {
  readonly url: string;
  readonly wsUrl: string;
  readonly services: Services;
  readonly database: Database;
  readonly workerToken: string;
  /**
   * The admin token in plaintext when this start created it (first start; it is also logged once) or
   * was given it; null otherwise (a later start, or auth off without one).
   */
  readonly adminToken: string | null;
  readonly auth: 'on' | 'off';
  /** The local engine worker processes. */
  readonly workers: ChildProcess[];
  /** Stops the local workers, stops accepting work, ends subscriptions, waits for requests in flight, closes the database. */
  close(): Promise<void>;
}

export async function startGateway(options: GatewayOptions = {}): Promise<RunningGateway> {
  const log = options.log ?? ((message: string) => console.error(message));
  await checkPortFree(options.port ?? 4000, options.host ?? '127.0.0.1');
  const infra = await startInfrastructure(options, log);
  const localWorkers: LocalWorker[] = [];
  let app: HttpApp;
  try {
    app = await startHttpApp(infra, { port: options.port, host: options.host, limits: options.limits, log, localWorkers: () => localWorkers, consoleDir: options.consoleDir });
  } catch (error) {
    await infra.close();
    throw error;
  }
  const dataDir = resolve(options.dataDir ?? './.streamline');
  localWorkers.push(...startLocalWorkers(options.workers ?? 0, { url: app.url, workerToken: infra.workerToken, dataDir, log, storage: workerStorageEnv(options.storage, options.storageEnv) }));
  const workers = localWorkers.map((worker) => worker.process);
  const retention = options.outputRetentionDays
    ? new OutputRetention(options.outputRetentionDays, infra.services.plans, infra.services.models, new PlanWorkCleanup({ dataDir, storage: options.storage, storageEnv: options.storageEnv, log }), log)
    : null;
  retention?.start();

  let closing: Promise<void> | null = null;
  return {
    url: app.url,
    wsUrl: app.wsUrl,
    services: infra.services,
    database: infra.database,
    workerToken: infra.workerToken,
    adminToken: infra.adminToken,
    auth: infra.auth,
    workers,
    close() {
      closing ??= (async () => {
        try {
          await retention?.stop();
          // Workers first: a stopping worker checkpoints and releases its plan through this gateway.
          await Promise.all(workers.map((worker) => stopGracefully(worker)));
          await app.close();
        } finally {
          await infra.close();
        }
      })();
      return closing;
    },
  };
}
