/**
 * What the gateway is built on, made once per process: the database, the plan-event bus (across
 * replicas on PostgreSQL), the services over the stores, and the first admin token.
 */
import { resolve } from 'node:path';
import { acceptedWorkerTokens } from './auth/auth.settings.js';
import type { Services } from './context.js';
import { createGatewayPubSub, inProcessPlanEventBus, type GatewayPubSub } from './events/plan-events.js';
import { startPostgresPlanEventBus, type PostgresPlanEventBus } from './events/postgres-plan-events.js';
import { createServices } from './gateway.js';
import { PlanCache, PlanStore } from './plans/plan.store.js';
import { ProgressStore } from './progress/progress.store.js';
import type { GatewayOptions } from './server.js';
import { openDatabase, type Database } from './store/database.js';

export interface Infrastructure {
  readonly database: Database;
  readonly pubSub: GatewayPubSub;
  /** The PostgreSQL LISTEN/NOTIFY bus; null on SQLite (one process, events stay in it). */
  readonly replicaBus: PostgresPlanEventBus | null;
  readonly services: Services;
  /** Plans read by id, shared by the services and told of other replicas' changes by the bus. */
  readonly planCache: PlanCache;
  readonly auth: 'on' | 'off';
  /** The token local workers are given (the first accepted one). */
  readonly workerToken: string;
  /** The admin token in plaintext when this start created or was given it; else null. */
  readonly adminToken: string | null;
  close(): Promise<void>;
}

export async function startInfrastructure(options: GatewayOptions, log: (message: string) => void): Promise<Infrastructure> {
  const auth = options.auth ?? 'on';
  if (auth !== 'on' && auth !== 'off') throw new Error(`auth must be 'on' or 'off', not ${JSON.stringify(auth)}`);
  const database = await openDatabase({ dataDir: options.dataDir, databaseUrl: options.databaseUrl, onQuery: options.onQuery });
  let replicaBus: PostgresPlanEventBus | null = null;
  const close = async () => {
    await replicaBus?.close();
    await database.close();
  };
  try {
    const pubSub = createGatewayPubSub();
    const localBus = inProcessPlanEventBus(log);
    const planCache = new PlanCache(options.planCacheMs);
    // With PostgreSQL there may be other replicas: their subscribers hear this one's plans, and back.
    if (database.dialect === 'postgres') {
      replicaBus = await startPostgresPlanEventBus({
        url: options.databaseUrl!,
        db: database.db,
        local: localBus,
        plans: new PlanStore(database.db),
        progress: new ProgressStore(database.db),
        log,
        onRemoteChange: (planId) => planCache.forget(planId),
        onListening: (listening) => planCache.setTrusted(listening),
      });
    }
    const workerTokens = acceptedWorkerTokens(options);
    const workerToken = workerTokens[0];
    const services = createServices(database.db, {
      bus: replicaBus ?? localBus,
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
      planCache,
      tokenCacheMs: options.tokenCacheMs,
    });
    const adminToken = await bootstrapAdminToken(services, auth, options.adminToken, log);
    return { database, pubSub, replicaBus, services, planCache, auth, workerToken, adminToken, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/**
 * With auth on, the first start creates (and prints) the first admin token unless one is given; with
 * auth off, a token is only stored when one is given.
 */
async function bootstrapAdminToken(services: Services, auth: 'on' | 'off', given: string | undefined, log: (message: string) => void): Promise<string | null> {
  if (auth === 'off') {
    log('streamline gateway: WARNING: authentication is OFF (STREAMLINE_AUTH=off): anyone who can reach this port acts as the admin of the default tenant. For local development only.');
    if (given === undefined) return null;
  }
  const bootstrapped = await services.auth.bootstrap(given);
  if (bootstrapped?.created) {
    log(`streamline gateway: created the first admin token (default tenant). It is shown only this once and stored hashed; keep it:\n\n    ${bootstrapped.token}\n`);
  }
  if (bootstrapped?.revoked) log('streamline gateway: WARNING: STREAMLINE_ADMIN_TOKEN was revoked and stays refused (a restart never revives a token); set a new value to replace it');
  return bootstrapped?.token ?? null;
}
