import { randomUUID } from 'node:crypto';
import type { Selectable } from 'kysely';
import { storedErrorCode, type ErrorCode } from '../errors.js';
import type { Db } from '../store/database.js';
import { creationTime, isoNow, parseJson } from '../store/columns.js';
import { DEFAULT_TENANT_ID } from '../store/migrations.js';
import type { ModelsTable } from '../store/tables.js';
import { ModelStatus, type Model, type ModelInspection } from './model.type.js';

export interface NewModel {
  readonly name: string;
  readonly source: string;
  readonly tokenizer: string | null;
  readonly status: ModelStatus;
  readonly architecture: string;
  readonly numLayers: number;
  readonly hiddenSize: number;
  readonly numParameters: number;
  readonly inspection: ModelInspection;
  /** Owner; the default tenant when absent. */
  readonly tenantId?: string;
}

export class ModelStore {
  constructor(private readonly db: Db) {}

  async insert(model: NewModel): Promise<Model> {
    const now = creationTime(); // models list oldest first, also two registered in one millisecond
    const row = await this.db
      .insertInto('models')
      .values({
        id: randomUUID(),
        name: model.name,
        source: model.source,
        tokenizer: model.tokenizer,
        status: model.status,
        error: null,
        error_code: null,
        architecture: model.architecture,
        num_layers: model.numLayers,
        hidden_size: model.hiddenSize,
        num_parameters: model.numParameters,
        info: JSON.stringify(model.inspection),
        tenant_id: model.tenantId ?? DEFAULT_TENANT_ID,
        created_at: now,
        updated_at: now,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return toModel(row);
  }

  /** The model; with `tenantId`, only when that tenant owns it. */
  async get(id: string, tenantId?: string): Promise<Model | null> {
    let query = this.db.selectFrom('models').selectAll().where('id', '=', id);
    if (tenantId !== undefined) query = query.where('tenant_id', '=', tenantId);
    const row = await query.executeTakeFirst();
    return row ? toModel(row) : null;
  }

  /** Models by id (DataLoader batches), in one query; absent ones are missing from the map. */
  async getMany(ids: readonly string[]): Promise<Map<string, Model>> {
    if (ids.length === 0) return new Map();
    const rows = await this.db.selectFrom('models').selectAll().where('id', 'in', [...ids]).execute();
    return new Map(rows.map((row) => [row.id, toModel(row)]));
  }

  /** Every model; with `tenantId`, that tenant's. */
  async list(tenantId?: string): Promise<Model[]> {
    let query = this.db.selectFrom('models').selectAll();
    if (tenantId !== undefined) query = query.where('tenant_id', '=', tenantId);
    const rows = await query.orderBy('created_at').orderBy('id').execute();
    return rows.map(toModel);
  }

  /** Marks the model FAILED with an error and its code (e.g. INVALID_WEIGHTS found while a plan read its weights). */
  async markFailed(id: string, code: ErrorCode, error: string): Promise<Model | null> {
    const row = await this.db
      .updateTable('models')
      .set({ status: ModelStatus.FAILED, error, error_code: code, updated_at: isoNow() })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirst();
    return row ? toModel(row) : null;
  }

  /** How many models (of any tenant) are registered from this source: a plan output may be one. */
  async countWithSource(source: string): Promise<number> {
    const row = await this.db.selectFrom('models').select((eb) => eb.fn.countAll<number | string>().as('count')).where('source', '=', source).executeTakeFirstOrThrow();
    return Number(row.count);
  }

  /** Deletes the model with its plans, events, profiles and reports (the foreign keys cascade). */
  async delete(id: string): Promise<boolean> {
    const result = await this.db.deleteFrom('models').where('id', '=', id).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }
}

function toModel(row: Selectable<ModelsTable>): Model {
  return {
    id: row.id,
    name: row.name,
    source: row.source,
    tokenizer: row.tokenizer,
    status: row.status as ModelStatus,
    error: row.error,
    errorCode: storedErrorCode(row.error_code),
    architecture: row.architecture,
    numLayers: row.num_layers,
    hiddenSize: row.hidden_size,
    numParameters: row.num_parameters,
    tenantId: row.tenant_id,
    createdAt: new Date(row.created_at),
    inspection: row.info === null ? null : parseJson<ModelInspection>(row.info),
  };
}
