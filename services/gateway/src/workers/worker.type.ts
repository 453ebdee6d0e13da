import 'reflect-metadata';
import { Field, ID, Int, ObjectType, registerEnumType } from 'type-graphql';
import { ENGINE_ERROR_CODES, enumObject, type PlanAssignment } from '../engine.js';
import { JSONScalar } from '../scalars.js';

/**
 * The engine's error codes as a GraphQL enum, made from the engine's one list (ENGINE_ERROR_CODES): the
 * type of `failPlan(code:)`. Workers send the engine's code; the gateway maps it onto its own ErrorCode
 * (errors.ts) when it records the failure. Not the client-facing ErrorCode: the engine knows nothing of
 * the gateway.
 */
export const EngineErrorCodeEnum = enumObject(ENGINE_ERROR_CODES);
registerEnumType(EngineErrorCodeEnum, {
  name: 'EngineErrorCode',
  description: "Why the engine refused or failed (a worker's failPlan); the gateway records it as the plan's ErrorCode.",
});

@ObjectType({ description: 'A plan leased to a worker, with what it runs on.' })
export class WorkerClaim {
  @Field(() => ID)
  planId!: string;

  @Field(() => JSONScalar, { description: "A PlanAssignment of the plan contract: the plan's spec, its model's source URIs and the local files it may open." })
  config!: PlanAssignment;

  @Field(() => Int, {
    description: "The plan contract version the config is written in (the engine's PLAN_CONTRACT_VERSION); a worker of another version releases the plan instead of running it.",
  })
  contractVersion!: number;
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

  @Field(() => [String], { description: "Sweeps: the candidates cancelled one by one (cancelCandidate); the worker skips or stops each and goes on with the others." })
  cancelledCandidates!: string[];
}
