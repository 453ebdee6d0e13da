import 'reflect-metadata';
import { Field, Float, ID, Int, ObjectType, registerEnumType } from 'type-graphql';
import { DateTimeScalar } from '../scalars.js';

export enum ImportanceMetric {
  COSINE = 'COSINE',
  ANGULAR_DISTANCE = 'ANGULAR_DISTANCE',
  BLOCK_INFLUENCE = 'BLOCK_INFLUENCE',
}
registerEnumType(ImportanceMetric, { name: 'ImportanceMetric' });

@ObjectType()
export class BlockScore {
  @Field(() => Int)
  startLayer!: number;

  @Field(() => Int, { description: 'Last layer of the block (inclusive).' })
  endLayer!: number;

  @Field(() => Float, { description: 'Mean cosine similarity of h[startLayer] and h[endLayer + 1] (raw, in [-1, 1]).' })
  score!: number;
}

@ObjectType({ description: 'Block-importance profile of a model on calibration data, for one block size.' })
export class LayerImportance {
  @Field(() => ID)
  id!: string;

  modelId!: string;
  planId!: string | null;

  @Field(() => ImportanceMetric)
  metric!: ImportanceMetric;

  @Field(() => Int)
  blockSize!: number;

  @Field(() => Int)
  samples!: number;

  @Field(() => Int)
  seqLen!: number;

  /** One score per start layer s = 0 .. numLayers - blockSize; `scores` and `best` are derived from it. */
  startScores!: number[];

  @Field(() => DateTimeScalar)
  createdAt!: Date;
}
