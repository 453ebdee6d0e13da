/**
 * Parameter estimates per block size for one replacement kind, before a plan runs (the New plan form
 * shows them). The model is inspected again, as createPruningPlan does (config and headers only), and
 * the engine's block arithmetic — the same that picks a block size for a target sparsity — does the rest.
 */
import { layerParameters, replacementParameters, type ReplacementKind } from '../engine.js';
import type { ModelService } from '../models/model.service.js';
import type { SourceService } from '../sources/source.service.js';
import type { BlockEstimate } from './plan-estimate.type.js';

export class PlanEstimateService {
  constructor(
    private readonly models: ModelService,
    private readonly sources: SourceService,
  ) {}

  /** One estimate per block size 1 .. numLayers − 1; another tenant's model is NOT_FOUND. */
  async forModel(modelId: string, replacement: ReplacementKind, tenantId: string): Promise<BlockEstimate[]> {
    const model = await this.models.require(modelId, 'modelId', tenantId);
    const info = await this.sources.inspectModel(`model ${model.id} source`, model.source, { trusted: model.inspection?.fromPlan !== undefined });
    const perLayer = layerParameters(info.family, info.config);
    const added = replacementParameters(replacement, info.family, info.config);
    const before = info.numParameters;
    return Array.from({ length: info.config.numLayers - 1 }, (_, i) => {
      const blockSize = i + 1;
      const after = before - blockSize * perLayer + added;
      return { blockSize, parametersBefore: before, parametersAfter: after, replacementParameters: added, sparsity: (before - after) / before };
    });
  }
}
