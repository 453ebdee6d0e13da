/**
 * Attacks on plans against a real gateway process (as `npm start` runs it), in sequence, with the
 * service answering /healthz within a second after each: settings beyond their bounds, data files with
 * no text, a tenant queueing more than its quota (also in a burst of concurrent requests), a tenant
 * with many queued plans starving others, a tenant at its running limit, and perplexity settings lost
 * on the way to the engine. The engine's side (its own bounds, empty data, cleanup of cancelled and
 * failed plans) is in services/engine/test/plan-security.test.ts.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertHealthy, processGraphql, useGatewayProcess } from './fixtures/gateway-process.js';
import { runWithShared, STORIES_TOKENIZER_URI, STORIES_URI, TINYSTORIES_URI } from './fixtures/shared.js';

const REGISTER = 'mutation ($input: RegisterModelInput!) { registerModel(input: $input) { id } }';
const CREATE = 'mutation ($input: CreatePruningPlanInput!) { createPruningPlan(input: $input) { id status } }';
const CLAIM = 'mutation ($workerId: String!) { claimPlan(workerId: $workerId) { planId config } }';
const HEARTBEAT = 'mutation ($planId: ID!, $workerId: String!) { heartbeat(planId: $planId, workerId: $workerId) { cancelled ended } }';
const CANCEL = 'mutation ($id: ID!) { cancelPlan(id: $id) { status } }';

const gw = useGatewayProcess({ STREAMLINE_TENANT_MAX_QUEUED: '5', STREAMLINE_TENANT_MAX_RUNNING: '2' });
const files = mkdtempSync(join(tmpdir(), 'streamline-security-plans-'));
afterAll(() => rmSync(files, { recursive: true, force: true }));

/** The data of a request that must succeed. */
async function ok(query: string, variables: Record<string, unknown> = {}, token?: string | null): Promise<any> {
  const { body } = await processGraphql(gw.current, query, variables, token);
  expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
  return body.data;
}

describe.runIf(runWithShared)('plan attacks against a gateway process', () => {
  const tenantB = { member: '', modelId: '' };
  let modelA = '';
  const base = (modelId: string, extra: Record<string, unknown> = {}) => ({
    modelId,
    layersToPrune: 1,
    replacement: 'NONE',
    calibration: { source: TINYSTORIES_URI, samples: 4, seqLen: 32 },
    ...extra,
  });
  const create = (input: Record<string, unknown>, token?: string) => processGraphql(gw.current, CREATE, { input }, token);
  const claim = async (workerId: string) => (await ok(CLAIM, { workerId }, gw.current.workerToken)).claimPlan as { planId: string; config: any } | null;

  beforeAll(async () => {
    const model = { name: 'stories', source: STORIES_URI, tokenizer: STORIES_TOKENIZER_URI };
    modelA = (await ok(REGISTER, { input: model })).registerModel.id; // the default tenant: "A"
    const { createTenant } = await ok('mutation { createTenant(name: "tenant-b") { id } }');
    tenantB.member = (await ok(`mutation { createApiToken(tenantId: "${createTenant.id}", role: MEMBER) { token } }`)).createApiToken.token;
    tenantB.modelId = (await ok(REGISTER, { input: model }, tenantB.member)).registerModel.id;
  });

  const tooMuch = (n: number) => Array.from({ length: n }, () => ({ source: TINYSTORIES_URI }));
  const outOfBounds: [string, Record<string, unknown>, RegExp][] = [
    ['calibration samples', { calibration: { source: TINYSTORIES_URI, samples: 10_000_000 } }, /^input\.calibration\.samples: 10000000 is out of range; expected an integer from 1 to 4096$/],
    ['calibration seq-len beyond the context', { calibration: { source: TINYSTORIES_URI, seqLen: 100_000 } }, /^input\.calibration\.seqLen: 100000 is out of range; expected an integer from 2 to 512$/],
    ['training samples', { training: { samples: 10_000_000 } }, /^input\.training\.samples: 10000000 is out of range; expected an integer from 1 to 4096$/],
    ['epochs', { training: { epochs: 2147483647 } }, /^input\.training\.epochs: 2147483647 is out of range; expected an integer from 1 to 1000$/],
    ['batch size', { training: { batchSize: 100_000 } }, /^input\.training\.batchSize: 100000 is out of range; expected an integer from 1 to 1024$/],
    ['gradient accumulation', { training: { gradientAccumulation: 100_000 } }, /^input\.training\.gradientAccumulation: 100000 is out of range; expected an integer from 1 to 1024$/],
    ['learning rate too high', { training: { learningRate: 1e6 } }, /^input\.training\.learningRate: 1000000 is out of range; expected a number in \(0, 1\]$/],
    ['learning rate 0', { training: { learningRate: 0 } }, /^input\.training\.learningRate: 0 is out of range; expected a number in \(0, 1\]$/],
    ['min learning rate above the learning rate', { training: { learningRate: 0.001, minLearningRate: 0.5 } }, /^input\.training\.minLearningRate: 0\.5 is out of range; expected a number in \[0, 0\.001\]$/],
    ['weight decay', { training: { weightDecay: 50 } }, /^input\.training\.weightDecay: 50 is out of range; expected a number in \[0, 1\]$/],
    ['validation fraction', { training: { validationFraction: 1 } }, /^input\.training\.validationFraction: 1 is out of range; expected a number in \[0, 1\)$/],
    ['grad clip', { training: { maxGradNorm: 1e300 } }, /^input\.training\.maxGradNorm: 1e\+300 is out of range; expected a number in \(0, 1000000\]$/],
    ['evaluation items', { evaluation: { tasks: [], limit: 1_000_000 } }, /^input\.evaluation\.limit: 1000000 is out of range; expected an integer from 1 to 10000$/],
    ['perplexity windows', { evaluation: { perplexity: [{ source: TINYSTORIES_URI, samples: 1_000_000 }] } }, /^input\.evaluation\.perplexity\[0\]\.samples: 1000000 is out of range; expected an integer from 1 to 1024$/],
    ['perplexity seq-len', { evaluation: { perplexity: [{ source: TINYSTORIES_URI, seqLen: 100_000 }] } }, /^input\.evaluation\.perplexity\[0\]\.seqLen: 100000 is out of range; expected an integer from 2 to 512$/],
    ['perplexity texts', { evaluation: { perplexity: tooMuch(17) } }, /^input\.evaluation\.perplexity: 17 text datasets is out of range; expected at most 16$/],
    ['tasks', { evaluation: { tasks: Array.from({ length: 17 }, () => TINYSTORIES_URI.replace(/\.txt$/, '.jsonl')) } }, /^input\.evaluation\.tasks: 17 tasks is out of range; expected at most 16$/],
  ];
  it.each(outOfBounds)('refuses %s, naming the field, the value and the bound', async (_name, settings, message) => {
    const { body } = await create(base(tenantB.modelId, settings), tenantB.member);
    expect(body.data?.createPruningPlan ?? null).toBeNull();
    expect(body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(body.errors[0].message).toMatch(message);
    await assertHealthy(gw.current);
  });

  it('still admits the documented sizes: 512 × 256 calibration windows', async () => {
    const created = await create(base(tenantB.modelId, { calibration: { source: TINYSTORIES_URI, samples: 512, seqLen: 256 }, training: { epochs: 1000, batchSize: 1024 } }), tenantB.member);
    expect(created.body.errors).toBeUndefined();
    await ok(CANCEL, { id: created.body.data.createPruningPlan.id }, tenantB.member); // leaves B's queue empty
    await assertHealthy(gw.current);
  });

  it('refuses calibration and evaluation files with no text at creation', async () => {
    const write = (name: string, content: string) => {
      writeFileSync(join(files, name), content);
      return pathToFileURL(join(files, name)).href;
    };
    const cases: [Record<string, unknown>, string][] = [
      [{ calibration: { source: write('empty.jsonl', '') } }, 'input.calibration.source'],
      [{ calibration: { source: write('blank.jsonl', '{"text": ""}\n{"text": "  "}\n\n') } }, 'input.calibration.source'],
      [{ calibration: { source: write('blank.txt', '\n   \n') } }, 'input.calibration.source'],
      [{ evaluation: { perplexity: [{ source: write('blank-eval.jsonl', '{"input_ids": []}\n') }] } }, 'input.evaluation.perplexity[0].source'],
    ];
    for (const [settings, field] of cases) {
      const { body } = await create(base(tenantB.modelId, settings), tenantB.member);
      expect(body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      expect(body.errors[0].message).toMatch(new RegExp(`^${field.replace(/[[\].]/g, '\\$&')}: ".*" has no text samples`));
      await assertHealthy(gw.current);
    }
  });

  const planIds = { a: [] as string[], b: [] as string[] };

  it('refuses a plan beyond STREAMLINE_TENANT_MAX_QUEUED with QUOTA_EXCEEDED; other tenants are not affected', async () => {
    for (let i = 0; i < 5; i++) {
      planIds.a.push((await ok(CREATE, { input: base(modelA) })).createPruningPlan.id);
      await new Promise((r) => setTimeout(r, 5)); // distinct creation times
    }
    const { body } = await create(base(modelA));
    expect(body.errors?.[0]?.extensions?.code).toBe('QUOTA_EXCEEDED');
    expect(body.errors[0].message).toMatch(/already has 5 queued plans, its limit \(STREAMLINE_TENANT_MAX_QUEUED=5\)/);
    await assertHealthy(gw.current);
    const perplexity = [{ source: TINYSTORIES_URI, samples: 5, seqLen: 48 }];
    planIds.b.push((await ok(CREATE, { input: base(tenantB.modelId, { evaluation: { perplexity } }) }, tenantB.member)).createPruningPlan.id);
  });

  it('serves claims round-robin: with A holding many queued plans, B’s one plan is claimed next', async () => {
    expect((await claim('w1'))!.planId).toBe(planIds.a[0]); // the oldest plan of the tenants never served
    const second = await claim('w2');
    expect(second!.planId).toBe(planIds.b[0]); // not A's next one, though A's four are older
    // …and its perplexity text's samples and seq-len reach the engine.
    expect(second!.config.spec.evaluation.perplexity).toEqual([{ source: TINYSTORIES_URI, samples: 5, seqLen: 48 }]);
    expect((await claim('w3'))!.planId).toBe(planIds.a[1]);
    await assertHealthy(gw.current);
  });

  it('skips a tenant at STREAMLINE_TENANT_MAX_RUNNING: its plans wait until one of its running plans ends', async () => {
    expect(await claim('w4')).toBeNull(); // A runs 2 (its limit); B has nothing queued
    // The worker of A's first plan learns it was cancelled, and that it has ended (its work can go).
    await ok(CANCEL, { id: planIds.a[0] });
    expect((await ok(HEARTBEAT, { planId: planIds.a[0], workerId: 'w1' }, gw.current.workerToken)).heartbeat).toEqual({ cancelled: true, ended: true });
    expect((await claim('w4'))!.planId).toBe(planIds.a[2]);
    expect(await claim('w5')).toBeNull();
    await assertHealthy(gw.current);
  });

  it('holds the queued limit against a burst of concurrent creations', async () => {
    const burst = await Promise.all(Array.from({ length: 10 }, () => create(base(tenantB.modelId), tenantB.member)));
    const created = burst.filter((r) => r.body.data?.createPruningPlan);
    const refused = burst.filter((r) => r.body.errors?.[0]?.extensions?.code === 'QUOTA_EXCEEDED');
    expect(created).toHaveLength(5);
    expect(refused).toHaveLength(5);
    planIds.b.push(...created.map((r) => r.body.data.createPruningPlan.id as string));
    await assertHealthy(gw.current);
  });

  it('removes the work a plan cancelled while queued left (a released plan’s), and leaves a running plan’s to its worker', async () => {
    const leaveWork = (planId: string) => {
      const workDir = join(gw.current.dataDir, 'work', planId);
      const checkpoints = join(gw.current.dataDir, 'plans', planId, 'checkpoints', '0000000010-x');
      mkdirSync(join(workDir, 'train'), { recursive: true });
      writeFileSync(join(workDir, 'train', 'pairs.bin'), 'pairs');
      mkdirSync(checkpoints, { recursive: true });
      writeFileSync(join(checkpoints, 'state.json'), '{}');
      return { workDir, checkpoints };
    };
    const queued = leaveWork(planIds.b.at(-1)!);
    expect((await ok(CANCEL, { id: planIds.b.at(-1) }, tenantB.member)).cancelPlan.status).toBe('CANCELLED');
    expect(existsSync(queued.workDir)).toBe(false);
    expect(existsSync(join(queued.checkpoints, 'state.json'))).toBe(false);
    const running = leaveWork(planIds.a[1]); // leased to w3: its worker removes it when it stops
    expect((await ok(CANCEL, { id: planIds.a[1] })).cancelPlan.status).toBe('CANCELLED');
    expect(existsSync(running.workDir)).toBe(true);
    await assertHealthy(gw.current);
  });
});
