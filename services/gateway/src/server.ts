/**
 * The gateway's HTTP server: GraphQL over HTTP (Apollo Server on express) and over WebSocket
 * (graphql-ws) on the same port and path, plus liveness and readiness probes.
 */
import 'reflect-metadata';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { expressMiddleware } from '@as-integrations/express5';
import express from 'express';
import { GraphQLError } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import type { GatewayContext, Services } from './context.js';
import { createErrorFormatter } from './error-format.js';
import { ErrorCode } from './errors.js';
import { createResolverContainer, createServices } from './gateway.js';
import type { InspectModel } from './models/model.service.js';
import { createGatewayPubSub, inProcessPlanEventBus } from './plan-events.js';
import { buildGatewaySchema } from './schema.js';
import { openDatabase, type Database } from './store/database.js';

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
  /** Local engine worker processes to start (they use the worker API over loopback). Default 0. */
  readonly workers?: number;
  /** How long a worker's claim or heartbeat keeps a plan; default 30 s. */
  readonly leaseMs?: number;
}

export interface RunningGateway {
  readonly url: string;
  readonly wsUrl: string;
  readonly services: Services;
  readonly database: Database;
  readonly workerToken: string;
  /** The local engine worker processes. */
  readonly workers: ChildProcess[];
  /** Stops the local workers, stops accepting work, ends subscriptions, waits for requests in flight, closes the database. */
  close(): Promise<void>;
}

export async function startGateway(options: GatewayOptions = {}): Promise<RunningGateway> {
  const log = options.log ?? ((message: string) => console.error(message));
  const database = await openDatabase({ dataDir: options.dataDir, databaseUrl: options.databaseUrl });
  let httpServer: Server | null = null;
  try {
    const pubSub = createGatewayPubSub();
    const services = createServices(database.db, {
      bus: inProcessPlanEventBus(pubSub),
      leaseMs: options.leaseMs,
      defaultCalibrationSource: options.defaultCalibrationSource,
      inspectModel: options.inspectModel,
    });
    const workerToken = options.workerToken ?? randomBytes(24).toString('base64url');
    const baseContext = { services, container: createResolverContainer(services), workerToken };
    const contextFor = (authorization: unknown): GatewayContext => ({ ...baseContext, authorization: typeof authorization === 'string' ? authorization : null });
    const schema = await buildGatewaySchema(pubSub);
    const formatError = createErrorFormatter(schema, log);

    const app = express();
    httpServer = createServer(app);
    const server = httpServer;
    const wsServer = new WebSocketServer({ server, path: GRAPHQL_PATH });
    const wsCleanup = useServer<Record<string, unknown>>(
      {
        schema,
        context: (ctx) => contextFor(ctx.connectionParams?.authorization ?? ctx.connectionParams?.Authorization),
        onError: (_ctx, _id, _payload, errors) => errors.map((error) => formatError(error.toJSON(), error, ErrorCode.BAD_USER_INPUT)),
        onNext: (_ctx, _id, _payload, _args, result) =>
          result.errors ? { ...result, errors: result.errors.map((error: GraphQLError) => formatError(error.toJSON(), error)) } : undefined,
      },
      wsServer,
    );
    const apollo = new ApolloServer<GatewayContext>({
      schema,
      // stack traces go to the log (INTERNAL errors), never to clients
      includeStacktraceInErrorResponses: false,
      formatError: (formatted, error) => formatError(formatted, error),
      plugins: [
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
        res.status(200).json({ status: 'ready', database: database.dialect });
      } catch (error) {
        res.status(503).json({ status: 'unavailable', database: database.dialect, error: (error as Error).message });
      }
    });
    app.use(GRAPHQL_PATH, express.json({ limit: '1mb' }), expressMiddleware(apollo, { context: async ({ req }) => contextFor(req.headers.authorization) }));

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
    const workers = startLocalWorkers(options.workers ?? 0, { url, workerToken, dataDir: resolve(options.dataDir ?? './.streamline'), log });

    let closing: Promise<void> | null = null;
    return {
      url,
      wsUrl: `ws://${host}:${port}${GRAPHQL_PATH}`,
      services,
      database,
      workerToken,
      workers,
      close() {
        closing ??= (async () => {
          try {
            // Workers first: a stopping worker checkpoints and releases its plan through this gateway.
            await Promise.all(workers.map((worker) => stopWorker(worker)));
            await apollo.stop();
          } finally {
            await database.close();
          }
        })();
        return closing;
      },
    };
  } catch (error) {
    httpServer?.close();
    await database.close();
    throw error;
  }
}

/** Engine worker processes on this machine, speaking the worker API over loopback like any other worker. */
function startLocalWorkers(count: number, settings: { url: string; workerToken: string; dataDir: string; log: (message: string) => void }): ChildProcess[] {
  const engineRoot = dirname(createRequire(import.meta.url).resolve('@streamline/engine/package.json'));
  return Array.from({ length: count }, (_, i) => {
    const child = spawn(process.execPath, [join(engineRoot, 'bin', 'streamline-worker.js')], {
      env: {
        ...process.env,
        STREAMLINE_GATEWAY_URL: settings.url,
        STREAMLINE_WORKER_TOKEN: settings.workerToken,
        STREAMLINE_DATA_DIR: settings.dataDir,
        STREAMLINE_WORKER_ID: `local-${process.pid}-${i + 1}`,
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    child.on('exit', (code, signal) => settings.log(`local worker ${i + 1} exited (${signal ?? code})`));
    return child;
  });
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
