/**
 * The gateway's HTTP server: GraphQL over HTTP (Apollo Server on express) and over WebSocket
 * (graphql-ws) on the same port and path, plus liveness and readiness probes and Prometheus metrics.
 * Every public operation needs a tenant's API token; the first start creates the first admin token.
 */
import 'reflect-metadata';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { expressMiddleware } from '@as-integrations/express5';
import express from 'express';
import { GraphQLError, NoSchemaIntrospectionCustomRule, specifiedRules } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer, type WebSocket } from 'ws';
import { acceptedWorkerTokens } from './auth/auth.settings.js';
import type { GatewayContext, Services } from './context.js';
import { createErrorFormatter } from './error-format.js';
import { ErrorCode } from './errors.js';
import { createResolverContainer, createServices } from './gateway.js';
import { takeTurns } from './limits/fair-execution.js';
import { cors, deadline, deadlinePlugin, graphqlRequestGuard, jsonErrors, notFound, requestSignal } from './limits/http-transport.js';
import { limitsFromEnv, type GatewayLimits } from './limits/limits.settings.js';
import { queryLimitsRule, withoutSuggestions, withQueryLimitCode } from './limits/query-limits.js';
import { websocketGuards } from './limits/ws-guards.js';
import { createMetrics } from './metrics.js';
import type { InspectModel } from './models/model.service.js';
import { createGatewayPubSub, inProcessPlanEventBus } from './events/plan-events.js';
import { PlanStore } from './plans/plan.store.js';
import { startPostgresPlanEventBus, type PostgresPlanEventBus } from './events/postgres-plan-events.js';
import { ProgressStore } from './progress/progress.store.js';
import { buildGatewaySchema } from './schema.js';
import { openDatabase, type Database } from './store/database.js';
import type { SourcePolicy } from './sources/source.settings.js';

export const GRAPHQL_PATH = '/graphql';

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
  /** Per-tenant plan quotas and bounds on plan settings (STREAMLINE_TENANT_MAX_*, STREAMLINE_PLAN_MAX_*; see plans/plan.limits.ts). */
  readonly planLimits?: import('./plans/plan.limits.js').PlanLimits;
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
  const database = await openDatabase({ dataDir: options.dataDir, databaseUrl: options.databaseUrl });
  let httpServer: Server | null = null;
  let replicaBus: PostgresPlanEventBus | null = null;
  try {
    const pubSub = createGatewayPubSub();
    const localBus = inProcessPlanEventBus(pubSub);
    // With PostgreSQL there may be other replicas: their subscribers hear this one's plans, and back.
    if (database.dialect === 'postgres') {
      replicaBus = await startPostgresPlanEventBus({
        url: options.databaseUrl!,
        db: database.db,
        local: localBus,
        plans: new PlanStore(database.db),
        progress: new ProgressStore(database.db),
        log,
      });
    }
    const bus = replicaBus ?? localBus;
    const auth = options.auth ?? 'on';
    if (auth !== 'on' && auth !== 'off') throw new Error(`auth must be 'on' or 'off', not ${JSON.stringify(auth)}`);
    const workerTokens = acceptedWorkerTokens(options);
    const workerToken = workerTokens[0];
    const services = createServices(database.db, {
      bus,
      leaseMs: options.leaseMs,
      defaultCalibrationSource: options.defaultCalibrationSource,
      inspectModel: options.inspectModel,
      auth,
      workerToken,
      workerTokens,
      storage: options.storage,
      storageEnv: options.storageEnv,
      sources: { policy: options.sources, dataDir: resolve(options.dataDir ?? './.streamline') },
      planLimits: options.planLimits,
      dataDir: options.dataDir,
    });
    let adminToken: string | null = null;
    if (auth === 'off') {
      log('streamline gateway: WARNING: authentication is OFF (STREAMLINE_AUTH=off): anyone who can reach this port acts as the admin of the default tenant. For local development only.');
    }
    // With auth off, a first admin token is only stored when one is given; otherwise the first start
    // with auth on creates (and prints) it.
    if (auth === 'on' || options.adminToken !== undefined) {
      const bootstrapped = await services.auth.bootstrap(options.adminToken);
      adminToken = bootstrapped?.token ?? null;
      if (bootstrapped?.created) {
        log(`streamline gateway: created the first admin token (default tenant). It is shown only this once and stored hashed; keep it:\n\n    ${bootstrapped.token}\n`);
      }
      if (bootstrapped?.revoked) log('streamline gateway: WARNING: STREAMLINE_ADMIN_TOKEN was revoked and stays refused (a restart never revives a token); set a new value to replace it');
    }
    const baseContext = { services, container: createResolverContainer(services), workerToken };
    const contextFor = async (authorization: unknown): Promise<GatewayContext> => {
      const value = typeof authorization === 'string' && authorization !== '' ? authorization : null;
      return { ...baseContext, authorization: value, principal: await services.auth.principal(value) };
    };
    const localWorkers: { id: string; process: ChildProcess }[] = [];
    const metrics = createMetrics({ db: database.db, localWorkers: () => localWorkers });
    // long executions take turns with other requests (Apollo's field instrumentation wraps around this)
    const schema = takeTurns(await buildGatewaySchema(pubSub));
    const formatError = createErrorFormatter(schema, log);
    const limits = options.limits ?? limitsFromEnv({ NODE_ENV: process.env.NODE_ENV });
    const queryLimits = queryLimitsRule(limits);
    const hideSchema = (message: string) => (limits.introspection ? message : withoutSuggestions(message));

    const app = express();
    app.disable('x-powered-by');
    app.use(cors(limits.corsOrigins));
    httpServer = createServer(app);
    const server = httpServer;
    const wsServer = new WebSocketServer({ server, path: GRAPHQL_PATH });
    const wsCleanup = useServer<Record<string, unknown>, { socket: WebSocket }>(
      {
        schema,
        ...websocketGuards({
          schema,
          limits,
          rules: [...specifiedRules, queryLimits, ...(limits.introspection ? [] : [NoSchemaIntrospectionCustomRule])],
          principal: (authorization) => services.auth.principal(authorization),
        }),
        context: (ctx) => contextFor(ctx.connectionParams?.authorization ?? ctx.connectionParams?.Authorization),
        onError: (_ctx, _id, _payload, errors) => errors.map((error) => formatError({ ...error.toJSON(), message: hideSchema(error.message) }, error, ErrorCode.BAD_USER_INPUT)),
        onNext: (_ctx, _id, _payload, _args, result) =>
          result.errors ? { ...result, errors: result.errors.map((error: GraphQLError) => formatError(error.toJSON(), error)) } : undefined,
      },
      wsServer,
    );
    const apollo = new ApolloServer<GatewayContext>({
      schema,
      // stack traces go to the log (INTERNAL errors), never to clients
      includeStacktraceInErrorResponses: false,
      formatError: (formatted, error) => formatError(withQueryLimitCode(formatted, error), error),
      parseOptions: { maxTokens: limits.maxTokens },
      validationRules: [queryLimits],
      introspection: limits.introspection,
      // no "Did you mean …" suggestions (they spell out the schema) when introspection is off
      hideSchemaDetailsFromClientErrors: !limits.introspection,
      plugins: [
        ...(limits.landingPage ? [] : [ApolloServerPluginLandingPageDisabled()]),
        deadlinePlugin<GatewayContext>(),
        metrics.apolloPlugin,
        ApolloServerPluginDrainHttpServer({ httpServer: server }),
        {
          async serverWillStart() {
            return {
              async drainServer() {
                await wsCleanup.dispose();
                await new Promise<void>((resolve) => wsServer.close(() => resolve()));
              },
            };
          },
        },
      ],
    });
    await apollo.start();

    // Liveness: the process serves requests. Readiness: the database answers too.
    app.get('/healthz', (_req, res) => {
      res.status(200).json({ status: 'ok' });
    });
    app.get('/readyz', async (_req, res) => {
      try {
        await database.ping();
        // Without its LISTEN connection a replica would serve subscriptions that miss other replicas' events.
        if (replicaBus && !replicaBus.listening()) throw new Error('plan events: the PostgreSQL LISTEN connection is down (reconnecting)');
        res.status(200).json({ status: 'ready', database: database.dialect });
      } catch (error) {
        res.status(503).json({ status: 'unavailable', database: database.dialect, error: (error as Error).message });
      }
    });
    // Counts only (no tenant's data), like the probes: for a Prometheus scraper, without a token.
    app.get('/metrics', async (_req, res) => {
      try {
        const body = await metrics.registry.metrics();
        res.status(200).type(metrics.registry.contentType).send(body);
      } catch (error) {
        res.status(503).type('text/plain').send(`metrics unavailable: ${(error as Error).message}\n`);
      }
    });
    app.use(
      GRAPHQL_PATH,
      deadline(limits.requestTimeoutMs),
      graphqlRequestGuard(),
      express.json({ limit: '1mb' }),
      expressMiddleware(apollo, { context: async ({ req, res }) => ({ ...(await contextFor(req.headers.authorization)), signal: requestSignal(res) }) }),
    );
    app.use(notFound());
    app.use(jsonErrors(log, '1 MB (1048576 bytes)'));

    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 4000, options.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const { address, port } = server.address() as AddressInfo;
    const host = address.includes(':') ? `[${address}]` : address;

    const url = `http://${host}:${port}${GRAPHQL_PATH}`;
    localWorkers.push(
      ...startLocalWorkers(options.workers ?? 0, { url, workerToken, dataDir: resolve(options.dataDir ?? './.streamline'), log, storage: workerStorageEnv(options.storage, options.storageEnv) }),
    );
    const workers = localWorkers.map((worker) => worker.process);

    let closing: Promise<void> | null = null;
    return {
      url,
      wsUrl: `ws://${host}:${port}${GRAPHQL_PATH}`,
      services,
      database,
      workerToken,
      adminToken,
      auth,
      workers,
      close() {
        closing ??= (async () => {
          try {
            // Workers first: a stopping worker checkpoints and releases its plan through this gateway.
            await Promise.all(workers.map((worker) => stopWorker(worker)));
            await apollo.stop();
          } finally {
            await replicaBus?.close();
            await database.close();
          }
        })();
        return closing;
      },
    };
  } catch (error) {
    httpServer?.close();
    await replicaBus?.close();
    await database.close();
    throw error;
  }
}

/** Engine worker processes on this machine, speaking the worker API over loopback like any other worker. */
function startLocalWorkers(
  count: number,
  settings: { url: string; workerToken: string; dataDir: string; log: (message: string) => void; storage: NodeJS.ProcessEnv },
): { id: string; process: ChildProcess }[] {
  const engineRoot = dirname(createRequire(import.meta.url).resolve('@streamline/engine/package.json'));
  return Array.from({ length: count }, (_, i) => {
    const id = `local-${process.pid}-${i + 1}`;
    // workers get the worker token, never the first admin token
    const { STREAMLINE_ADMIN_TOKEN: _adminToken, STREAMLINE_STORAGE: _storage, ...inherited } = process.env;
    const child = spawn(process.execPath, [join(engineRoot, 'bin', 'streamline-worker.js')], {
      env: {
        ...inherited,
        ...settings.storage,
        STREAMLINE_GATEWAY_URL: settings.url,
        STREAMLINE_WORKER_TOKEN: settings.workerToken,
        STREAMLINE_DATA_DIR: settings.dataDir,
        STREAMLINE_WORKER_ID: id,
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    child.on('exit', (code, signal) => settings.log(`local worker ${i + 1} exited (${signal ?? code})`));
    return { id, process: child };
  });
}

/** The storage settings local workers share with this gateway: STREAMLINE_STORAGE and the S3/Hugging Face variables. */
function workerStorageEnv(storage: string | undefined, env: NodeJS.ProcessEnv | undefined): NodeJS.ProcessEnv {
  const shared = Object.fromEntries(Object.entries(env ?? {}).filter(([name]) => /^(AWS_|HF_)/.test(name) || name === 'STREAMLINE_S3_FORCE_PATH_STYLE'));
  return storage ? { ...shared, STREAMLINE_STORAGE: storage } : shared;
}

/** SIGTERM, then SIGKILL if the worker has not checkpointed and exited within the grace period. */
async function stopWorker(child: ChildProcess, graceMs = 60_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}
