/**
 * The worker-only part of the schema. Every field needs the worker token (`Authorization: Bearer …`);
 * clients' tokens do not reach it.
 */
import 'reflect-metadata';
import { Arg, Ctx, ID, Int, Mutation, Resolver } from 'type-graphql';
import type { GatewayContext } from '../context.js';
import { ENGINE_ERROR_CODES, parseEngineErrorCode, type EngineErrorCode } from '../engine.js';
import { badInput, ErrorCode, GatewayError } from '../errors.js';
import { JSONScalar } from '../scalars.js';
import type { WorkerService } from './worker.service.js';
import { WorkerProgressInput } from './worker.input.js';
import { EngineErrorCodeEnum, HeartbeatResult, WorkerClaim } from './worker.type.js';

@Resolver()
export class WorkerResolver {
  constructor(private readonly workers: WorkerService) {}

  @Mutation(() => WorkerClaim, { nullable: true, description: 'Worker only: lease the oldest queued plan (or one whose lease ran out).' })
  claimPlan(@Arg('workerId', () => String) workerId: string, @Ctx() ctx: GatewayContext) {
    requireWorker(ctx);
    return this.workers.claim(workerId);
  }

  @Mutation(() => HeartbeatResult, { description: 'Worker only: renew the lease; cancelled = stop now.' })
  heartbeat(@Arg('planId', () => ID) planId: string, @Arg('workerId', () => String) workerId: string, @Ctx() ctx: GatewayContext) {
    requireWorker(ctx);
    return this.workers.heartbeat(planId, workerId);
  }

  @Mutation(() => Boolean, { description: 'Worker only: append progress events, in order.' })
  async reportProgress(
    @Arg('planId', () => ID) planId: string,
    @Arg('workerId', () => String) workerId: string,
    @Arg('events', () => [WorkerProgressInput]) events: WorkerProgressInput[],
    @Ctx() ctx: GatewayContext,
    @Arg('run', () => String, { nullable: true, description: "The worker's run of this plan (one per claim); with firstIndex, makes a resent batch safe." }) run?: string | null,
    @Arg('firstIndex', () => Int, { nullable: true, description: "1-based index of the batch's first event in the run; events of the run already stored are skipped." }) firstIndex?: number | null,
  ) {
    requireWorker(ctx);
    if ((run == null) !== (firstIndex == null)) throw badInput(run == null ? 'run' : 'firstIndex', 'give both run and firstIndex, or neither');
    await this.workers.report(planId, workerId, events, run != null && firstIndex != null ? { run, firstIndex } : undefined);
    return true;
  }

  @Mutation(() => Boolean, { description: "Worker only: the plan succeeded; result is a PlanResult of the plan contract (the output URI and the outcome), checked by its parser." })
  async completePlan(@Arg('planId', () => ID) planId: string, @Arg('workerId', () => String) workerId: string, @Arg('result', () => JSONScalar) result: unknown, @Ctx() ctx: GatewayContext) {
    requireWorker(ctx);
    await this.workers.complete(planId, workerId, result);
    return true;
  }

  @Mutation(() => Boolean, { description: 'Worker only: the plan failed with this message.' })
  async failPlan(
    @Arg('planId', () => ID) planId: string,
    @Arg('workerId', () => String) workerId: string,
    @Arg('error', () => String) error: string,
    @Ctx() ctx: GatewayContext,
    @Arg('code', () => EngineErrorCodeEnum, { nullable: true, description: "The engine's error code, recorded as the plan's errorCode (mapped onto ErrorCode; none: INTERNAL); INVALID_WEIGHTS marks the model FAILED too." })
    code?: EngineErrorCode | null,
  ) {
    requireWorker(ctx);
    await this.workers.fail(planId, workerId, error, parseFailureCode(code));
    return true;
  }

  @Mutation(() => Boolean, { description: 'Worker only: give the plan back to the queue (the worker is stopping).' })
  async releasePlan(@Arg('planId', () => ID) planId: string, @Arg('workerId', () => String) workerId: string, @Ctx() ctx: GatewayContext) {
    requireWorker(ctx);
    await this.workers.release(planId, workerId);
    return true;
  }
}

/** The worker's `code` checked again at the boundary against the engine's one list of codes (GraphQL has checked it against the enum). */
function parseFailureCode(code: string | null | undefined): EngineErrorCode | undefined {
  if (code == null) return undefined;
  const parsed = parseEngineErrorCode(code);
  if (!parsed) throw badInput('code', `${JSON.stringify(code.slice(0, 40))} is not an engine error code; accepted: ${ENGINE_ERROR_CODES.join(', ')}`);
  return parsed;
}

function requireWorker(ctx: GatewayContext): void {
  if (!ctx.authorization) throw new GatewayError(ErrorCode.UNAUTHENTICATED, 'worker operations need the worker token: Authorization: Bearer <token>');
  // the principal compared the token with every accepted worker token in constant time
  if (ctx.principal.kind !== 'worker') throw new GatewayError(ErrorCode.FORBIDDEN, 'this token may not do worker operations');
}
