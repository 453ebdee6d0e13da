import type { NewStabilityReport, StabilityStore } from './stability.store.js';
import type { StabilityReport } from './stability.type.js';

export class StabilityService {
  constructor(private readonly store: StabilityStore) {}

  save(report: NewStabilityReport): Promise<StabilityReport> {
    return this.store.insert(report);
  }

  forPlan(planId: string): Promise<StabilityReport | null> {
    return this.store.getByPlan(planId);
  }
}
