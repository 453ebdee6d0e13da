import 'reflect-metadata';
import { Field, Float, Int, ObjectType } from 'type-graphql';
import { SafeIntScalar } from '../scalars.js';

@ObjectType({ description: "What removing one block size with one replacement kind does to a model's parameter count (the engine's own arithmetic, as a plan reports it)." })
export class BlockEstimate {
  @Field(() => Int, { description: 'Original layers removed (the replacement, if any, goes in their place).' })
  blockSize!: number;

  @Field(() => SafeIntScalar)
  parametersBefore!: number;

  @Field(() => SafeIntScalar)
  parametersAfter!: number;

  @Field(() => SafeIntScalar, { description: "The replacement's own parameters (0 for NONE)." })
  replacementParameters!: number;

  @Field(() => Float, { description: 'Fraction of the parameters removed, net of the replacement: (before − after) / before.' })
  sparsity!: number;
}
