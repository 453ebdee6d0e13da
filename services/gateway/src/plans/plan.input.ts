import 'reflect-metadata';
import { Field, Float, ID, InputType, Int } from 'type-graphql';
import { ReplacementKind } from './plan.type.js';

@InputType()
export class DatasetInput {
  @Field(() => String, { description: 'file:// or s3:// URI of a .txt file, or a .jsonl of {text} or {input_ids} records.' })
  source!: string;

  @Field(() => Int, { nullable: true })
  samples?: number | null;

  @Field(() => Int, { nullable: true })
  seqLen?: number | null;
}

@InputType()
export class TrainingInput {
  @Field(() => Int, {
    nullable: true,
    deprecationReason: 'Training uses the calibration windows (calibration.samples), less the validation share; a value other than calibration.samples is refused.',
  })
  samples?: number | null;

  @Field(() => Int, { nullable: true, description: 'Epochs; default as many as it takes to make at least minSteps optimizer steps.' })
  epochs?: number | null;

  @Field(() => Int, { nullable: true, description: 'Optimizer steps to reach when epochs is not given; default 300.' })
  minSteps?: number | null;

  @Field(() => Int, { nullable: true, description: 'Optimizer steps between resumable checkpoints; default 50.' })
  checkpointEvery?: number | null;

  @Field(() => Int, { nullable: true })
  batchSize?: number | null;

  @Field(() => Float, { nullable: true })
  learningRate?: number | null;

  @Field(() => Float, { nullable: true })
  minLearningRate?: number | null;

  @Field(() => Float, { nullable: true })
  weightDecay?: number | null;

  @Field(() => Float, { nullable: true })
  warmupRatio?: number | null;

  @Field(() => Int, { nullable: true })
  gradientAccumulation?: number | null;

  @Field(() => Float, { nullable: true })
  maxGradNorm?: number | null;

  @Field(() => Float, { nullable: true })
  validationFraction?: number | null;

  @Field(() => Int, { nullable: true })
  seed?: number | null;
}

@InputType({ description: 'Healing by distillation after the replacement is fitted: the pruned model is fine-tuned so that its next-token distribution matches the original\'s (KL on the logits), with gradients only into the replacement.' })
export class HealingInput {
  @Field(() => Int, { nullable: true, description: 'Optimizer steps at most; early stopping may end sooner. Default 200.' })
  steps?: number | null;

  @Field(() => Float, { nullable: true, description: 'Learning rate after a linear warm-up over the first 5% of the steps. Default 2e-4.' })
  learningRate?: number | null;

  @Field(() => Float, { nullable: true, description: "Share of the calibration windows held out for early stopping; default training.validationFraction (the same windows)." })
  validationFraction?: number | null;

  @Field(() => Int, { nullable: true, description: 'Validations (one every twentieth of the steps) without improvement before healing stops. Default 3.' })
  patience?: number | null;
}

@InputType()
export class EvaluationInput {
  @Field(() => [DatasetInput], { nullable: true, description: 'Text datasets for perplexity.' })
  perplexity?: DatasetInput[] | null;

  @Field(() => [String], { nullable: true, description: 'Multiple-choice JSONL files (file:// or s3://) for accuracy and stability.' })
  tasks?: string[] | null;

  @Field(() => Int, { nullable: true })
  limit?: number | null;
}

@InputType({ description: 'Many candidates in one plan: each block size at its topStarts most redundant starts, with each replacement kind.' })
export class SweepInput {
  @Field(() => [Int], { description: 'Block sizes to try (layers removed before any replacement is inserted), each from 1 to the layers less one.' })
  blockSizes!: number[];

  @Field(() => Int, { nullable: false, defaultValue: 1, description: 'Starts per block size, the most redundant first by importance.' })
  topStarts!: number;

  @Field(() => [ReplacementKind], { description: 'Every (size, start) is tried with each kind.' })
  replacements!: ReplacementKind[];

  @Field(() => Boolean, { nullable: false, defaultValue: false, description: 'Also, per block size, remove that many layers one at a time (the most redundant single layer, importance measured again after each; no replacement): candidates n<size>-iterative, exported as plain checkpoints.' })
  iterative!: boolean;
}

@InputType()
export class CreatePruningPlanInput {
  @Field(() => ID)
  modelId!: string;

  @Field(() => Int, { nullable: true, description: 'Exactly one of layersToPrune and targetSparsity.' })
  layersToPrune?: number | null;

  @Field(() => Float, { nullable: true, description: "Fraction of the model's parameters to remove; the engine picks the block size." })
  targetSparsity?: number | null;

  @Field(() => Int, { nullable: true, description: "Pin the block's first layer instead of choosing it by importance." })
  startLayer?: number | null;

  @Field(() => ReplacementKind, { nullable: false, defaultValue: ReplacementKind.LAYER })
  replacement!: ReplacementKind;

  @Field(() => Boolean, { nullable: false, defaultValue: false, description: 'Profile every block size and estimate sizes, then stop: nothing is trained or written.' })
  dryRun!: boolean;

  @Field(() => DatasetInput, { nullable: true })
  calibration?: DatasetInput | null;

  @Field(() => TrainingInput, { nullable: true })
  training?: TrainingInput | null;

  @Field(() => HealingInput, { nullable: true, description: 'Heal the fitted replacement by distillation (FFN, SWIGLU and LAYER); null or absent: no healing.' })
  healing?: HealingInput | null;

  @Field(() => EvaluationInput, { nullable: true })
  evaluation?: EvaluationInput | null;

  @Field(() => SweepInput, {
    nullable: true,
    description: `A sweep instead of one block: give it without layersToPrune, targetSparsity and startLayer. At most STREAMLINE_PLAN_MAX_SWEEP_CANDIDATES (default 16) candidates; the plan's candidates field reports each, and exportCandidate publishes one.`,
  })
  sweep?: SweepInput | null;
}
