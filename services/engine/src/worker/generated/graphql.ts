/** Internal type. DO NOT USE DIRECTLY. */
type Exact<T extends { [key: string]: unknown }> = { [K in keyof T]: T[K] };
/** Internal type. DO NOT USE DIRECTLY. */
export type Incremental<T> = T | { [P in keyof T]?: P extends ' $fragmentName' | '__typename' ? T[P] : never };
import type { DocumentTypeDecoration } from '@graphql-typed-document-node/core';
/** Why the engine refused or failed (a worker's failPlan); the gateway records it as the plan's ErrorCode. */
export type EngineErrorCode =
  | 'BAD_INPUT'
  | 'CANCELLED'
  | 'CORRUPT_FILE'
  | 'INVALID_WEIGHTS'
  | 'NOT_FOUND'
  | 'STORAGE'
  | 'UNSUPPORTED_MODEL';

export type PlanStage =
  | 'ASSEMBLING'
  | 'COLLECTING'
  | 'DONE'
  | 'EVALUATING'
  | 'HEALING'
  | 'LOADING'
  | 'PROFILING'
  | 'TRAINING'
  | 'UPLOADING';

/** One progress event as a worker reports it; the gateway assigns seq and time. */
export type WorkerProgressInput = {
  bytesRead?: number | null | undefined;
  candidateId?: string | null | undefined;
  layer?: number | null | undefined;
  layers?: number | null | undefined;
  learningRate?: number | null | undefined;
  loss?: number | null | undefined;
  message?: string | null | undefined;
  progress: number;
  stage: PlanStage;
  step?: number | null | undefined;
  tokensPerSecond?: number | null | undefined;
  totalSteps?: number | null | undefined;
  validationLoss?: number | null | undefined;
};

export type ClaimMutationVariables = Exact<{
  workerId: string;
}>;


export type ClaimMutation = { claimPlan: { planId: string, config: unknown, contractVersion: number } | null };

export type BeatMutationVariables = Exact<{
  planId: string | number;
  workerId: string;
}>;


export type BeatMutation = { heartbeat: { cancelled: boolean, ended: boolean, cancelledCandidates: Array<string> } };

export type ReportMutationVariables = Exact<{
  planId: string | number;
  workerId: string;
  events: Array<WorkerProgressInput> | WorkerProgressInput;
  run?: string | null | undefined;
  firstIndex?: number | null | undefined;
}>;


export type ReportMutation = { reportProgress: boolean };

export type CompleteMutationVariables = Exact<{
  planId: string | number;
  workerId: string;
  result: unknown;
}>;


export type CompleteMutation = { completePlan: boolean };

export type FailMutationVariables = Exact<{
  planId: string | number;
  workerId: string;
  error: string;
  code?: EngineErrorCode | null | undefined;
}>;


export type FailMutation = { failPlan: boolean };

export type ReleaseMutationVariables = Exact<{
  planId: string | number;
  workerId: string;
}>;


export type ReleaseMutation = { releasePlan: boolean };

export class TypedDocumentString<TResult, TVariables>
  extends String
  implements DocumentTypeDecoration<TResult, TVariables>
{
  __apiType?: NonNullable<DocumentTypeDecoration<TResult, TVariables>['__apiType']>;
  private value: string;
  public __meta__?: Record<string, any> | undefined;

  constructor(value: string, __meta__?: Record<string, any> | undefined) {
    super(value);
    this.value = value;
    this.__meta__ = __meta__;
  }

  override toString(): string & DocumentTypeDecoration<TResult, TVariables> {
    return this.value;
  }
}

export const ClaimDocument = new TypedDocumentString(`
    mutation Claim($workerId: String!) {
  claimPlan(workerId: $workerId) {
    planId
    config
    contractVersion
  }
}
    `) as unknown as TypedDocumentString<ClaimMutation, ClaimMutationVariables>;
export const BeatDocument = new TypedDocumentString(`
    mutation Beat($planId: ID!, $workerId: String!) {
  heartbeat(planId: $planId, workerId: $workerId) {
    cancelled
    ended
    cancelledCandidates
  }
}
    `) as unknown as TypedDocumentString<BeatMutation, BeatMutationVariables>;
export const ReportDocument = new TypedDocumentString(`
    mutation Report($planId: ID!, $workerId: String!, $events: [WorkerProgressInput!]!, $run: String, $firstIndex: Int) {
  reportProgress(
    planId: $planId
    workerId: $workerId
    events: $events
    run: $run
    firstIndex: $firstIndex
  )
}
    `) as unknown as TypedDocumentString<ReportMutation, ReportMutationVariables>;
export const CompleteDocument = new TypedDocumentString(`
    mutation Complete($planId: ID!, $workerId: String!, $result: JSON!) {
  completePlan(planId: $planId, workerId: $workerId, result: $result)
}
    `) as unknown as TypedDocumentString<CompleteMutation, CompleteMutationVariables>;
export const FailDocument = new TypedDocumentString(`
    mutation Fail($planId: ID!, $workerId: String!, $error: String!, $code: EngineErrorCode) {
  failPlan(planId: $planId, workerId: $workerId, error: $error, code: $code)
}
    `) as unknown as TypedDocumentString<FailMutation, FailMutationVariables>;
export const ReleaseDocument = new TypedDocumentString(`
    mutation Release($planId: ID!, $workerId: String!) {
  releasePlan(planId: $planId, workerId: $workerId)
}
    `) as unknown as TypedDocumentString<ReleaseMutation, ReleaseMutationVariables>;