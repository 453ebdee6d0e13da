/**
 * STREAMLINE_OUTPUT_RETENTION_DAYS: pruned models are large, and a gateway that runs for months would
 * otherwise keep every one. With the setting, the output of a plan that SUCCEEDED more than that many
 * days ago is deleted from the storage (outputs/<plan id>/); the plan, its report and profiles stay, so
 * its figures remain. An output registered as a model (registerModel fromPlan) is kept: that model
 * reads it. Unset (the default): outputs are kept until their model is deleted (deleteModel force).
 *
 * Each replica sweeps at start and then hourly; deleting an output twice is harmless.
 */
import type { ModelService } from '../models/model.service.js';
import type { PlanWorkCleanup } from './plan.cleanup.js';
import type { PlanService } from './plan.service.js';
import { PlanStatus } from './plan.type.js';

export const RETENTION_SWEEP_MS = 60 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

export class OutputRetention {
  /** Plans whose output this process has removed or kept already: each is looked at once. */
  private readonly settled = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<number> | null = null;

  constructor(
    private readonly days: number,
    private readonly plans: PlanService,
    private readonly models: ModelService,
    private readonly cleanup: PlanWorkCleanup,
    private readonly log: (message: string) => void,
  ) {}

  /** Removes the outputs that expired by `now`; resolves with how many it removed. */
  async sweep(now = new Date()): Promise<number> {
    const cutoff = now.getTime() - this.days * DAY_MS;
    let removed = 0;
    for (const plan of await this.plans.list({ status: PlanStatus.SUCCEEDED })) {
      if (!plan.outputUri || !plan.finishedAt || plan.finishedAt.getTime() > cutoff || this.settled.has(plan.id)) continue;
      this.settled.add(plan.id);
      if (await this.models.isRegisteredSource(plan.outputUri)) continue;
      await this.cleanup.discardOutput(plan.id);
      removed++;
    }
    if (removed) this.log(`output retention: removed the outputs of ${removed} plan(s) that finished more than ${this.days} day(s) ago (STREAMLINE_OUTPUT_RETENTION_DAYS)`);
    return removed;
  }

  /** Sweeps now and every `intervalMs`, one sweep at a time; stop() ends it. */
  start(intervalMs = RETENTION_SWEEP_MS): void {
    const run = () => {
      this.running ??= this.sweep()
        .catch((error: unknown) => {
          this.log(`output retention: ${(error as Error).message}`);
          return 0;
        })
        .finally(() => {
          this.running = null;
        });
    };
    run();
    this.timer = setInterval(run, intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }
}
