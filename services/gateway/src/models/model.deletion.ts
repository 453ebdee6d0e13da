/**
 * deleteModel: a model with plans is refused (CONFLICT, with the count), so that nobody loses plans,
 * reports and pruned outputs by accident. With `force`, its queued and running plans are cancelled
 * first (subscribers see CANCELLED; a running plan's worker stops at its next heartbeat), then the
 * model goes with every plan, and each plan's work folder, checkpoints and output are removed from the
 * gateway's data directory and storage. An output that was registered as a model of its own
 * (registerModel fromPlan) stays: that model still reads it.
 */
import { conflict, notFound } from '../errors.js';
import type { PlanWorkCleanup } from '../plans/plan.cleanup.js';
import type { PlanService } from '../plans/plan.service.js';
import { FINAL_STATUSES, PlanStatus, type PruningPlan } from '../plans/plan.type.js';
import type { ModelService } from './model.service.js';

export class ModelDeletion {
  constructor(
    private readonly models: ModelService,
    private readonly plans: PlanService,
    /** Absent when the gateway has no data directory of its own (some tests): nothing to remove. */
    private readonly cleanup: PlanWorkCleanup | undefined,
  ) {}

  async delete(id: string, tenantId: string | undefined, force: boolean): Promise<boolean> {
    const model = await this.models.get(id, tenantId);
    if (!model) throw notFound('model', id);
    const plans = await this.plans.list({ modelId: id });
    if (plans.length > 0 && !force) {
      throw conflict(
        `model ${JSON.stringify(id)} has ${plans.length} plan(s) (${countByStatus(plans)}); deleting it would delete them with their reports and outputs. ` +
          'Delete them with it: deleteModel(id, force: true), or `streamline models delete --force`',
      );
    }
    for (const plan of plans.filter((p) => !FINAL_STATUSES.has(p.status))) {
      await this.plans.cancel(plan.id).catch(() => {}); // it may have ended meanwhile
    }
    const deleted = await this.models.deleteRow(id);
    for (const plan of plans) {
      await this.cleanup?.discard(plan.id);
      if (plan.outputUri && !(await this.models.isRegisteredSource(plan.outputUri))) await this.cleanup?.discardOutput(plan.id);
    }
    return deleted;
  }
}

/** "2 SUCCEEDED, 1 RUNNING" */
function countByStatus(plans: readonly PruningPlan[]): string {
  const counts = new Map<PlanStatus, number>();
  for (const plan of plans) counts.set(plan.status, (counts.get(plan.status) ?? 0) + 1);
  return [...counts].map(([status, count]) => `${count} ${status}`).join(', ');
}
