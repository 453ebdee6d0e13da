/**
 * The gateway's schema history, in code so that it ships with the service and runs the same on SQLite
 * and PostgreSQL. Append new migrations; never edit one that has been released.
 */
import { Migrator, PostgresAdapter, sql, type Kysely, type Migration } from 'kysely';
import { parsePlanSpec } from '../engine.js';
import { upgradeStoredConfigToV2 } from './plan-spec-v2.js';

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

/** The tenant that owns everything created before tenants existed, and the first admin token. */
export const DEFAULT_TENANT_ID = 'default';

/**
 * Tenants and their API tokens (only a SHA-256 of each token is stored). Models and plans get a
 * tenant; rows that have none (every row of a database from before this migration) belong to the
 * default tenant, which the migration creates.
 */
const tenants: Migration = {
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('tenants')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('api_tokens')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
      .addColumn('token_hash', 'text', (c) => c.notNull().unique())
      .addColumn('role', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('api_tokens_tenant').on('api_tokens').column('tenant_id').execute();
    await db.insertInto('tenants').values({ id: DEFAULT_TENANT_ID, name: 'default', created_at: new Date().toISOString() }).execute();
    for (const table of ['models', 'plans']) {
      await db.schema
        .alterTable(table)
        .addColumn('tenant_id', 'text', (c) => c.notNull().defaultTo(DEFAULT_TENANT_ID))
        .execute();
      await db.schema.createIndex(`${table}_tenant`).on(table).column('tenant_id').execute();
    }
  },
  async down(db: Kysely<any>) {
    for (const table of ['models', 'plans']) {
      await db.schema.dropIndex(`${table}_tenant`).execute();
      await db.schema.alterTable(table).dropColumn('tenant_id').execute();
    }
    await db.schema.dropTable('api_tokens').execute();
    await db.schema.dropTable('tenants').execute();
  },
};

/**
 * An API token's lifecycle: when it expires (optional), when it was revoked, when it was last used
 * (written at most once a minute per token), and where it came from: ENVIRONMENT (STREAMLINE_ADMIN_TOKEN),
 * GENERATED (the first admin token printed on first start) or API (createApiToken). Tokens from
 * before this migration: the `first-admin` row was the start's own token (GENERATED or given; the
 * next start with STREAMLINE_ADMIN_TOKEN set replaces it), every other row counts as API.
 */
const apiTokenLifecycle: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.alterTable('api_tokens').addColumn('expires_at', 'text').execute();
    await db.schema.alterTable('api_tokens').addColumn('revoked_at', 'text').execute();
    await db.schema.alterTable('api_tokens').addColumn('last_used_at', 'text').execute();
    await db.schema.alterTable('api_tokens').addColumn('origin', 'text', (c) => c.notNull().defaultTo('API')).execute();
    await db.updateTable('api_tokens').set({ origin: 'GENERATED' }).where('id', '=', 'first-admin').execute();
  },
  async down(db: Kysely<any>) {
    for (const column of ['origin', 'last_used_at', 'revoked_at', 'expires_at']) await db.schema.alterTable('api_tokens').dropColumn(column).execute();
  },
};

/**
 * When each plan was last claimed by a worker: claims serve the tenant whose most recent claim is the
 * oldest first (round-robin across tenants; see plans/plan.lifecycle.ts). An index for the per-tenant
 * counts that quotas and claims make.
 */
const planClaims: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.alterTable('plans').addColumn('claimed_at', 'text').execute();
    await db.schema.createIndex('plans_tenant_status').on('plans').columns(['tenant_id', 'status']).execute();
    await db.schema.createIndex('plans_tenant_claimed').on('plans').columns(['tenant_id', 'claimed_at']).execute();
  },
  async down(db: Kysely<any>) {
    await db.schema.dropIndex('plans_tenant_claimed').execute();
    await db.schema.dropIndex('plans_tenant_status').execute();
    await db.schema.alterTable('plans').dropColumn('claimed_at').execute();
  },
};

/**
 * The code of a model's or a plan's error beside its message (e.g. INVALID_WEIGHTS: a model whose
 * weights hold NaN is FAILED with it, and plans on it are refused with it). Null on older rows.
 */
const errorCodes: Migration = {
  async up(db: Kysely<any>) {
    for (const table of ['models', 'plans']) await db.schema.alterTable(table).addColumn('error_code', 'text').execute();
  },
  async down(db: Kysely<any>) {
    for (const table of ['models', 'plans']) await db.schema.alterTable(table).dropColumn('error_code').execute();
  },
};

/**
 * Every plan's config becomes a PlanSpec of version 2 (the plan contract): `version` added,
 * `training.samples` dropped, fields older rows lack filled in (see plan-spec-v2.ts). Each row is checked
 * with the contract's parser as the gateway will read it; one that does not fit stops the migration
 * (naming the plan); the upgrade leaves a version-2 spec as it is, so a rerun after a fix goes on.
 */
const planSpecV2: Migration = {
  async up(db: Kysely<any>) {
    const rows: { id: string; config: string }[] = await db.selectFrom('plans').select(['id', 'config']).execute();
    for (const row of rows) {
      const spec = upgradeStoredConfigToV2(JSON.parse(row.config));
      parsePlanSpec(spec, `the stored config of plan ${row.id}, upgraded to PlanSpec version 2,`);
      await db.updateTable('plans').set({ config: JSON.stringify(spec) }).where('id', '=', row.id).execute();
    }
  },
};

/**
 * Sweeps: a plan's candidates (PlanCandidate records of the plan contract, as JSON; [] for other plans),
 * the ids of those cancelled one by one while it runs (its worker learns of them by heartbeat), and a
 * sweep's dry-run estimate (JSON; null otherwise).
 */
const planCandidates: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.alterTable('plans').addColumn('candidates', 'text', (c) => c.notNull().defaultTo('[]')).execute();
    await db.schema.alterTable('plans').addColumn('cancelled_candidates', 'text', (c) => c.notNull().defaultTo('[]')).execute();
    await db.schema.alterTable('plans').addColumn('sweep_estimate', 'text').execute();
  },
  async down(db: Kysely<any>) {
    for (const column of ['candidates', 'cancelled_candidates', 'sweep_estimate']) await db.schema.alterTable('plans').dropColumn(column).execute();
  },
};

export const MIGRATIONS: Record<string, Migration> = {
  '0001_initial': initial,
  '0002_tenants': tenants,
  '0003_api_token_lifecycle': apiTokenLifecycle,
  '0004_plan_claims': planClaims,
  '0005_error_codes': errorCodes,
  '0006_plan_spec_v2': planSpecV2,
  '0007_plan_candidates': planCandidates,
};

export async function migrateToLatest(db: Kysely<any>, migrations: Record<string, Migration> = MIGRATIONS): Promise<void> {
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations }, migrationTableSchema: await migrationTableSchema(db) });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new Error(`database migration ${failed} failed: ${(error as Error).message ?? String(error)}`, { cause: error });
  }
}

/**
 * On PostgreSQL, the schema the connection works in (its search_path). Kysely looks for its migration
 * tables in every schema unless told which one, so a second database in another schema of the same
 * server (another deployment, or parallel tests) would otherwise make it skip creating its own.
 */
async function migrationTableSchema(db: Kysely<any>): Promise<string | undefined> {
  if (!(db.getExecutor().adapter instanceof PostgresAdapter)) return undefined;
  const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(db);
  return rows[0]?.schema ?? undefined;
}
