/**
 * Plan notifications across gateway replicas that share one PostgreSQL database, via LISTEN/NOTIFY.
 *
 * Each replica delivers its own messages to its own subscribers at once (the in-process bus), and
 * sends every message as a NOTIFY carrying only references — the plan id, the kind and, for progress,
 * the event's seq — never the data: payloads stay far below PostgreSQL's 8000-byte limit, and the
 * receiving replica reads the current plan or the stored event from the database, the one source of
 * truth. A replica skips notifications it sent itself and those for plans nobody on it is watching.
 *
 * Notifications are lost while the LISTEN connection is down. The connection is reopened with backoff,
 * and then every watched plan is re-read and delivered: a plan that ended meanwhile ends its streams,
 * and progress streams fill any gap from the store when the next event arrives (ProgressService).
 */
import { createHash, randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import pg from 'pg';
import type { PlanEventBus, PlanMessage } from './plan-events.js';
import type { PlanStore } from '../plans/plan.store.js';
import type { ProgressStore } from '../progress/progress.store.js';
import type { Db } from '../store/database.js';

/** What a notification carries: who sent it, which plan, and which of its events. */
interface Notice {
  readonly origin: string;
  readonly planId: string;
  readonly kind: PlanMessage['kind'];
  readonly seq?: number;
}

export interface PostgresPlanEventBusOptions {
  readonly url: string;
  readonly db: Db;
  /** Delivers to this replica's subscribers. */
  readonly local: PlanEventBus;
  readonly plans: Pick<PlanStore, 'get'>;
  readonly progress: Pick<ProgressStore, 'listAfter'>;
  readonly log: (message: string) => void;
  /** Longest wait between reconnection attempts; default 10 s. */
  readonly maxReconnectDelayMs?: number;
  /**
   * Told of every notice from another replica (any plan, watched or not) as it arrives, before
   * anything is read: the plan cache forgets the plan.
   */
  readonly onRemoteChange?: (planId: string) => void;
  /** Told when notices stop being heard (false: the LISTEN connection is down) and when they are again (true). */
  readonly onListening?: (listening: boolean) => void;
}

export interface PostgresPlanEventBus extends PlanEventBus {
  /** The channel, derived from the database and schema, so deployments sharing a server stay apart. */
  readonly channel: string;
  /** Whether the LISTEN connection is up (readiness). */
  listening(): boolean;
  /** Resolves once the LISTEN connection is up again (tests and startup). */
  ready(): Promise<void>;
  close(): Promise<void>;
}

export async function startPostgresPlanEventBus(options: PostgresPlanEventBusOptions): Promise<PostgresPlanEventBus> {
  const { db, local, log } = options;
  const origin = randomUUID();
  const { rows } = await sql<{ name: string }>`select current_database() || '.' || current_schema() as name`.execute(db);
  const channel = `streamline_plans_${createHash('sha256').update(rows[0].name).digest('hex').slice(0, 16)}`;
  const watchers = new Map<string, number>();

  // Sends and receipts are each handled one at a time, so a replica's messages keep their order.
  let sending: Promise<void> = Promise.resolve();
  let receiving: Promise<void> = Promise.resolve();

  let client: pg.Client | null = null;
  let up = false;
  let closed = false;
  let waiters: (() => void)[] = [];
  let retryTimer: NodeJS.Timeout | null = null;
  let attempt = 0;

  /** Reads what `notice` refers to and delivers it here, after every notice before it. */
  const deliverRemote = (notice: Notice) => {
    receiving = receiving
      .then(async () => {
        const message = await load(notice);
        if (message) local.publish(notice.planId, message);
      })
      .catch((error: unknown) => log(`plan events: could not read plan ${notice.planId}: ${(error as Error).message}`));
  };
  const load = async (notice: Notice): Promise<PlanMessage | null> => {
    if (notice.kind === 'progress' && notice.seq !== undefined) {
      const [event] = await options.progress.listAfter(notice.planId, notice.seq - 1, 1);
      return event && event.seq === notice.seq ? { kind: 'progress', event } : null;
    }
    const plan = await options.plans.get(notice.planId);
    return plan ? { kind: 'plan', plan } : null;
  };

  const onNotification = (notification: pg.Notification) => {
    if (notification.channel !== channel || !notification.payload) return;
    let notice: Notice;
    try {
      notice = JSON.parse(notification.payload) as Notice;
    } catch {
      log(`plan events: ignored a malformed notification on ${channel}`);
      return;
    }
    if (notice.origin === origin) return;
    options.onRemoteChange?.(notice.planId);
    if (!watchers.has(notice.planId)) return;
    deliverRemote(notice);
  };

  const connect = async (): Promise<void> => {
    const next = new pg.Client({ connectionString: options.url });
    next.on('notification', onNotification);
    next.on('error', (error) => lost(next, error));
    next.on('end', () => lost(next, new Error('connection ended')));
    try {
      await next.connect();
      await next.query(`LISTEN "${channel}"`);
    } catch (error) {
      next.removeAllListeners();
      next.on('error', () => {});
      await next.end().catch(() => {});
      throw error;
    }
    if (closed) {
      await next.end().catch(() => {});
      return;
    }
    client = next;
    up = true;
    attempt = 0;
    for (const wake of waiters.splice(0)) wake();
  };

  const lost = (which: pg.Client, error: Error) => {
    if (which !== client || closed) return;
    client = null;
    up = false;
    options.onListening?.(false);
    which.removeAllListeners();
    which.on('error', () => {});
    void which.end().catch(() => {});
    log(`plan events: LISTEN connection lost (${error.message}); reconnecting`);
    scheduleReconnect();
  };

  const scheduleReconnect = () => {
    if (closed || retryTimer) return;
    const delay = Math.min(options.maxReconnectDelayMs ?? 10_000, 250 * 2 ** attempt);
    attempt += 1;
    retryTimer = setTimeout(async () => {
      retryTimer = null;
      try {
        await connect();
        if (up) {
          log('plan events: LISTEN connection restored');
          options.onListening?.(true);
          resync();
        }
      } catch (error) {
        log(`plan events: reconnecting failed (${(error as Error).message}); retrying`);
        scheduleReconnect();
      }
    }, delay);
  };

  // Whatever was notified while disconnected is gone: re-read every watched plan instead.
  const resync = () => {
    for (const planId of watchers.keys()) deliverRemote({ origin, planId, kind: 'plan' });
  };

  await connect();

  return {
    channel,
    publish(planId, message) {
      local.publish(planId, message);
      const notice: Notice = message.kind === 'progress' ? { origin, planId, kind: 'progress', seq: message.event.seq } : { origin, planId, kind: 'plan' };
      const payload = JSON.stringify(notice);
      sending = sending
        .then(async () => {
          await sql`select pg_notify(${channel}, ${payload})`.execute(db);
        })
        .catch((error: unknown) => log(`plan events: NOTIFY for plan ${planId} failed: ${(error as Error).message}`));
    },
    subscribe(planId, listener) {
      watchers.set(planId, (watchers.get(planId) ?? 0) + 1);
      const unsubscribe = local.subscribe(planId, listener);
      let done = false;
      return () => {
        if (done) return;
        done = true;
        unsubscribe();
        const left = (watchers.get(planId) ?? 1) - 1;
        if (left > 0) watchers.set(planId, left);
        else watchers.delete(planId);
      };
    },
    listening: () => up,
    ready() {
      return up ? Promise.resolve() : new Promise<void>((resolve) => waiters.push(resolve));
    },
    async close() {
      closed = true;
      if (retryTimer) clearTimeout(retryTimer);
      const current = client;
      client = null;
      up = false;
      waiters = [];
      await sending;
      await receiving;
      if (current) {
        current.removeAllListeners();
        current.on('error', () => {});
        await current.end().catch(() => {});
      }
    },
  };
}
