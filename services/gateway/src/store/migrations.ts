/**
 * The gateway's schema history, in code so that it ships with the service and runs the same on SQLite
 * and PostgreSQL. Append new migrations; never edit one that has been released.
 */
import { Migrator, type Kysely, type Migration } from 'kysely';

const initial: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('models')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('source', 'text', (c) => c.notNull())
      .addColumn('tokenizer', 'text')
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('error', 'text')
      .addColumn('architecture', 'text')
      .addColumn('num_layers', 'integer')
      .addColumn('hidden_size', 'integer')
      .addColumn('num_parameters', 'bigint')
      .addColumn('info', 'text')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('plans')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('model_id', 'text', (c) => c.notNull().references('models.id').onDelete('cascade'))
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('stage', 'text')
      .addColumn('progress', 'double precision', (c) => c.notNull().defaultTo(0))
      .addColumn('layers_to_prune', 'integer', (c) => c.notNull())
      .addColumn('target_sparsity', 'double precision')
      .addColumn('start_layer', 'integer')
      .addColumn('removed_layers', 'text', (c) => c.notNull().defaultTo('[]'))
      .addColumn('replacement', 'text', (c) => c.notNull())
      .addColumn('dry_run', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('config', 'text', (c) => c.notNull())
      .addColumn('output_uri', 'text')
      .addColumn('error', 'text')
      .addColumn('original_parameters', 'bigint')
      .addColumn('pruned_parameters', 'bigint')
      .addColumn('last_seq', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .addColumn('started_at', 'text')
      .addColumn('finished_at', 'text')
      .addColumn('worker_id', 'text')
      .addColumn('lease_expires_at', 'text')
      .execute();
    await db.schema.createIndex('plans_status_created').on('plans').columns(['status', 'created_at']).execute();
    await db.schema.createIndex('plans_model').on('plans').column('model_id').execute();

    await db.schema
      .createTable('progress_events')
      .addColumn('plan_id', 'text', (c) => c.notNull().references('plans.id').onDelete('cascade'))
      .addColumn('seq', 'integer', (c) => c.notNull())
      .addColumn('at', 'text', (c) => c.notNull())
      .addColumn('payload', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('progress_events_pk', ['plan_id', 'seq'])
      .execute();

    await db.schema
      .createTable('importance_profiles')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('model_id', 'text', (c) => c.notNull().references('models.id').onDelete('cascade'))
      .addColumn('plan_id', 'text', (c) => c.references('plans.id').onDelete('cascade'))
      .addColumn('metric', 'text', (c) => c.notNull())
      .addColumn('block_size', 'integer', (c) => c.notNull())
      .addColumn('samples', 'integer', (c) => c.notNull())
      .addColumn('seq_len', 'integer', (c) => c.notNull())
      .addColumn('scores', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('importance_profiles_model').on('importance_profiles').column('model_id').execute();
    await db.schema.createIndex('importance_profiles_plan').on('importance_profiles').column('plan_id').execute();

    await db.schema
      .createTable('stability_reports')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('plan_id', 'text', (c) => c.notNull().unique().references('plans.id').onDelete('cascade'))
      .addColumn('perplexity', 'text', (c) => c.notNull())
      .addColumn('tasks', 'text', (c) => c.notNull())
      .addColumn('stability', 'double precision')
      .addColumn('hidden_state_cosine', 'double precision')
      .addColumn('parameter_reduction', 'double precision', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute();
  },
  async down(db: Kysely<unknown>) {
    for (const table of ['stability_reports', 'importance_profiles', 'progress_events', 'plans', 'models']) {
      await db.schema.dropTable(table).execute();
    }
  },
};

export const MIGRATIONS: Record<string, Migration> = {
  '0001_initial': initial,
};

export async function migrateToLatest(db: Kysely<any>): Promise<void> {
  const migrator = new Migrator({ db, provider: { getMigrations: async () => MIGRATIONS } });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new Error(`database migration ${failed} failed: ${(error as Error).message ?? String(error)}`, { cause: error });
  }
}
