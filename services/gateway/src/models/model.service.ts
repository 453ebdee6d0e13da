import { existsSync } from 'node:fs';
import { badInput, conflict, ErrorCode, fromEngineError, GatewayError, notFound } from '../errors.js';
import { EngineError, type ModelInfo } from '../engine.js';
import type { PlanStore } from '../plans/plan.store.js';
import { localPathOf } from '../source-uri.js';
import { checkNonEmpty } from '../validation.js';
import type { RegisterModelInput } from './model.input.js';
import type { ModelStore } from './model.store.js';
import { ModelStatus, type Model } from './model.type.js';

export type InspectModel = (path: string) => ModelInfo;

export class ModelService {
  constructor(
    private readonly store: ModelStore,
    private readonly plans: PlanStore,
    private readonly inspect: InspectModel,
  ) {}

  /** Reads the model's config through the engine (no weights) and stores what it found. */
  async register(input: RegisterModelInput, tenantId: string): Promise<Model> {
    const name = checkNonEmpty('input.name', input.name);
    const path = localPathOf('input.source', input.source);
    let tokenizer: string | null = null;
    if (input.tokenizer !== undefined && input.tokenizer !== null) {
      const tokenizerPath = localPathOf('input.tokenizer', input.tokenizer);
      if (!existsSync(tokenizerPath)) throw new GatewayError(ErrorCode.NOT_FOUND, `input.tokenizer: no tokenizer at ${tokenizerPath} (${input.tokenizer})`, { field: 'input.tokenizer' });
      tokenizer = input.tokenizer;
    }
    const info = this.inspectAt(path, input.source);
    const { config } = info;
    return this.store.insert({
      tenantId,
      name,
      source: input.source,
      tokenizer,
      status: ModelStatus.READY,
      architecture: info.family.modelType,
      numLayers: config.numLayers,
      hiddenSize: config.hiddenSize,
      numParameters: info.numParameters,
      inspection: {
        format: info.format,
        numAttentionHeads: config.numAttentionHeads,
        numKeyValueHeads: config.numKeyValueHeads,
        intermediateSize: config.intermediateSize,
        vocabSize: config.vocabSize,
        maxPositionEmbeddings: config.maxPositionEmbeddings,
        dtype: config.dtype,
      },
    });
  }

  /** `tenantId` limits the answer to that tenant's models; another tenant's model is as if absent. */
  async get(id: string, tenantId: string | undefined): Promise<Model | null> {
    return this.store.get(id, tenantId);
  }

  async require(id: string, field = 'id', tenantId?: string): Promise<Model> {
    const model = await this.store.get(id, tenantId);
    if (!model) throw new GatewayError(ErrorCode.NOT_FOUND, `${field}: model ${JSON.stringify(id)} not found`, { field });
    return model;
  }

  list(tenantId: string | undefined): Promise<Model[]> {
    return this.store.list(tenantId);
  }

  /** Deletes a model with its finished plans; refused while a plan of it is queued or running. */
  async delete(id: string, tenantId: string | undefined): Promise<boolean> {
    const model = await this.store.get(id, tenantId);
    if (!model) throw notFound('model', id);
    const active = await this.plans.countActive(id);
    if (active > 0) throw conflict(`model ${JSON.stringify(id)} has ${active} queued or running plan(s); cancel them before deleting it`);
    return this.store.delete(id);
  }

  private inspectAt(path: string, source: string): ModelInfo {
    try {
      return this.inspect(path);
    } catch (error) {
      if (error instanceof EngineError) throw fromEngineError(error, 'input.source');
      const { code, message } = error as NodeJS.ErrnoException;
      if (code === 'EACCES' || code === 'EISDIR' || code === 'ENOTDIR') throw badInput('input.source', `${source}: ${message}`);
      throw error;
    }
  }
}
