import 'reflect-metadata';
import { Field, ID, ObjectType } from 'type-graphql';
import { JSONScalar } from '../scalars.js';

@ObjectType({ description: 'A plan leased to a worker, with its config in the engine\'s shape (local paths).' })
export class WorkerClaim {
  @Field(() => ID)
  planId!: string;

  @Field(() => JSONScalar)
  config!: Record<string, unknown>;
}

@ObjectType()
export class HeartbeatResult {
  @Field(() => Boolean, { description: 'The plan was cancelled: stop working on it.' })
  cancelled!: boolean;

  @Field(() => Boolean, {
    description:
      'With cancelled: the plan has ended (cancelled, failed or finished), so its work directory and checkpoints can go; false when only this worker lost the lease and the plan will resume elsewhere.',
  })
  ended!: boolean;
}
