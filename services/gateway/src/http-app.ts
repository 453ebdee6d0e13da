/**
 * The gateway's HTTP side: GraphQL over HTTP (Apollo Server on express) and over WebSocket (graphql-ws)
 * on the same port and path, with the query limits, deadline and transport guards, plus liveness and
 * readiness probes and Prometheus metrics.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { ApolloServerPluginCacheControlDisabled, ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { expressMiddleware } from '@as-integrations/express5';
import express from 'express';
import { GraphQLError, NoSchemaIntrospectionCustomRule, specifiedRules } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Backpressure, GatewayContext } from './context.js';
import { consoleRoutes } from './console/console.routes.js';
import { FILES_PATH, localFilesRoute } from './downloads/local-files.route.js';
import { createErrorFormatter } from './error-format.js';
import { ErrorCode } from './errors.js';
import { createResolverContainer } from './gateway.js';
import type { Infrastructure } from './infrastructure.js';
import { takeTurns } from './limits/fair-execution.js';
import { checkDeadline, cors, deadline, graphqlRequestGuard, jsonErrors, notFound, requestDeadline, type RequestDeadline } from './limits/http-transport.js';
import { limitsFromEnv, type GatewayLimits } from './limits/limits.settings.js';
import { queryLimitsRule, withoutSuggestions, withQueryLimitCode } from './limits/query-limits.js';
import { disconnectSlowSubscriber, websocketGuards } from './limits/ws-guards.js';
import { subscribeSharingExecutions } from './events/shared-execution.js';
import { RequestLoaders } from './loaders.js';
import { createMetrics } from './metrics.js';
import { buildGatewaySchema } from './schema.js';
import type { LocalWorker } from './workers/local-workers.js';

export const GRAPHQL_PATH = '/graphql';

export interface HttpAppSettings {
  readonly port?: number;
  readonly host?: string;
  readonly limits?: GatewayLimits;
  readonly log: (message: string) => void;
  /** The local worker processes, for /metrics (read when scraped). */
  readonly localWorkers: () => readonly LocalWorker[];
  /** The web console's build (web/dist by default); none there: the API alone. */
  readonly consoleDir?: string;
}

export interface HttpApp {
  readonly url: string;
  readonly wsUrl: string;
  /** Stops accepting work, ends subscriptions and waits for requests in flight. */
  close(): Promise<void>;
}

export async function startHttpApp(infra: Infrastructure, settings: HttpAppSettings): Promise<HttpApp> {
  const { services, database, replicaBus } = infra;
  const { log } = settings;
  const baseContext = { services, container: createResolverContainer(services), workerToken: infra.workerToken };
  const contextFor = async (authorization: unknown, deadline?: RequestDeadline): Promise<GatewayContext> => {
    const value = typeof authorization === 'string' && authorization !== '' ? authorization : null;
    return { ...baseContext, authorization: value, principal: await services.auth.principal(value), loaders: new RequestLoaders(services, deadline), deadline };
  };
  const metrics = createMetrics({
    db: database.db,
    localWorkers: settings.localWorkers,
    recentWorkers: () => services.workers.recentlySeen(),
    caches: { token: services.auth.tokens.counts, plan: infra.planCache.entries.counts },
    subscriptions: () => ({
      open: { planProgress: services.progress.streams.open, planUpdated: services.plans.streams.open },
      slowDisconnects: services.progress.streams.slowDisconnects + services.plans.streams.slowDisconnects,
    }),
  });
  // long executions take turns with other requests (Apollo's field instrumentation wraps around this)
  const schema = takeTurns(await buildGatewaySchema(infra.pubSub), undefined, (context) => checkDeadline(context as GatewayContext));
  const formatError = createErrorFormatter(schema, log);
  const limits = settings.limits ?? limitsFromEnv({ NODE_ENV: process.env.NODE_ENV });
  const queryLimits = queryLimitsRule(limits);
  const hideSchema = (message: string) => (limits.introspection ? message : withoutSuggestions(message));

  const app = express();
  app.disable('x-powered-by');
  app.use(cors(limits.corsOrigins));
  const server: Server = createServer(app);
  const wsServer = new WebSocketServer({ server, path: GRAPHQL_PATH });
  const wsCleanup = useServer<Record<string, unknown>, { socket: WebSocket }>(
    {
      schema,
      // each event runs once per distinct operation of a tenant, not once per subscriber
      subscribe: subscribeSharingExecutions((context) => {
        const principal = (context as GatewayContext).principal;
        return principal.kind === 'client' ? principal.tenantId : null;
      }),
      ...websocketGuards({
        schema,
        limits,
        rules: [...specifiedRules, queryLimits, ...(limits.introspection ? [] : [NoSchemaIntrospectionCustomRule])],
        principal: (authorization) => services.auth.principal(authorization),
      }),
      context: async (ctx) => {
        const socket = ctx.extra.socket;
        const backpressure: Backpressure = { maxBuffered: limits.maxBufferedEvents, overflow: (resume) => disconnectSlowSubscriber(socket, resume) };
        return { ...(await contextFor(ctx.connectionParams?.authorization ?? ctx.connectionParams?.Authorization)), backpressure };
      },
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
    // The gateway's own close (main.ts) drains the workers, the WebSocket server and Apollo in order;
    // Apollo's handler would stop itself and re-raise SIGTERM, cutting that short (exit 143).
    stopOnTerminationSignals: false,
    formatError: (formatted, error) => formatError(withQueryLimitCode(formatted, error), error),
    parseOptions: { maxTokens: limits.maxTokens },
    validationRules: [queryLimits],
    introspection: limits.introspection,
    // no "Did you mean …" suggestions (they spell out the schema) when introspection is off
    hideSchemaDetailsFromClientErrors: !limits.introspection,
    plugins: [
      ...(limits.landingPage ? [] : [ApolloServerPluginLandingPageDisabled()]),
      // no cache hints are set anywhere; Apollo's default cache-control plugin would instrument every field
      ApolloServerPluginCacheControlDisabled(),
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
  // The probes answer anyone: they say what is down in fixed words, and the detail goes to the log.
  app.get('/readyz', async (_req, res) => {
    try {
      await database.ping();
    } catch (error) {
      log(`readyz: the database does not answer: ${(error as Error).message}`);
      res.status(503).json({ status: 'unavailable', database: database.dialect, error: 'the database does not answer' });
      return;
    }
    // Without its LISTEN connection a replica would serve subscriptions that miss other replicas' events.
    if (replicaBus && !replicaBus.listening()) {
      res.status(503).json({ status: 'unavailable', database: database.dialect, error: 'plan events: the PostgreSQL LISTEN connection is down (reconnecting)' });
      return;
    }
    res.status(200).json({ status: 'ready', database: database.dialect });
  });
  // Counts only (no tenant's data), like the probes: for a Prometheus scraper, without a token.
  app.get('/metrics', async (_req, res) => {
    try {
      const body = await metrics.registry.metrics();
      res.status(200).type(metrics.registry.contentType).send(body);
    } catch (error) {
      log(`metrics: ${(error as Error).message}`);
      res.status(503).type('text/plain').send('metrics unavailable (see the gateway log)\n');
    }
  });
  app.use(
    GRAPHQL_PATH,
    deadline(limits.requestTimeoutMs),
    graphqlRequestGuard(),
    express.json({ limit: '1mb' }),
    expressMiddleware(apollo, { context: ({ req, res }) => contextFor(req.headers.authorization, requestDeadline(res)) }),
  );
  app.use(FILES_PATH, localFilesRoute(services, log));
  // last: the console answers only what no route above did
  const consoleApp = consoleRoutes(settings.consoleDir);
  if (consoleApp) app.use(consoleApp);
  else log('web console: no build found (npm run build -w web); serving the API only');
  app.use(notFound());
  app.use(jsonErrors(log, '1 MB (1048576 bytes)'));

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(settings.port ?? 4000, settings.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    await apollo.stop().catch(() => {});
    server.close();
    throw error;
  }
  const { address, port } = server.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;
  return {
    url: `http://${host}:${port}${GRAPHQL_PATH}`,
    wsUrl: `ws://${host}:${port}${GRAPHQL_PATH}`,
    close: () => apollo.stop(),
  };
}
