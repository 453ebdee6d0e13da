/**
 * Error codes in the schema and retryPlan. A plan fails through the worker protocol a worker uses
 * (claimPlan, then failPlan with the engine's code); its errorCode is the gateway's ErrorCode enum value
 * for that code. retryPlan queues a new plan with a FAILED or CANCELLED plan's settings, checked as a
 * new plan is; other statuses are a CONFLICT, another tenant's plan NOT_FOUND.
 */
import { buildSchema, GraphQLEnumType, type GraphQLObjectType } from 'graphql';
import { readFileSync } from 'node:fs';
import { beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_PLAN_BOUNDS } from '@streamline/engine';
import { ENGINE_ERROR_CODES } from '../src/engine.js';
import { ErrorCode } from '../src/errors.js';
import type { RunningGateway } from '../src/server.js';
import { data, failure, graphql, useGateways } from './fixtures/gateway.js';
import { runWithShared, STORIES_TOKENIZER_URI, STORIES_URI, TINYSTORIES_URI } from './fixtures/shared.js';

const REGISTER = 'mutation ($input: RegisterModelInput!) { registerModel(input: $input) { id } }';
const CREATE = 'mutation ($input: CreatePruningPlanInput!) { createPruningPlan(input: $input) { id status config } }';
const PLAN = 'query ($id: ID!) { plan(id: $id) { id status error errorCode config model { id status errorCode } } }';
const RETRY = 'mutation ($id: ID!) { retryPlan(id: $id) { id status stage error errorCode layersToPrune replacement config finishedAt model { id } } }';
const CANCEL = 'mutation ($id: ID!) { cancelPlan(id: $id) { status } }';
const CLAIM = 'mutation ($workerId: String!) { claimPlan(workerId: $workerId) { planId } }';
const FAIL = 'mutation ($planId: ID!, $workerId: String!, $error: String!, $code: EngineErrorCode) { failPlan(planId: $planId, workerId: $workerId, error: $error, code: $code) }';
const COMPLETE = 'mutation ($planId: ID!, $workerId: String!, $result: JSON!) { completePlan(planId: $planId, workerId: $workerId, result: $result) }';

const SCHEMA = buildSchema(readFileSync(new URL('../../../schema.graphql', import.meta.url), 'utf8'));

describe('error codes in the schema', () => {
  it('has ErrorCode with exactly the gateway enum’s values, typing PruningPlan.errorCode and Model.errorCode', () => {
    const errorCode = SCHEMA.getType('ErrorCode');
    expect(errorCode).toBeInstanceOf(GraphQLEnumType);
    expect((errorCode as GraphQLEnumType).getValues().map((v) => v.value).sort()).toEqual(Object.values(ErrorCode).sort());
    for (const type of ['PruningPlan', 'Model']) expect(String((SCHEMA.getType(type) as GraphQLObjectType).getFields().errorCode.type)).toBe('ErrorCode');
  });

  it('types failPlan(code:) with the engine’s codes (EngineErrorCode), not a string', () => {
    const engineCode = SCHEMA.getType('EngineErrorCode') as GraphQLEnumType;
    expect(engineCode.getValues().map((v) => v.value).sort()).toEqual([...ENGINE_ERROR_CODES].sort());
    const failPlan = SCHEMA.getMutationType()!.getFields().failPlan;
    expect(String(failPlan.args.find((a) => a.name === 'code')!.type)).toBe('EngineErrorCode');
  });
});

describe.runIf(runWithShared)('failed plans and retryPlan', () => {
  const gateways = useGateways();
  let gateway: RunningGateway;
  let modelId: string;
  const input = (extra: Record<string, unknown> = {}) => ({ modelId, layersToPrune: 2, replacement: 'NONE', calibration: { source: TINYSTORIES_URI, samples: 4, seqLen: 32 }, ...extra });
  const create = async (extra: Record<string, unknown> = {}, token?: string) => (await data(gateway.url, CREATE, { input: input(extra) }, { token })).createPruningPlan;
  const asWorker = (query: string, variables: Record<string, unknown>) => graphql(gateway.url, query, variables, { token: gateway.workerToken });

  /** Claims the oldest queued plan as worker `w` (the lease a real worker takes); it must be `planId`. */
  async function claim(planId: string): Promise<void> {
    const claimed = await asWorker(CLAIM, { workerId: 'w' });
    expect(claimed.errors).toBeUndefined();
    expect(claimed.data.claimPlan.planId).toBe(planId);
  }

  /** A new plan failed by its worker with `code` (the engine's; none when absent). */
  async function failedPlan(code?: string, extra: Record<string, unknown> = {}): Promise<string> {
    const plan = await create(extra);
    await claim(plan.id);
    const failed = await asWorker(FAIL, { planId: plan.id, workerId: 'w', error: `engine said ${code ?? 'nothing'}`, code: code ?? null });
    expect(failed.errors).toBeUndefined();
    return plan.id;
  }

  beforeEach(async () => {
    gateway = await gateways.start({ planLimits: { maxQueuedPerTenant: 3, maxRunningPerTenant: 4, bounds: DEFAULT_PLAN_BOUNDS } });
    modelId = (await data(gateway.url, REGISTER, { input: { name: 'stories', source: STORIES_URI, tokenizer: STORIES_TOKENIZER_URI } })).registerModel.id;
  });

  it('records the engine’s code of a failure as an ErrorCode value: mapped in one table, INTERNAL without one', async () => {
    const expected: [string | undefined, ErrorCode][] = [
      ['CORRUPT_FILE', ErrorCode.BAD_USER_INPUT],
      ['BAD_INPUT', ErrorCode.BAD_USER_INPUT],
      ['NOT_FOUND', ErrorCode.NOT_FOUND],
      ['UNSUPPORTED_MODEL', ErrorCode.UNSUPPORTED_MODEL],
      ['STORAGE', ErrorCode.INTERNAL],
      ['CANCELLED', ErrorCode.INTERNAL],
      [undefined, ErrorCode.INTERNAL],
    ];
    // a queued plan has no error code (cancelled so that each failure below claims its own plan)
    const queued = await create();
    expect((await data(gateway.url, PLAN, { id: queued.id })).plan.errorCode).toBeNull();
    await data(gateway.url, CANCEL, { id: queued.id });
    for (const [code, errorCode] of expected) {
      const id = await failedPlan(code);
      expect((await data(gateway.url, PLAN, { id })).plan).toMatchObject({ status: 'FAILED', error: `engine said ${code ?? 'nothing'}`, errorCode, model: { status: 'READY', errorCode: null } });
    }
    // INVALID_WEIGHTS fails the model too, with the same code, and the model's queued plans with it
    const id = await failedPlan('INVALID_WEIGHTS');
    expect((await data(gateway.url, PLAN, { id })).plan).toMatchObject({ status: 'FAILED', errorCode: 'INVALID_WEIGHTS', model: { status: 'FAILED', errorCode: 'INVALID_WEIGHTS' } });
  });

  it('refuses a failPlan code outside the engine’s codes before anything is recorded', async () => {
    const plan = await create();
    await claim(plan.id);
    const refused = await asWorker(FAIL, { planId: plan.id, workerId: 'w', error: 'x', code: 'DISK_ON_FIRE' });
    expect(refused.errors?.[0]?.message).toMatch(/EngineErrorCode/);
    expect((await data(gateway.url, PLAN, { id: plan.id })).plan.status).toBe('RUNNING');
  });

  it('retries a FAILED plan as a new QUEUED plan with the same settings on the same model; the failed one stays', async () => {
    const failedId = await failedPlan('STORAGE', { startLayer: 1, training: { seed: 7 } });
    const before = (await data(gateway.url, PLAN, { id: failedId })).plan;
    const { retryPlan: retried } = await data(gateway.url, RETRY, { id: failedId });
    expect(retried).toMatchObject({ status: 'QUEUED', stage: null, error: null, errorCode: null, finishedAt: null, layersToPrune: 2, replacement: 'NONE', model: { id: modelId } });
    expect(retried.id).not.toBe(failedId);
    expect(retried.config).toEqual(before.config);
    expect((await data(gateway.url, PLAN, { id: failedId })).plan).toMatchObject({ status: 'FAILED', errorCode: 'INTERNAL' });
    // the new plan is an ordinary one: a worker claims it
    await claim(retried.id);
  });

  it('retries a CANCELLED plan', async () => {
    const plan = await create();
    await data(gateway.url, CANCEL, { id: plan.id });
    expect((await data(gateway.url, RETRY, { id: plan.id })).retryPlan).toMatchObject({ status: 'QUEUED', config: plan.config });
  });

  it('refuses queued, running and succeeded plans with CONFLICT, and unknown or another tenant’s plans with NOT_FOUND', async () => {
    const queued = await create();
    expect(await failure(gateway.url, RETRY, { id: queued.id })).toMatchObject({ code: 'CONFLICT', message: expect.stringContaining('QUEUED') });
    await claim(queued.id);
    expect(await failure(gateway.url, RETRY, { id: queued.id })).toMatchObject({ code: 'CONFLICT', message: expect.stringContaining('RUNNING') });
    const profile = { samples: 4, seqLen: 32, blocks: [], angularDistance: [], blockInfluence: [] };
    const completed = await asWorker(COMPLETE, { planId: queued.id, workerId: 'w', result: { outputUri: null, outcome: { dryRun: true, profile } } });
    expect(completed.errors).toBeUndefined();
    expect(await failure(gateway.url, RETRY, { id: queued.id })).toMatchObject({ code: 'CONFLICT', message: expect.stringContaining('SUCCEEDED') });
    expect(await failure(gateway.url, RETRY, { id: 'nope' })).toMatchObject({ code: 'NOT_FOUND' });

    const failedId = await failedPlan('BAD_INPUT');
    const { createTenant } = await data(gateway.url, 'mutation { createTenant(name: "other") { id } }');
    const other = (await data(gateway.url, `mutation { createApiToken(tenantId: "${createTenant.id}", role: MEMBER) { token } }`)).createApiToken.token;
    expect(await failure(gateway.url, RETRY, { id: failedId }, { token: other })).toMatchObject({ code: 'NOT_FOUND' });
    expect((await data(gateway.url, 'query { plans { id } }')).plans).toHaveLength(2); // nothing was queued
  });

  it('checks a retry as a new plan: the tenant’s queue quota, and a model that failed with INVALID_WEIGHTS', async () => {
    const failedId = await failedPlan('STORAGE');
    const queued = [await create(), await create(), await create()];
    expect(await failure(gateway.url, RETRY, { id: failedId })).toMatchObject({ code: 'QUOTA_EXCEEDED' });
    for (const plan of queued) await data(gateway.url, CANCEL, { id: plan.id });

    const poisoned = await failedPlan('INVALID_WEIGHTS');
    for (const id of [poisoned, failedId]) {
      expect(await failure(gateway.url, RETRY, { id })).toMatchObject({ code: 'INVALID_WEIGHTS', message: expect.stringContaining(modelId) });
    }
  });
});
