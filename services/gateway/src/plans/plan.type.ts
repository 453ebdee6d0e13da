import 'reflect-metadata';
import { Field, Float, ID, Int, ObjectType, registerEnumType } from 'type-graphql';
import { PlanStage, ReplacementKind, type PlanCandidateRecord, type PlanSpec, type SweepEstimateRecord } from '../engine.js';
import { ErrorCode } from '../errors.js';
import { DateTimeScalar, JSONScalar, SafeIntScalar } from '../scalars.js';

export enum PlanStatus {
  QUEUED = 'QUEUED',
  RUNNING = 'RUNNING',
  SUCCEEDED = 'SUCCEEDED',
  FAILED = 'FAILED',
  CANCELLED = 'CANCELLED',
}
registerEnumType(PlanStatus, { name: 'PlanStatus' });

export const FINAL_STATUSES: ReadonlySet<PlanStatus> = new Set([PlanStatus.SUCCEEDED, PlanStatus.FAILED, PlanStatus.CANCELLED]);

// Declared once in the plan contract (services/engine/src/contract); registered here for the schema.
export { PlanStage, ReplacementKind };
registerEnumType(PlanStage, { name: 'PlanStage' });
registerEnumType(ReplacementKind, { name: 'ReplacementKind' });

@ObjectType()
export class PruningPlan {
  @Field(() => ID)
  id!: string;

  modelId!: string;

  /** The owning tenant (not exposed: a tenant only ever sees its own). */
  tenantId!: string;

  /** A sweep's candidates ([] until it has finished, and for other plans); exposed by candidates/candidate.resolver.ts. */
  candidates!: PlanCandidateRecord[];

  /** A sweep's dry-run estimate (exposed by candidates/candidate.resolver.ts). */
  sweepEstimate!: SweepEstimateRecord | null;

  /** Ids of the sweep's candidates cancelled one by one (its worker learns of them by heartbeat). */
  cancelledCandidates!: string[];

  /** The seq of the plan's latest progress event, 0 before any (not exposed: progress streams use it to skip a read). */
  lastSeq!: number;

  @Field(() => PlanStatus)
  status!: PlanStatus;

  @Field(() => PlanStage, { nullable: true })
  stage!: PlanStage | null;

  @Field(() => Float, { description: '0..1 over the whole plan.' })
  progress!: number;

  @Field(() => Int, { description: 'Size of the pruned block (original layers removed before any replacement is inserted); a sweep: its largest block size (each candidate has its own, see candidates).' })
  layersToPrune!: number;

  @Field(() => Float, { nullable: true, description: 'The sparsity the plan was asked for, when it was given instead of layersToPrune.' })
  targetSparsity!: number | null;

  @Field(() => Int, { nullable: true, description: "Chosen (or pinned) first layer of the block; null until profiling has chosen it." })
  startLayer!: number | null;

  @Field(() => [Int], { description: '0-based indices of the original layers that were removed.' })
  removedLayers!: number[];

  @Field(() => ReplacementKind)
  replacement!: ReplacementKind;

  @Field(() => Boolean, { description: 'Profile every block size and estimate sizes, then stop.' })
  dryRun!: boolean;

  @Field(() => JSONScalar, {
    description:
      "The plan's spec: everything it runs with, defaults filled in, in this API's names (calibration, training and evaluation settings; `version` says the spec's shape).",
  })
  config!: PlanSpec;

  @Field(() => String, { nullable: true, description: 'Where the pruned checkpoint was written (a file:// or s3:// URI); null until done.' })
  outputUri!: string | null;

  @Field(() => SafeIntScalar, { nullable: true })
  originalParameters!: number | null;

  @Field(() => SafeIntScalar, { nullable: true })
  prunedParameters!: number | null;

  @Field(() => String, { nullable: true })
  error!: string | null;

  @Field(() => ErrorCode, {
    nullable: true,
    description:
      "Why a FAILED plan failed: the engine's code mapped onto the gateway's (INVALID_WEIGHTS: the model is FAILED too; BAD_USER_INPUT: a data file or setting the engine refused; INTERNAL: anything else). Null unless FAILED (and on plans that failed before codes were recorded).",
  })
  errorCode!: ErrorCode | null;

  @Field(() => DateTimeScalar)
  createdAt!: Date;

  @Field(() => DateTimeScalar, { nullable: true })
  startedAt!: Date | null;

  @Field(() => DateTimeScalar, { nullable: true })
  finishedAt!: Date | null;
}
