/**
 * Notifications about plans: each progress event and each change of a plan's row. One topic per plan
 * carries both, so a subscriber sees them in the order they were published (a plan's last events
 * before the status that ends it). In-process here (graphql-yoga's pubsub); a PostgreSQL LISTEN/NOTIFY
 * implementation of the same interface will carry them across gateway replicas.
 */
import { setMaxListeners } from 'node:events';
import { createPubSub } from '@graphql-yoga/subscription';
import type { PruningPlan } from '../plans/plan.type.js';
import type { ProgressEvent } from '../progress/progress.type.js';

export type PlanMessage = { readonly kind: 'progress'; readonly event: ProgressEvent } | { readonly kind: 'plan'; readonly plan: PruningPlan };

export interface PlanEventBus {
  publish(planId: string, message: PlanMessage): void;
  /** Starts listening at once (before it returns), so nothing published afterwards is missed. */
  subscribe(planId: string, listener: (message: PlanMessage) => void): () => void;
}

export type GatewayPubSub = ReturnType<typeof createGatewayPubSub>;

export function createGatewayPubSub() {
  // One listener per subscriber on a plan's topic: a thousand watching one plan is expected, not a leak.
  const eventTarget = new EventTarget();
  setMaxListeners(0, eventTarget);
  return createPubSub<{ plan: [planId: string, message: PlanMessage] }>({ eventTarget });
}

/**
 * This process's subscribers by plan: a publish calls each listener of the plan directly (one loop,
 * no per-subscriber queue or promise), so one event reaches a thousand subscribers of a plan for the
 * cost of a thousand pushes onto their own bounded queues (live-queue.ts). A listener that throws is
 * logged and skipped; the others still hear the message.
 */
export function inProcessPlanEventBus(log: (message: string) => void = console.error): PlanEventBus & { subscribers(): number } {
  const listeners = new Map<string, Set<(message: PlanMessage) => void>>();
  let count = 0;
  return {
    publish(planId, message) {
      const watching = listeners.get(planId);
      if (!watching) return;
      for (const listener of [...watching]) {
        try {
          listener(message);
        } catch (error) {
          log(`plan events: a subscriber of plan ${planId} failed: ${(error as Error).message}`);
        }
      }
    },
    subscribe(planId, listener) {
      let watching = listeners.get(planId);
      if (!watching) listeners.set(planId, (watching = new Set()));
      const own = (message: PlanMessage) => listener(message);
      watching.add(own);
      count++;
      return () => {
        if (!watching.delete(own)) return;
        count--;
        if (watching.size === 0 && listeners.get(planId) === watching) listeners.delete(planId);
      };
    },
    subscribers: () => count,
  };
}
