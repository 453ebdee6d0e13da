import 'reflect-metadata';
import { Arg, Ctx, FieldResolver, ID, Int, Mutation, Query, Resolver, Root, Subscription } from 'type-graphql';
import { requireClient } from '../auth/principal.js';
import type { GatewayContext } from '../context.js';
import { ImportanceService } from '../importance/importance.service.js';
import { LayerImportance } from '../importance/importance.type.js';
import { ModelService } from '../models/model.service.js';
import { Model } from '../models/model.type.js';
import { ProgressEvent } from '../progress/progress.type.js';
import { StabilityService } from '../stability/stability.service.js';
import { StabilityReport } from '../stability/stability.type.js';
import { CreatePruningPlanInput } from './plan.input.js';
import { PlanService } from './plan.service.js';
import { PlanStatus, PruningPlan } from './plan.type.js';

@Resolver(() => PruningPlan)
export class PlanResolver {
  constructor(
    private readonly plansService: PlanService,
    private readonly modelsService: ModelService,
    private readonly importanceService: ImportanceService,
    private readonly stabilityService: StabilityService,
  ) {}

  @Query(() => PruningPlan, { nullable: true })
  plan(@Arg('id', () => ID) id: string, @Ctx() ctx: GatewayContext): Promise<PruningPlan | null> {
    return this.plansService.get(id, requireClient(ctx).tenantId);
  }

  @Query(() => [PruningPlan])
  plans(@Ctx() ctx: GatewayContext, @Arg('status', () => PlanStatus, { nullable: true }) status?: PlanStatus | null): Promise<PruningPlan[]> {
    return this.plansService.list({ status, tenantId: requireClient(ctx).tenantId });
  }

  @Mutation(() => PruningPlan)
  createPruningPlan(@Arg('input', () => CreatePruningPlanInput) input: CreatePruningPlanInput, @Ctx() ctx: GatewayContext): Promise<PruningPlan> {
    return this.plansService.create(input, requireClient(ctx).tenantId);
  }

  @Mutation(() => PruningPlan)
  cancelPlan(@Arg('id', () => ID) id: string, @Ctx() ctx: GatewayContext): Promise<PruningPlan> {
    return this.plansService.cancel(id, requireClient(ctx).tenantId);
  }

  @Mutation(() => PruningPlan, {
    description:
      'Queue a new plan with the settings of a FAILED or CANCELLED plan, on the same model, checked as a new plan is (the model READY, its files reachable, the queue quota); CONFLICT for any other status. The old plan stays as it was.',
  })
  retryPlan(@Arg('id', () => ID) id: string, @Ctx() ctx: GatewayContext): Promise<PruningPlan> {
    return this.plansService.retry(id, requireClient(ctx).tenantId);
  }

  @Subscription(() => PruningPlan, {
    description: "Changes of one plan; a finished plan is sent once; completes after the plan's final status.",
    subscribe: ({ args, context }) => {
      const ctx = context as GatewayContext;
      return ctx.services.plans.updates(args.planId as string, requireClient(ctx).tenantId, ctx.backpressure);
    },
  })
  planUpdated(@Root() plan: PruningPlan, @Arg('planId', () => ID) _planId: string): PruningPlan {
    return plan;
  }

  @FieldResolver(() => Model)
  model(@Root() plan: PruningPlan, @Ctx() ctx: GatewayContext): Promise<Model> {
    return ctx.loaders.model.load(plan.modelId);
  }

  @FieldResolver(() => [ProgressEvent], { description: 'Latest progress events, oldest first; `after` is an exclusive sequence number.' })
  events(
    @Root() plan: PruningPlan,
    @Arg('after', () => Int, { nullable: true }) after?: number | null,
    @Arg('limit', () => Int, { nullable: true }) limit?: number | null,
    @Ctx() ctx?: GatewayContext,
  ): Promise<ProgressEvent[]> {
    return ctx!.loaders.events(after, limit).load(plan.id);
  }

  @FieldResolver(() => LayerImportance, { nullable: true, description: 'Importance profile for the block size that was pruned.' })
  async importance(@Root() plan: PruningPlan, @Ctx() ctx: GatewayContext): Promise<LayerImportance | null> {
    return this.importanceService.prunedBlockOf(plan, await ctx.loaders.profilesOfPlan.load(plan.id));
  }

  @FieldResolver(() => [LayerImportance], { description: 'Every block size the plan profiled (all of them for a dry run).' })
  profiles(@Root() plan: PruningPlan, @Ctx() ctx: GatewayContext): Promise<LayerImportance[]> {
    return ctx.loaders.profilesOfPlan.load(plan.id);
  }

  @FieldResolver(() => StabilityReport, { nullable: true })
  stability(@Root() plan: PruningPlan, @Ctx() ctx: GatewayContext): Promise<StabilityReport | null> {
    return ctx.loaders.stabilityOfPlan.load(plan.id);
  }
}
