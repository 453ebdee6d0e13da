/** Friendly names for the generated result types: what the client's methods return. */
import type {
  ApiTokenFieldsFragment,
  CreateApiTokenMutation,
  LayerImportanceFieldsFragment,
  ModelFieldsFragment,
  PlanCandidateFieldsFragment,
  ModelQuery,
  PlanDownloadsQuery,
  PlanQuery,
  PlanSummaryFieldsFragment,
  ProgressEventFieldsFragment,
  StabilityReportFieldsFragment,
  StorageHealthQuery,
  TenantsQuery,
  ViewerQuery,
} from './generated/graphql.js';

export type {
  ApiTokenOrigin,
  CreatePruningPlanInput,
  DatasetInput,
  EvaluationInput,
  ImportanceMetric,
  ModelStatus,
  PlanStage,
  PlanStatus,
  RegisterModelInput,
  ReplacementKind,
  Role,
  SweepInput,
  CandidateStatus,
  TrainingInput,
} from './generated/graphql.js';

export type Model = ModelFieldsFragment;
export type ModelWithPlans = NonNullable<ModelQuery['model']>;
/** A plan's status and outcome, without profiles, report or events. */
export type PlanSummary = PlanSummaryFieldsFragment;
/** A plan with its importance profiles, stability report and latest progress events. */
export type Plan = NonNullable<PlanQuery['plan']>;
export type LayerImportance = LayerImportanceFieldsFragment;
export type StabilityReport = StabilityReportFieldsFragment;
export type ProgressEvent = ProgressEventFieldsFragment;
/** One candidate of a sweep (PruningPlan.candidates). */
export type PlanCandidate = PlanCandidateFieldsFragment;
/** One file of a plan's output in S3, with a pre-signed URL. */
export type OutputDownload = NonNullable<NonNullable<PlanDownloadsQuery['plan']>['downloads']>[number];

/** An API token as listed: never its value. */
export type ApiToken = ApiTokenFieldsFragment;
/** A new API token: `token` is shown this once. */
export type NewApiToken = CreateApiTokenMutation['createApiToken'];
export type Tenant = TenantsQuery['tenants'][number];
export type Viewer = ViewerQuery['viewer'];
/** Whether the gateway's storage takes a write (streamline doctor). */
export type StorageHealth = StorageHealthQuery['storageHealth'];

export const FINAL_STATUSES: ReadonlySet<string> = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED']);
