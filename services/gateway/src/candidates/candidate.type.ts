import 'reflect-metadata';
import { Field, Float, ID, Int, ObjectType, registerEnumType } from 'type-graphql';
import { CANDIDATE_STATUSES, enumObject, type CandidateStatus as CandidateStatusName } from '../engine.js';
import { ReplacementKind } from '../plans/plan.type.js';
import { SafeIntScalar } from '../scalars.js';

// Declared once in the plan contract; registered here for the schema.
export const CandidateStatus = enumObject(CANDIDATE_STATUSES);
registerEnumType(CandidateStatus, { name: 'CandidateStatus', description: 'DONE: trained and evaluated; CANCELLED: cancelled on its own (cancelCandidate) before it finished.' });

@ObjectType({ description: "What a sweep will make and cost, from its dry run (the time is scaled from the dry run's measured throughput: a rough figure)." })
export class SweepEstimate {
  @Field(() => Int)
  candidates!: number;

  @Field(() => SafeIntScalar, { description: 'Disk the shared hidden states take (float32), written once for all candidates.' })
  hiddenStateBytes!: number;

  @Field(() => Float, { description: 'Roughly how long the sweep runs on this machine (multiple-choice tasks not counted).' })
  seconds!: number;
}

@ObjectType({ description: "One task's scores for a sweep candidate." })
export class CandidateTaskScore {
  @Field(() => String)
  task!: string;

  @Field(() => Float)
  accuracyOriginal!: number;

  @Field(() => Float)
  accuracy!: number;

  @Field(() => Float, { description: "The paper's stability metric." })
  stability!: number;
}

@ObjectType({ description: 'One candidate of a pruning sweep: a block, a replacement, and how the pruned model scores.' })
export class PlanCandidate {
  @Field(() => ID, { description: 'Unique within its plan: n<size>-s<start>-<kind> (e.g. n2-s2-layer) for a block, n<size>-iterative for layers removed one at a time.' })
  id!: string;

  @Field(() => CandidateStatus)
  status!: CandidateStatusName;

  @Field(() => Int, { description: '0-based first layer of the block (iterative: the lowest layer removed).' })
  start!: number;

  @Field(() => Int, { description: 'Original layers removed (before any replacement is inserted).' })
  blockSize!: number;

  @Field(() => ReplacementKind)
  replacement!: ReplacementKind;

  @Field(() => Boolean, { description: 'Layers removed one at a time (no replacement) rather than as one block.' })
  iterative!: boolean;

  @Field(() => [Int], { description: '0-based indices of the original layers removed.' })
  removedLayers!: number[];

  @Field(() => SafeIntScalar)
  parametersBefore!: number;

  @Field(() => SafeIntScalar, { nullable: true, description: 'Null when cancelled.' })
  parametersAfter!: number | null;

  @Field(() => Float, { nullable: true, description: "The original's perplexity on the plan's first evaluation text (or held-out calibration windows)." })
  perplexityOriginal!: number | null;

  @Field(() => Float, { nullable: true, description: "The pruned model's perplexity on the same windows." })
  perplexity!: number | null;

  @Field(() => [CandidateTaskScore], { description: 'Accuracy and stability per multiple-choice task, when the plan gave tasks.' })
  tasks!: CandidateTaskScore[];

  @Field(() => Float, { nullable: true, description: "The best epoch's training MSE; null when nothing was trained." })
  trainingLoss!: number | null;

  @Field(() => Float, { nullable: true })
  validationLoss!: number | null;

  @Field(() => Boolean, { description: 'On the Pareto front of parameters removed (more is better) against perplexity (less is better).' })
  pareto!: boolean;
}
