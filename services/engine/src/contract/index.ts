/**
 * The plan contract between the gateway, its workers and the engine: one definition of each idea that
 * crosses between them, with a runtime parser where it crosses a process. Bump PLAN_CONTRACT_VERSION on
 * any change an older worker would misread.
 */
export { PLAN_CONTRACT_VERSION } from '../plan-contract-version.js';
export { enumObject } from './enum-object.js';
export { PLAN_DEFAULTS } from './plan-defaults.js';
export { PLAN_STAGES, PlanStage } from './plan-stage.js';
export { REPLACEMENT_KINDS, ReplacementKind } from './replacement-kind.js';
export {
  PLAN_SPEC_VERSION,
  PlanSpecSchema,
  parsePlanSpec,
  planSpecSources,
  type DatasetSpec,
  type EvaluationSpec,
  type HealingSpec,
  type PlanSpec,
  type TrainingSpec,
} from './plan-spec.js';
export { FileAccessSchema, PlanAssignmentSchema, parsePlanAssignment, type FileAccess, type PlanAssignment } from './plan-assignment.js';
export { PlanEventSchema, parsePlanEvent, type PlanEvent } from './plan-event.js';
export {
  PlanResultSchema,
  PlanResultWireSchema,
  parsePlanResult,
  parsePlanResultWire,
  type ImportanceProfileResult,
  type PlanOutcome,
  type PlanResult,
  type PlanResultWire,
  type PrunedResult,
  type SweepResult,
  type SweepEstimateRecord,
} from './plan-result.js';
export { CandidateSourceSchema, checkSweep, DEFAULT_MAX_SWEEP_CANDIDATES, SweepSpecSchema, sweepCandidateCount, type CandidateSource, type SweepSpec } from './sweep-spec.js';
export { CANDIDATE_STATUSES, contiguousCandidateId, iterativeCandidateId, parseCandidateId, PlanCandidateSchema, type CandidateStatus, type PlanCandidate } from './plan-candidate.js';
