import 'reflect-metadata';
import { Ctx, FieldResolver, Resolver, Root } from 'type-graphql';
import type { GatewayContext } from '../context.js';
import { ModelService } from '../models/model.service.js';
import { Model } from '../models/model.type.js';
import { ImportanceService } from './importance.service.js';
import { BlockScore, LayerImportance } from './importance.type.js';

@Resolver(() => LayerImportance)
export class ImportanceResolver {
  constructor(
    private readonly importanceService: ImportanceService,
    private readonly modelsService: ModelService,
  ) {}

  @FieldResolver(() => Model)
  model(@Root() profile: LayerImportance, @Ctx() ctx: GatewayContext): Promise<Model> {
    return ctx.loaders.model.load(profile.modelId);
  }

  @FieldResolver(() => [BlockScore], { description: 'One entry per possible start layer s = 0 .. numLayers - blockSize.' })
  scores(@Root() profile: LayerImportance): BlockScore[] {
    return this.importanceService.scores(profile);
  }

  @FieldResolver(() => BlockScore)
  best(@Root() profile: LayerImportance): BlockScore {
    return this.importanceService.best(profile);
  }
}
