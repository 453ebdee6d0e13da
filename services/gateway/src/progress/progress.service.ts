import type { Backpressure } from '../context.js';
import { badInput, conflict, ErrorCode, GatewayError } from '../errors.js';
import { LiveQueue, withCleanup } from '../events/live-queue.js';
import type { PlanEventBus, PlanMessage } from '../events/plan-events.js';
import type { PlanService } from '../plans/plan.service.js';
import type { PlanStore } from '../plans/plan.store.js';
import { FINAL_STATUSES, PlanStage, PlanStatus } from '../plans/plan.type.js';
import { checkInteger, checkNumber } from '../validation.js';
import type { ProgressStore } from './progress.store.js';
import type { EventOrigin, ProgressEvent, ProgressReport } from './progress.type.js';

/** Stored events are replayed in pages of this many, so a long history is never held whole. */
const REPLAY_PAGE = 500;

export class ProgressService {
  /** planProgress streams open now, and those ended because their client was too slow (for /metrics). */
  readonly streams = { open: 0, slowDisconnects: 0 };

  constructor(
    private readonly store: ProgressStore,
    private readonly planStore: PlanStore,
    private readonly plans: PlanService,
    private readonly bus: PlanEventBus,
  ) {}

  /**
   * Stores the plan's next event (seq assigned in the store's transaction), then publishes it and the
   * plan. With `origin`, an event its run already stored is skipped: null. With `holder` (a worker's
   * report), only while that worker holds a live lease on the plan, checked in the store's UPDATE.
   */
  async appendProgress(planId: string, report: ProgressReport, origin?: EventOrigin, holder?: string): Promise<ProgressEvent | null> {
    if (!Object.values(PlanStage).includes(report.stage)) {
      throw badInput('stage', `${JSON.stringify(report.stage)} is not one of ${Object.values(PlanStage).join(', ')}`);
    }
    checkNumber('progress', report.progress, { min: 0, max: 1 });
    const stored = await this.store.append(planId, report, origin, holder);
    if (stored === 'duplicate') return null;
    if (!stored) {
      const plan = await this.plans.require(planId, 'planId');
      if (holder !== undefined && plan.status === PlanStatus.RUNNING) throw conflict(`plan ${planId} is no longer under a live lease of worker ${holder}; its progress is not its to report`);
      throw conflict(`plan ${planId} is ${plan.status}; progress can only be added to QUEUED or RUNNING plans`);
    }
    this.bus.publish(planId, { kind: 'progress', event: stored.event });
    this.plans.publish(stored.plan);
    return stored.event;
  }

  /**
   * Events of one plan with seq > afterSeq: first those stored, then live ones, with no gap or duplicate
   * at the seam, completing when the plan ends. The live subscription starts before anything is read
   * from the store; live events that arrive during the replay wait in a queue, and those the replay
   * already delivered (seq ≤ the last one sent) are dropped.
   */
  async openStream(planId: string, afterSeq: number | null | undefined, tenantId?: string, backpressure?: Backpressure): Promise<AsyncIterableIterator<ProgressEvent>> {
    const after = checkInteger('afterSeq', afterSeq ?? 0, 0);
    await this.plans.require(planId, 'planId', tenantId);
    // the seq last handed to the client, for the resume hint when it is too slow
    const position = { lastSeq: after, overflowed: false };
    const live = new LiveQueue<PlanMessage>(backpressure?.maxBuffered, () => {
      position.overflowed = true;
      this.streams.slowDisconnects++;
      backpressure?.overflow(`SLOW_SUBSCRIBER: resume planProgress with afterSeq=${position.lastSeq}`);
    });
    const unsubscribe = this.bus.subscribe(planId, (message) => live.push(message));
    this.streams.open++;
    return withCleanup(this.replayThenLive(planId, position, live), () => {
      this.streams.open--;
      unsubscribe();
      live.close();
    });
  }

  private async *replayThenLive(planId: string, position: { lastSeq: number; overflowed: boolean }, live: LiveQueue<PlanMessage>): AsyncGenerator<ProgressEvent> {
    let lastSeq = position.lastSeq;
    const sent = (seq: number) => {
      lastSeq = seq;
      position.lastSeq = seq;
    };
    // Read the status before the events: appends are refused once a plan has ended, so when it has
    // ended here, the replay that follows holds every event it will ever have.
    const plan = await this.planStore.get(planId);
    if (!plan) return;
    const stored = (after: number) => this.pagesAfter(planId, after);
    for await (const event of stored(lastSeq)) {
      yield event;
      sent(event.seq);
    }
    if (FINAL_STATUSES.has(plan.status)) return;

    for (;;) {
      const message = await live.next();
      if (message === null) {
        if (position.overflowed) {
          throw new GatewayError(ErrorCode.QUOTA_EXCEEDED, `the subscriber read too slowly: more than STREAMLINE_WS_MAX_BUFFERED_EVENTS events waited for it; resume with afterSeq=${lastSeq}`, {
            limit: 'STREAMLINE_WS_MAX_BUFFERED_EVENTS',
            afterSeq: lastSeq,
          });
        }
        return;
      }
      if (message.kind === 'progress') {
        const { event } = message;
        if (event.seq <= lastSeq) continue;
        if (event.seq === lastSeq + 1) {
          yield event;
          sent(event.seq);
          continue;
        }
        // A gap (a notification lost or reordered between replicas): the store has every event.
        for await (const missing of stored(lastSeq)) {
          yield missing;
          sent(missing.seq);
        }
      } else if (FINAL_STATUSES.has(message.plan.status)) {
        // The final plan says how many events it has: read the store only when some were not delivered
        // live (so a thousand subscribers of a plan that ends cost no read each).
        if (!(message.plan.lastSeq <= lastSeq)) {
          for await (const last of stored(lastSeq)) {
            yield last;
            sent(last.seq);
          }
        }
        return;
      }
    }
  }

  private async *pagesAfter(planId: string, after: number): AsyncGenerator<ProgressEvent> {
    let cursor = after;
    for (;;) {
      const page = await this.store.listAfter(planId, cursor, REPLAY_PAGE);
      yield* page;
      if (page.length < REPLAY_PAGE) return;
      cursor = page[page.length - 1].seq;
    }
  }
}
