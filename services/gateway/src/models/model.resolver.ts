import 'reflect-metadata';
import { Arg, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root } from 'type-graphql';
import { requireClient } from '../auth/principal.js';
import type { GatewayContext } from '../context.js';
import { ImportanceService } from '../importance/importance.service.js';
import { LayerImportance } from '../importance/importance.type.js';
import { PruningPlan } from '../plans/plan.type.js';
import { ModelDeletion } from './model.deletion.js';
import { RegisterModelInput } from './model.input.js';
import { ModelService } from './model.service.js';
import { Model } from './model.type.js';

@Resolver(() => Model)
export class ModelResolver {
  constructor(
    private readonly modelsService: ModelService,
    private readonly deletion: ModelDeletion,
    private readonly importanceService: ImportanceService,
  ) {}

  @Query(() => Model, { nullable: true })
  model(@Arg('id', () => ID) id: string, @Ctx() ctx: GatewayContext): Promise<Model | null> {
    return this.modelsService.get(id, requireClient(ctx).tenantId);
  }

  @Query(() => [Model])
  models(@Ctx() ctx: GatewayContext): Promise<Model[]> {
    return this.modelsService.list(requireClient(ctx).tenantId);
  }

  @Mutation(() => Model)
  registerModel(@Arg('input', () => RegisterModelInput) input: RegisterModelInput, @Ctx() ctx: GatewayContext): Promise<Model> {
    return this.modelsService.register(input, requireClient(ctx).tenantId);
  }

  @Mutation(() => Boolean, {
    description:
      'Deletes a model. One with plans is refused (CONFLICT, with their count) unless force: then its queued and running plans are cancelled, and the model goes with every plan, report, work folder and output (an output registered as a model of its own stays).',
  })
  deleteModel(
    @Arg('id', () => ID) id: string,
    @Arg('force', () => Boolean, { defaultValue: false, description: 'Delete the model with its plans and their outputs.' }) force: boolean,
    @Ctx() ctx: GatewayContext,
  ): Promise<boolean> {
    return this.deletion.delete(id, requireClient(ctx).tenantId, force);
  }

  @FieldResolver(() => [LayerImportance])
  importance(@Root() model: Model, @Ctx() ctx: GatewayContext): Promise<LayerImportance[]> {
    return ctx.loaders.importanceOfModel.load(model.id);
  }

  @FieldResolver(() => ID, { nullable: true, description: 'The plan whose output this model is, when it was registered with fromPlan.' })
  fromPlan(@Root() model: Model): string | null {
    return model.inspection?.fromPlan ?? null;
  }

  @FieldResolver(() => [PruningPlan])
  plans(@Root() model: Model, @Ctx() ctx: GatewayContext): Promise<PruningPlan[]> {
    return ctx.loaders.plansOfModel.load(model.id);
  }
}
