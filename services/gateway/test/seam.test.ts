/**
 * The replay/live seam of planProgress, made deterministic: the store's replay read is held at a gate
 * while events are appended, before and after the read itself, and the stream must still hold every
 * event once.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createServices } from '../src/gateway.js';
import { ModelStore } from '../src/models/model.store.js';
import { inProcessPlanEventBus, type PlanEventBus } from '../src/events/plan-events.js';
import { PlanLifecycle } from '../src/plans/plan.lifecycle.js';
import { PlanStore } from '../src/plans/plan.store.js';
import { PlanStage } from '../src/plans/plan.type.js';
import { ProgressService } from '../src/progress/progress.service.js';
import { ProgressStore } from '../src/progress/progress.store.js';
import type { ProgressEvent } from '../src/progress/progress.type.js';
import type { Services } from '../src/context.js';
import { openDatabase, type Database } from '../src/store/database.js';
import { STORED_MODEL, storedPlanFor } from './fixtures/stored-model.js';
import { completeAsWorker } from './fixtures/claim.js';

/** Holds the first replay read, either before it queries or after it has its rows. */
class GatedProgressStore extends ProgressStore {
  hold: 'before-read' | 'after-read' | null = null;
  // declared before the promises whose executors assign them (class fields initialise in order)
  private release!: () => void;
  private onReached!: () => void;
  readonly reached = new Promise<void>((resolve) => (this.onReached = resolve));
  private readonly gate = new Promise<void>((resolve) => (this.release = resolve));

  open(): void {
    this.release();
  }

  override async listAfter(planId: string, after: number, limit?: number): Promise<ProgressEvent[]> {
    const hold = this.hold;
    this.hold = null;
    if (hold === 'before-read') {
      this.onReached();
      await this.gate;
    }
    const rows = await super.listAfter(planId, after, limit);
    if (hold === 'after-read') {
      this.onReached();
      await this.gate;
    }
    return rows;
  }
}

describe('planProgress seam', () => {
  let dir: string;
  let database: Database;
  let bus: PlanEventBus;
  let services: Services;
  let planId: string;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'streamline-seam-'));
    database = await openDatabase({ dataDir: dir });
    bus = inProcessPlanEventBus();
    services = createServices(database.db, { bus });
    const model = await new ModelStore(database.db).insert(STORED_MODEL);
    const plan = await new PlanStore(database.db).insert(storedPlanFor(model.id));
    planId = plan.id;
    // RUNNING through the lease, as a worker's claim takes it (the plan's config is not this test's business)
    expect((await new PlanLifecycle(database.db).claimNext('seam-worker', 60_000))?.id).toBe(planId);
  });
  afterEach(async () => {
    await database.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const append = (step: number) => services.progress.appendProgress(planId, { stage: PlanStage.TRAINING, progress: step / 100, step });

  async function collect(stream: AsyncIterableIterator<ProgressEvent>): Promise<number[]> {
    const seqs: number[] = [];
    for await (const event of stream) seqs.push(event.seq);
    return seqs;
  }

  it.each(['before-read', 'after-read'] as const)('delivers every event once when events arrive while the replay is held %s', async (hold) => {
    for (const step of [1, 2, 3]) await append(step);
    const gated = new GatedProgressStore(database.db);
    gated.hold = hold;
    const progress = new ProgressService(gated, new PlanStore(database.db), services.plans, bus);

    const collected = collect(await progress.openStream(planId, 0));
    await gated.reached;
    // Before the read: 4 and 5 are both in the replay and in the live buffer (must not be doubled).
    // After the read: they are only in the live buffer (must not be lost).
    await append(4);
    await append(5);
    gated.open();
    await new Promise((resolve) => setTimeout(resolve, 10));
    await append(6);
    await completeAsWorker(services, planId, {}, 'seam-worker');
    expect(await collected).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('fills a gap in the live notifications from the store', async () => {
    const progress = new ProgressService(new ProgressStore(database.db), new PlanStore(database.db), services.plans, bus);
    const stream = await progress.openStream(planId, 0);
    const collected = collect(stream);
    await append(1);
    // an event stored without its notification (as when one replica's NOTIFY is lost)
    await new ProgressStore(database.db).append(planId, { stage: PlanStage.TRAINING, progress: 0.02, step: 2 });
    await append(3);
    await completeAsWorker(services, planId, {}, 'seam-worker');
    expect(await collected).toEqual([1, 2, 3]);
  });

  it('unsubscribes from the bus when the consumer stops reading', async () => {
    let listeners = 0;
    const counting: PlanEventBus = {
      publish: (id, message) => bus.publish(id, message),
      subscribe(id, listener) {
        listeners++;
        const unsubscribe = bus.subscribe(id, listener);
        return () => {
          listeners--;
          unsubscribe();
        };
      },
    };
    const progress = new ProgressService(new ProgressStore(database.db), new PlanStore(database.db), services.plans, counting);
    const stream = await progress.openStream(planId, 0);
    expect(listeners).toBe(1);
    const pending = stream.next(); // blocks waiting for a live event
    await new Promise((resolve) => setTimeout(resolve, 10));
    await stream.return!();
    expect(await pending).toMatchObject({ done: true });
    expect(listeners).toBe(0);
  });
});
