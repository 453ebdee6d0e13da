import 'reflect-metadata';
import { Field, Float, ID, Int, ObjectType } from 'type-graphql';
import { PlanStage } from '../plans/plan.type.js';
import { DateTimeScalar } from '../scalars.js';

/** What a worker reports; the store adds `planId`, `seq` and `at`. */
export interface ProgressReport {
  readonly stage: PlanStage;
  readonly progress: number;
  readonly step?: number | null;
  readonly totalSteps?: number | null;
  readonly loss?: number | null;
  readonly validationLoss?: number | null;
  readonly learningRate?: number | null;
  readonly tokensPerSecond?: number | null;
  readonly message?: string | null;
  readonly layer?: number | null;
  readonly layers?: number | null;
  readonly bytesRead?: number | null;
  readonly candidateId?: string | null;
}

/**
 * Where a worker's event came from: its run (one claim of a plan) and the event's 1-based index in that
 * run. Stored with the event, so that a batch sent again after a lost answer is not stored twice.
 */
export interface EventOrigin {
  readonly run: string;
  readonly index: number;
}

@ObjectType()
export class ProgressEvent {
  @Field(() => ID)
  planId!: string;

  @Field(() => Int, { description: 'Strictly increasing per plan, starting at 1; lets a client resume a stream without gaps.' })
  seq!: number;

  @Field(() => DateTimeScalar)
  at!: Date;

  @Field(() => PlanStage)
  stage!: PlanStage;

  @Field(() => Float)
  progress!: number;

  @Field(() => Int, { nullable: true })
  step!: number | null;

  @Field(() => Int, { nullable: true })
  totalSteps!: number | null;

  @Field(() => Float, { nullable: true })
  loss!: number | null;

  @Field(() => Float, { nullable: true })
  validationLoss!: number | null;

  @Field(() => Float, { nullable: true })
  learningRate!: number | null;

  @Field(() => Float, { nullable: true })
  tokensPerSecond!: number | null;

  @Field(() => String, { nullable: true })
  message!: string | null;

  @Field(() => Int, { nullable: true, description: 'Layer-streamed passes: the 0-based layer just computed (-1: the embeddings; equal to layers: the LM head).' })
  layer!: number | null;

  @Field(() => Int, { nullable: true, description: "Layer-streamed passes: the model's decoder layers." })
  layers!: number | null;

  @Field(() => Float, { nullable: true, description: "Layer-streamed passes: weight bytes read from the model's files so far in the current pass." })
  bytesRead!: number | null;

  @Field(() => String, { nullable: true, description: 'Sweeps: the candidate this event is about (null: the sweep as a whole, or not a sweep).' })
  candidateId!: string | null;
}
