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

export function inProcessPlanEventBus(pubSub: GatewayPubSub): PlanEventBus {
  return {
    publish(planId, message) {
      pubSub.publish('plan', planId, message);
    },
    subscribe(planId, listener) {
      // The pubsub's repeater adds its event listener on the first next(); calling it here, synchronously,
      // is what makes the subscription start now rather than when someone first reads from it.
      const iterator = pubSub.subscribe('plan', planId)[Symbol.asyncIterator]();
      let closed = false;
      const pump = async () => {
        for (;;) {
          const result = await iterator.next();
          if (result.done || closed) return;
          listener(result.value);
        }
      };
      void pump();
      return () => {
        closed = true;
        void iterator.return?.();
      };
    },
  };
}
