import { randomUUID } from 'node:crypto';
import type { Selectable } from 'kysely';
import type { Db } from '../store/database.js';
import { isoNow, parseJson } from '../store/columns.js';
import type { ImportanceProfilesTable } from '../store/tables.js';
import type { ImportanceMetric, LayerImportance } from './importance.type.js';

export interface NewImportanceProfile {
  readonly modelId: string;
  readonly planId: string | null;
  readonly metric: ImportanceMetric;
  readonly blockSize: number;
  readonly samples: number;
  readonly seqLen: number;
  readonly startScores: number[];
}

export class ImportanceStore {
  constructor(private readonly db: Db) {}

  /** `executor`: a transaction to write in (a finishing plan's, see PlanLifecycle.finishByHolder). */
  async insert(profile: NewImportanceProfile, executor: Db = this.db): Promise<LayerImportance> {
    const row = await executor
      .insertInto('importance_profiles')
      .values({
        id: randomUUID(),
        model_id: profile.modelId,
        plan_id: profile.planId,
        metric: profile.metric,
        block_size: profile.blockSize,
        samples: profile.samples,
        seq_len: profile.seqLen,
        scores: JSON.stringify(profile.startScores),
        created_at: isoNow(),
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return toProfile(row);
  }

  async listByModel(modelId: string): Promise<LayerImportance[]> {
    const rows = await this.db.selectFrom('importance_profiles').selectAll().where('model_id', '=', modelId).orderBy('created_at').orderBy('block_size').execute();
    return rows.map(toProfile);
  }

  /** Profiles of each model (DataLoader batches), in one query. */
  async listByModels(modelIds: readonly string[]): Promise<Map<string, LayerImportance[]>> {
    const byModel = new Map<string, LayerImportance[]>(modelIds.map((id) => [id, []]));
    if (modelIds.length === 0) return byModel;
    const rows = await this.db.selectFrom('importance_profiles').selectAll().where('model_id', 'in', [...modelIds]).orderBy('created_at').orderBy('block_size').execute();
    for (const row of rows) byModel.get(row.model_id)?.push(toProfile(row));
    return byModel;
  }

  /** Profiles of each plan (DataLoader batches), in one query. */
  async listByPlans(planIds: readonly string[]): Promise<Map<string, LayerImportance[]>> {
    const byPlan = new Map<string, LayerImportance[]>(planIds.map((id) => [id, []]));
    if (planIds.length === 0) return byPlan;
    const rows = await this.db.selectFrom('importance_profiles').selectAll().where('plan_id', 'in', [...planIds]).orderBy('block_size').orderBy('metric').execute();
    for (const row of rows) byPlan.get(row.plan_id!)?.push(toProfile(row));
    return byPlan;
  }

  async listByPlan(planId: string): Promise<LayerImportance[]> {
    const rows = await this.db.selectFrom('importance_profiles').selectAll().where('plan_id', '=', planId).orderBy('block_size').orderBy('metric').execute();
    return rows.map(toProfile);
  }
}

function toProfile(row: Selectable<ImportanceProfilesTable>): LayerImportance {
  return {
    id: row.id,
    modelId: row.model_id,
    planId: row.plan_id,
    metric: row.metric as ImportanceMetric,
    blockSize: row.block_size,
    samples: row.samples,
    seqLen: row.seq_len,
    startScores: parseJson<number[]>(row.scores),
    createdAt: new Date(row.created_at),
  };
}
