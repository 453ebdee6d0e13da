import 'reflect-metadata';
import { Field, Float, ID, Int, ObjectType } from 'type-graphql';
import { DateTimeScalar } from '../scalars.js';

@ObjectType()
export class PerplexityResult {
  @Field(() => String)
  dataset!: string;

  @Field(() => Int)
  tokens!: number;

  @Field(() => Float)
  original!: number;

  @Field(() => Float)
  pruned!: number;

  @Field(() => Float, { nullable: true, description: 'A healed plan: the pruned model with its fitted replacement, before healing (`pruned` is after). Null when the plan did not heal.' })
  prunedBeforeHealing?: number | null;
}

@ObjectType()
export class TaskResult {
  @Field(() => String)
  task!: string;

  @Field(() => Int)
  samples!: number;

  @Field(() => Float)
  accuracyOriginal!: number;

  @Field(() => Float)
  accuracyPruned!: number;

  @Field(() => Float, { description: 'Fraction of items whose predicted choice is the same for both models.' })
  agreement!: number;

  @Field(() => Float, { description: "The paper's stability for this task (see DESIGN.md), in [0, 1]." })
  stability!: number;
}

@ObjectType()
export class StabilityReport {
  @Field(() => ID)
  id!: string;

  planId!: string;

  @Field(() => [PerplexityResult])
  perplexity!: PerplexityResult[];

  @Field(() => [TaskResult])
  tasks!: TaskResult[];

  @Field(() => Float, { nullable: true, description: "Mean of the tasks' stability; null when no task was evaluated." })
  stability!: number | null;

  @Field(() => Float, { nullable: true, description: "Mean cosine between the replacement's output and the original block's output on held-out text." })
  hiddenStateCosine!: number | null;

  @Field(() => Float)
  parameterReduction!: number;

  @Field(() => DateTimeScalar)
  createdAt!: Date;
}
