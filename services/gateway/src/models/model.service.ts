import { badInput, ErrorCode, GatewayError } from '../errors.js';
import type { ModelInfo } from '../engine.js';
import type { ConfinedReads } from './model-inspection.js';
import type { PlanStore } from '../plans/plan.store.js';
import { PlanStatus } from '../plans/plan.type.js';
import type { SourceService } from '../sources/source.service.js';
import { checkNonEmpty } from '../validation.js';
import type { RegisterModelInput } from './model.input.js';
import type { ModelStore } from './model.store.js';
import { ModelStatus, type Model } from './model.type.js';

/** Inspects a local model (config and headers, no weights); the gateway's runs in a worker thread (model-inspection.ts). */
/** Inspects a local model; `confined`: the tenant's files it reads, checked again when opened (the thread inspection does; in-process test doubles may ignore it). */
export type InspectModel = (path: string, confined?: ConfinedReads) => ModelInfo | Promise<ModelInfo>;

const TOKENIZER_SCHEMES = ['file://', 's3://'] as const;

export class ModelService {
  constructor(
    private readonly store: ModelStore,
    private readonly plans: PlanStore,
    private readonly sources: SourceService,
  ) {}

  /**
   * Reads the model's config through the engine (no weights: for s3:// and hf:// sources, config.json
   * and the safetensors headers by ranged reads) and stores what it found.
   */
  async register(input: RegisterModelInput, tenantId: string): Promise<Model> {
    const name = checkNonEmpty('input.name', input.name);
    const hasSource = input.source !== undefined && input.source !== null;
    const hasPlan = input.fromPlan !== undefined && input.fromPlan !== null;
    if (hasSource === hasPlan) {
      throw badInput('input.source', `give exactly one of source (a file://, s3:// or hf:// URI) and fromPlan (the id of one of your SUCCEEDED plans); got ${hasSource ? 'both' : 'neither'}`);
    }
    let tokenizer: string | null = null;
    if (input.tokenizer !== undefined && input.tokenizer !== null) {
      await this.sources.checkFile('input.tokenizer', input.tokenizer, { schemes: TOKENIZER_SCHEMES, missing: ErrorCode.NOT_FOUND });
      tokenizer = input.tokenizer;
    }
    let source: string;
    let fromPlan: string | undefined;
    let info: ModelInfo;
    if (hasPlan) {
      const output = await this.planOutput(input.fromPlan!, tenantId);
      source = output.uri;
      fromPlan = output.planId;
      info = await this.sources.inspectModel('input.fromPlan', source, { trusted: true });
      // A pruned llama2.c model keeps the original's separate tokenizer unless one is given.
      if (tokenizer === null && !info.tokenizerPath) tokenizer = output.tokenizer;
    } else {
      source = input.source!;
      info = await this.sources.inspectModel('input.source', source);
    }
    const { config } = info;
    return this.store.insert({
      tenantId,
      name,
      source,
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
        ...(fromPlan ? { fromPlan } : {}),
      },
    });
  }

  /** The output of one of the tenant's plans; another tenant's plan is NOT_FOUND, as a missing one. */
  private async planOutput(planId: string, tenantId: string): Promise<{ planId: string; uri: string; tokenizer: string | null }> {
    const plan = await this.plans.get(planId, tenantId);
    if (!plan) throw new GatewayError(ErrorCode.NOT_FOUND, `input.fromPlan: plan ${JSON.stringify(planId)} not found`, { field: 'input.fromPlan' });
    if (plan.status !== PlanStatus.SUCCEEDED || !plan.outputUri) {
      const why = plan.status === PlanStatus.SUCCEEDED ? 'SUCCEEDED without an output (a dry run)' : plan.status;
      throw badInput('input.fromPlan', `plan ${JSON.stringify(planId)} is ${why}; only a SUCCEEDED plan with an output can be registered as a model`);
    }
    const original = await this.store.get(plan.modelId, tenantId);
    return { planId: plan.id, uri: plan.outputUri, tokenizer: original?.tokenizer ?? null };
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

  /** FAILED with an error and its code (see WorkerService.fail); any tenant's model, by id. */
  async markFailed(id: string, code: ErrorCode, error: string): Promise<void> {
    await this.store.markFailed(id, code, error);
  }

  list(tenantId: string | undefined): Promise<Model[]> {
    return this.store.list(tenantId);
  }

  /** Models by id (DataLoader batches). */
  getMany(ids: readonly string[]): Promise<Map<string, Model>> {
    return this.store.getMany(ids);
  }

  /** Deletes the model row with its plans, events, profiles and reports; see ModelDeletion for the checks. */
  async deleteRow(id: string): Promise<boolean> {
    const deleted = await this.store.delete(id);
    // its plans went with it (on other replicas, within their plan cache's time-to-live)
    this.plans.cache?.forgetModel(id);
    return deleted;
  }

  /** Whether another model was registered from this plan output (registerModel fromPlan). */
  async isRegisteredSource(uri: string): Promise<boolean> {
    return (await this.store.countWithSource(uri)) > 0;
  }
}
