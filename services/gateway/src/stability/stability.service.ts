import type { Db } from '../store/database.js';
import type { NewStabilityReport, StabilityStore } from './stability.store.js';
import type { StabilityReport } from './stability.type.js';

export class StabilityService {
  constructor(private readonly store: StabilityStore) {}

  /** `executor`: a transaction to write in (a finishing plan's). */
  save(report: NewStabilityReport, executor?: Db): Promise<StabilityReport> {
    return this.store.insert(report, executor);
  }

  forPlans(planIds: readonly string[]): Promise<Map<string, StabilityReport>> {
    return this.store.getByPlans(planIds);
  }

  forPlan(planId: string): Promise<StabilityReport | null> {
    return this.store.getByPlan(planId);
  }
}
