import { randomUUID } from 'node:crypto';
import type { Selectable } from 'kysely';
import type { Db } from '../store/database.js';
import { isoNow, parseJson } from '../store/columns.js';
import type { StabilityReportsTable } from '../store/tables.js';
import type { PerplexityResult, StabilityReport, TaskResult } from './stability.type.js';

export interface NewStabilityReport {
  readonly planId: string;
  readonly perplexity: PerplexityResult[];
  readonly tasks: TaskResult[];
  readonly hiddenStateCosine: number | null;
  readonly parameterReduction: number;
}

export class StabilityStore {
  constructor(private readonly db: Db) {}

  /**
   * Stores a plan's report; `stability` is the mean of the tasks' stability, null without tasks.
   * `executor`: a transaction to write in (a finishing plan's, see PlanLifecycle.finishByHolder).
   */
  async insert(report: NewStabilityReport, executor: Db = this.db): Promise<StabilityReport> {
    const stability = report.tasks.length === 0 ? null : report.tasks.reduce((sum, t) => sum + t.stability, 0) / report.tasks.length;
    const row = await executor
      .insertInto('stability_reports')
      .values({
        id: randomUUID(),
        plan_id: report.planId,
        perplexity: JSON.stringify(report.perplexity),
        tasks: JSON.stringify(report.tasks),
        stability,
        hidden_state_cosine: report.hiddenStateCosine,
        parameter_reduction: report.parameterReduction,
        created_at: isoNow(),
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return toReport(row);
  }

  /** Reports by plan (DataLoader batches), in one query. */
  async getByPlans(planIds: readonly string[]): Promise<Map<string, StabilityReport>> {
    if (planIds.length === 0) return new Map();
    const rows = await this.db.selectFrom('stability_reports').selectAll().where('plan_id', 'in', [...planIds]).execute();
    return new Map(rows.map((row) => [row.plan_id, toReport(row)]));
  }

  async getByPlan(planId: string): Promise<StabilityReport | null> {
    const row = await this.db.selectFrom('stability_reports').selectAll().where('plan_id', '=', planId).executeTakeFirst();
    return row ? toReport(row) : null;
  }
}

function toReport(row: Selectable<StabilityReportsTable>): StabilityReport {
  return {
    id: row.id,
    planId: row.plan_id,
    perplexity: parseJson<PerplexityResult[]>(row.perplexity),
    tasks: parseJson<TaskResult[]>(row.tasks),
    stability: row.stability,
    hiddenStateCosine: row.hidden_state_cosine,
    parameterReduction: row.parameter_reduction,
    createdAt: new Date(row.created_at),
  };
}
