import 'reflect-metadata';
import { Arg, Ctx, FieldResolver, ID, Mutation, Resolver, Root } from 'type-graphql';
import { requireClient } from '../auth/principal.js';
import type { GatewayContext } from '../context.js';
import { PruningPlan } from '../plans/plan.type.js';
import { CandidateService } from './candidate.service.js';
import { PlanCandidate, SweepEstimate } from './candidate.type.js';

@Resolver(() => PruningPlan)
export class CandidateResolver {
  constructor(private readonly service: CandidateService) {}

  @FieldResolver(() => [PlanCandidate], { description: "A sweep's candidates once it has finished, by block size, then start (most redundant first), then kind; empty for other plans." })
  candidates(@Root() plan: PruningPlan): PlanCandidate[] {
    return plan.candidates;
  }

  @FieldResolver(() => SweepEstimate, { nullable: true, description: "A sweep's dry run: how many candidates, the disk and roughly the time the sweep takes; null otherwise." })
  sweepEstimate(@Root() plan: PruningPlan): SweepEstimate | null {
    return plan.sweepEstimate;
  }

  @Mutation(() => PruningPlan, {
    description:
      "Queue a plan that publishes a DONE candidate of a SUCCEEDED sweep as a pruned checkpoint, from the candidate's trained weights (nothing is trained again); evaluated like a single plan.",
  })
  exportCandidate(@Arg('planId', () => ID) planId: string, @Arg('candidateId', () => ID) candidateId: string, @Ctx() ctx: GatewayContext): Promise<PruningPlan> {
    return this.service.export(planId, candidateId, requireClient(ctx).tenantId);
  }

  @Mutation(() => PruningPlan, { description: 'Cancel one candidate of a QUEUED or RUNNING sweep: it is skipped (or stopped) and reported CANCELLED; the others go on.' })
  cancelCandidate(@Arg('planId', () => ID) planId: string, @Arg('candidateId', () => ID) candidateId: string, @Ctx() ctx: GatewayContext): Promise<PruningPlan> {
    return this.service.cancel(planId, candidateId, requireClient(ctx).tenantId);
  }
}
