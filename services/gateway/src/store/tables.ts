/**
 * Row shapes of the gateway's tables, as Kysely sees them. The same columns serve SQLite and PostgreSQL:
 * timestamps are ISO-8601 text (they sort as they read), JSON is text, booleans are 0/1, so one set of
 * migrations and one set of queries fit both.
 */
import type { Generated } from 'kysely';

export interface ModelsTable {
  id: string;
  name: string;
  source: string;
  tokenizer: string | null;
  status: string;
  error: string | null;
  /** The gateway's ErrorCode of `error` (e.g. INVALID_WEIGHTS); null when none was given or on older rows. */
  error_code: string | null;
  architecture: string | null;
  num_layers: number | null;
  hidden_size: number | null;
  num_parameters: number | null;
  /** The engine's inspection (heads, vocabulary, context, dtype …) as JSON, for validating plans. */
  info: string | null;
  /** Owner; rows from before tenants existed hold the default tenant (the column's default). */
  tenant_id: Generated<string>;
  created_at: string;
  updated_at: string;
}

export interface PlansTable {
  id: string;
  model_id: string;
  status: string;
  stage: string | null;
  progress: number;
  layers_to_prune: number;
  target_sparsity: number | null;
  start_layer: number | null;
  removed_layers: string;
  replacement: string;
  dry_run: number;
  config: string;
  output_uri: string | null;
  error: string | null;
  /** The gateway's ErrorCode of `error`, when the worker reported one. */
  error_code: string | null;
  original_parameters: number | null;
  pruned_parameters: number | null;
  /** Last progress event's sequence number; bumped in the same transaction that inserts the event. */
  last_seq: Generated<number>;
  created_at: string;
  updated_at: string;
  started_at: string | null;
  finished_at: string | null;
  worker_id: string | null;
  lease_expires_at: string | null;
  /** Owner (the model's tenant); rows from before tenants existed hold the default tenant. */
  tenant_id: Generated<string>;
  /** When a worker last claimed the plan (null: never); claims go round-robin across tenants by it. */
  claimed_at: Generated<string | null>;
  /** A sweep's candidates: PlanCandidate[] as JSON ([] for any other plan). */
  candidates: Generated<string>;
  /** Ids of the sweep's candidates cancelled one by one, as JSON. */
  cancelled_candidates: Generated<string>;
  /** A sweep's dry run: { candidates, hiddenStateBytes, seconds } as JSON; null otherwise. */
  sweep_estimate: Generated<string | null>;
}

export interface TenantsTable {
  id: string;
  name: string;
  created_at: string;
}

export interface ApiTokensTable {
  id: string;
  tenant_id: string;
  /** Hex SHA-256 of the token; the token itself is never stored. */
  token_hash: string;
  /** ADMIN or MEMBER. */
  role: string;
  created_at: string;
  /** Refused from this time on; null: never expires. */
  expires_at: string | null;
  /** Refused since; null: not revoked. A revoked token is never made valid again. */
  revoked_at: string | null;
  /** Last request that presented it, written at most once a minute; null: never used. */
  last_used_at: string | null;
  /** ENVIRONMENT (STREAMLINE_ADMIN_TOKEN), GENERATED (first start) or API (createApiToken). */
  origin: Generated<string>;
}

export interface ProgressEventsTable {
  plan_id: string;
  seq: number;
  at: string;
  payload: string;
}

export interface ImportanceProfilesTable {
  id: string;
  model_id: string;
  plan_id: string | null;
  metric: string;
  block_size: number;
  samples: number;
  seq_len: number;
  scores: string;
  created_at: string;
}

export interface StabilityReportsTable {
  id: string;
  plan_id: string;
  perplexity: string;
  tasks: string;
  stability: number | null;
  hidden_state_cosine: number | null;
  parameter_reduction: number;
  created_at: string;
}

export interface Tables {
  models: ModelsTable;
  plans: PlansTable;
  progress_events: ProgressEventsTable;
  importance_profiles: ImportanceProfilesTable;
  stability_reports: StabilityReportsTable;
  tenants: TenantsTable;
  api_tokens: ApiTokensTable;
}
