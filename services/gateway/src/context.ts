/**
 * What every resolver reaches through the request: the gateway's services. Resolver instances are made
 * per gateway (not per process), so several gateways in one process (tests) never share state.
 */
import type { ContainerType } from 'type-graphql';
import type { ImportanceService } from './importance/importance.service.js';
import type { ModelService } from './models/model.service.js';
import type { PlanService } from './plans/plan.service.js';
import type { ProgressService } from './progress/progress.service.js';
import type { StabilityService } from './stability/stability.service.js';

export interface Services {
  readonly models: ModelService;
  readonly plans: PlanService;
  readonly progress: ProgressService;
  readonly importance: ImportanceService;
  readonly stability: StabilityService;
}

export interface GatewayContext {
  readonly services: Services;
  /** Hands type-graphql this gateway's resolver instances. */
  readonly container: ContainerType;
}
