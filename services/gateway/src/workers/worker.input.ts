import 'reflect-metadata';
import { Field, Float, InputType, Int } from 'type-graphql';
import { PlanStage } from '../plans/plan.type.js';

@InputType({ description: 'One progress event as a worker reports it; the gateway assigns seq and time.' })
export class WorkerProgressInput {
  @Field(() => PlanStage)
  stage!: PlanStage;

  @Field(() => Float)
  progress!: number;

  @Field(() => String, { nullable: true })
  message?: string | null;

  @Field(() => Int, { nullable: true })
  step?: number | null;

  @Field(() => Int, { nullable: true })
  totalSteps?: number | null;

  @Field(() => Float, { nullable: true })
  loss?: number | null;

  @Field(() => Float, { nullable: true })
  validationLoss?: number | null;

  @Field(() => Float, { nullable: true })
  learningRate?: number | null;

  @Field(() => Float, { nullable: true })
  tokensPerSecond?: number | null;

  @Field(() => Int, { nullable: true })
  layer?: number | null;

  @Field(() => Int, { nullable: true })
  layers?: number | null;

  @Field(() => Float, { nullable: true })
  bytesRead?: number | null;

  @Field(() => String, { nullable: true })
  candidateId?: string | null;
}
