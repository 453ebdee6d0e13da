import 'reflect-metadata';
import { Arg, Ctx, ID, Query, Resolver } from 'type-graphql';
import { requireClient } from '../auth/principal.js';
import type { GatewayContext } from '../context.js';
import { ReplacementKind } from '../plans/plan.type.js';
import { PlanEstimateService } from './plan-estimate.service.js';
import { BlockEstimate } from './plan-estimate.type.js';

@Resolver()
export class PlanEstimateResolver {
  constructor(private readonly estimates: PlanEstimateService) {}

  @Query(() => [BlockEstimate], { description: "Parameters before and after removing each block size (1 .. numLayers − 1) of a model with a replacement kind, net of the replacement's own." })
  planEstimates(
    @Arg('modelId', () => ID) modelId: string,
    @Arg('replacement', () => ReplacementKind, { defaultValue: ReplacementKind.LAYER }) replacement: ReplacementKind,
    @Ctx() ctx: GatewayContext,
  ): Promise<BlockEstimate[]> {
    return this.estimates.forModel(modelId, replacement, requireClient(ctx).tenantId);
  }
}
