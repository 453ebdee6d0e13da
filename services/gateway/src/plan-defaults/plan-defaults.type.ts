import 'reflect-metadata';
import { Field, Float, Int, ObjectType } from 'type-graphql';

@ObjectType({ description: 'How many windows of how many tokens a dataset is read as when a plan does not say.' })
export class DatasetDefaults {
  @Field(() => Int)
  samples!: number;

  @Field(() => Int)
  seqLen!: number;
}

@ObjectType({ description: "The training settings a plan runs with when it leaves them out (TrainingInput's names)." })
export class TrainingDefaults {
  @Field(() => Int, { nullable: true, description: 'Null: as many epochs as it takes to make at least minSteps optimizer steps.' })
  epochs!: number | null;

  @Field(() => Int)
  minSteps!: number;

  @Field(() => Int)
  batchSize!: number;

  @Field(() => Float)
  learningRate!: number;

  @Field(() => Float)
  minLearningRate!: number;

  @Field(() => Float)
  weightDecay!: number;

  @Field(() => Float)
  warmupRatio!: number;

  @Field(() => Int)
  gradientAccumulation!: number;

  @Field(() => Float)
  maxGradNorm!: number;

  @Field(() => Float)
  validationFraction!: number;

  @Field(() => Int)
  seed!: number;

  @Field(() => Int)
  checkpointEvery!: number;
}

@ObjectType({ description: "The healing settings a plan runs with when it asks for healing without them (HealingInput's names)." })
export class HealingDefaults {
  @Field(() => Int)
  steps!: number;

  @Field(() => Float)
  learningRate!: number;

  @Field(() => Float)
  validationFraction!: number;

  @Field(() => Int)
  patience!: number;
}

@ObjectType({ description: "The engine's defaults for every plan setting a plan may leave out (before the operator's bounds and the model's context cap them)." })
export class PlanDefaults {
  @Field(() => DatasetDefaults)
  calibration!: DatasetDefaults;

  @Field(() => DatasetDefaults, { description: 'Each perplexity text of the evaluation.' })
  evaluationText!: DatasetDefaults;

  @Field(() => TrainingDefaults)
  training!: TrainingDefaults;

  @Field(() => HealingDefaults)
  healing!: HealingDefaults;
}
