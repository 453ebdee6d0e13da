/**
 * One pruning plan as a script sees it: follow its progress, wait for its result, cancel it. Both
 * streams survive a dropped WebSocket: progress resumes from the last sequence number it yielded (the
 * gateway replays stored events after `afterSeq`, then streams live ones), so nothing is missed or seen
 * twice; status updates resubscribe, since the gateway sends a finished plan's final state once.
 */
import { NetworkError, PlanFailedError } from './errors.js';
import { PlanProgressDocument, PlanUpdatedDocument } from './generated/graphql.js';
import { sleep } from './http-transport.js';
import type { StreamlineClient } from './client.js';
import { FINAL_STATUSES, type Plan, type PlanSummary, type ProgressEvent } from './types.js';

export interface ProgressOptions {
  /** Start after this sequence number (exclusive); default 0, i.e. every event from the start. */
  readonly afterSeq?: number;
}

export class PlanHandle {
  constructor(
    private readonly client: StreamlineClient,
    readonly id: string,
  ) {}

  /**
   * Every progress event in order, ending when the plan ends. Reconnects after a dropped connection,
   * up to the client's `retries` times in a row, waiting longer each time.
   */
  async *progress(options: ProgressOptions = {}): AsyncGenerator<ProgressEvent> {
    let lastSeq = options.afterSeq ?? 0;
    yield* this.resubscribing(async function* (this: PlanHandle) {
      for await (const { planProgress } of this.client.subscribe(PlanProgressDocument, { planId: this.id, afterSeq: lastSeq })) {
        // seq is strictly increasing per plan; a replayed event at or before lastSeq would be a duplicate.
        if (planProgress.seq <= lastSeq) continue;
        lastSeq = planProgress.seq;
        yield planProgress;
      }
    });
  }

  /** The plan's summary each time it changes, ending with its final status. */
  async *updates(): AsyncGenerator<PlanSummary> {
    yield* this.resubscribing(async function* (this: PlanHandle) {
      for await (const { planUpdated } of this.client.subscribe(PlanUpdatedDocument, { planId: this.id })) yield planUpdated;
    });
  }

  /**
   * The finished plan with its profiles and stability report. Rejects with PlanFailedError when the
   * plan ends FAILED or CANCELLED (its `reason` is the plan's error).
   */
  async wait(): Promise<Plan> {
    for (;;) {
      const plan = await this.details();
      if (FINAL_STATUSES.has(plan.status)) return finished(plan);
      // Wait for the final status, then read the whole plan once.
      for await (const update of this.updates()) if (FINAL_STATUSES.has(update.status)) break;
    }
  }

  async cancel(): Promise<PlanSummary> {
    return this.client.cancelPlan(this.id);
  }

  /** The plan now, with profiles, report and its latest events. */
  async details(): Promise<Plan> {
    return this.client.plan(this.id);
  }

  /**
   * Runs `subscription` again after a network failure (it keeps its own resume point); gives up after
   * `retries` failures in a row, or at once on any error the server sent.
   */
  private async *resubscribing<T>(subscription: (this: PlanHandle) => AsyncGenerator<T>): AsyncGenerator<T> {
    let failures = 0;
    for (;;) {
      try {
        for await (const item of subscription.call(this)) {
          failures = 0;
          yield item;
        }
        return;
      } catch (error) {
        if (!(error instanceof NetworkError) || failures >= this.client.retries) throw error;
        failures++;
        await sleep(this.client.retryDelayMs * 2 ** (failures - 1));
      }
    }
  }
}

function finished(plan: Plan): Plan {
  if (plan.status === 'FAILED' || plan.status === 'CANCELLED') throw new PlanFailedError(plan.id, plan.status, plan.error, plan.errorCode);
  return plan;
}
