import 'reflect-metadata';
import { Ctx, Query, Resolver } from 'type-graphql';
import { requireClient } from '../auth/principal.js';
import type { GatewayContext } from '../context.js';
import { PLAN_DEFAULTS } from '../engine.js';
import { PlanDefaults } from './plan-defaults.type.js';

@Resolver()
export class PlanDefaultsResolver {
  // The engine's contract is the one source of these numbers; this only serves them (forms pre-fill them).
  @Query(() => PlanDefaults, { description: "The settings a plan runs with when it leaves them out: the engine's defaults." })
  planDefaults(@Ctx() ctx: GatewayContext): PlanDefaults {
    requireClient(ctx);
    return PLAN_DEFAULTS;
  }
}
