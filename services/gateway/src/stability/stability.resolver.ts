import 'reflect-metadata';
import { FieldResolver, Resolver, Root } from 'type-graphql';
import { PlanService } from '../plans/plan.service.js';
import { PruningPlan } from '../plans/plan.type.js';
import { StabilityReport } from './stability.type.js';

@Resolver(() => StabilityReport)
export class StabilityResolver {
  constructor(private readonly plansService: PlanService) {}

  @FieldResolver(() => PruningPlan)
  plan(@Root() report: StabilityReport): Promise<PruningPlan> {
    return this.plansService.require(report.planId, 'planId');
  }
}
