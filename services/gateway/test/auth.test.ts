/**
 * API tokens and tenants, on SQLite and on PostgreSQL: the first admin token (created and printed once,
 * or given), the error codes on HTTP and over graphql-ws, the admin mutations, tenant isolation of
 * models, plans and subscriptions, an old database upgraded with its rows in the default tenant, and
 * auth off only when asked for.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from 'graphql-ws';
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_TENANT_ID } from '../src/auth/auth.service.js';
import { PlanStage } from '../src/plans/plan.type.js';
import type { GatewayOptions, RunningGateway } from '../src/server.js';
import { settingsFromEnv } from '../src/settings.js';
import { SQLITE_FILE } from '../src/store/database.js';
import { migrateToLatest, MIGRATIONS } from '../src/store/migrations.js';
import { data, failure, graphql, useGateways } from './fixtures/gateway.js';
import { createTestSchema, ifPostgres, type TestSchema } from './fixtures/postgres.js';
import { runWithShared, STORIES_URI, TINYSTORIES_URI } from './fixtures/shared.js';
import { connect, subscribe } from './fixtures/subscriptions.js';

const gateways = useGateways();
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

const REGISTER = `mutation ($input: RegisterModelInput!) { registerModel(input: $input) { id } }`;
const CREATE = `mutation ($input: CreatePruningPlanInput!) { createPruningPlan(input: $input) { id status } }`;
const CREATE_TENANT = `mutation ($name: String!) { createTenant(name: $name) { id name createdAt } }`;
const CREATE_TOKEN = `mutation ($tenantId: ID!, $role: Role!) { createApiToken(tenantId: $tenantId, role: $role) { id token role tenant { id name } createdAt } }`;
const PROGRESS = `subscription ($planId: ID!) { planProgress(planId: $planId) { seq } }`;
const UPDATED = `subscription ($planId: ID!) { planUpdated(planId: $planId) { id status } }`;
const CLAIM = `mutation { claimPlan(workerId: "w") { planId } }`;

/** Every public root field, each one an operation that must be refused without a tenant's token. */
const PUBLIC_OPERATIONS = [
  '{ models { id } }',
  '{ model(id: "x") { id } }',
  '{ plans { id } }',
  '{ plan(id: "x") { id } }',
  '{ viewer { role } }',
  `mutation { registerModel(input: { name: "m", source: "file:///nowhere" }) { id } }`,
  `mutation { deleteModel(id: "x") }`,
  `mutation { createPruningPlan(input: { modelId: "x", layersToPrune: 1 }) { id } }`,
  `mutation { cancelPlan(id: "x") { id } }`,
  `mutation { retryPlan(id: "x") { id } }`,
  `mutation { createTenant(name: "t") { id } }`,
  `mutation { createApiToken(tenantId: "default") { token } }`,
  '{ apiTokens { id } }',
  `mutation { revokeApiToken(id: "first-admin") { id } }`,
];

/** The first error of one operation over graphql-ws (a query, mutation or subscription). */
function wsError(client: Client, query: string, variables: Record<string, unknown> = {}): Promise<{ message: string; code?: string }> {
  return new Promise((resolve, reject) => {
    client.subscribe(
      { query, variables },
      {
        next: (result) => {
          if (result.errors?.length) resolve({ message: result.errors[0].message, code: (result.errors[0].extensions as { code?: string } | undefined)?.code });
          else reject(new Error(`expected an error, got ${JSON.stringify(result.data)}`));
        },
        // a close event: its code and reason
        error: (error) => reject(error instanceof Error ? error : new Error(JSON.stringify(isCloseEvent(error) ? { code: error.code, reason: error.reason } : error))),
        complete: () => reject(new Error('completed without an error')),
      },
    );
  });
}

function isCloseEvent(value: unknown): value is { code: number; reason: string } {
  return typeof value === 'object' && value !== null && typeof (value as { code?: unknown }).code === 'number' && 'reason' in value;
}

interface Backend {
  readonly name: string;
  /** Storage for one test: a data directory, or a PostgreSQL schema dropped afterwards. */
  storage(): Promise<Pick<GatewayOptions, 'dataDir' | 'databaseUrl'>>;
}

const schemas: TestSchema[] = [];
afterEach(async () => {
  for (const schema of schemas.splice(0)) await schema.drop();
});

const backends: Backend[] = [
  { name: 'SQLite', storage: async () => ({ dataDir: gateways.tempDir() }) },
  ...ifPostgres(`auth on PostgreSQL`, {
    name: 'PostgreSQL',
    async storage() {
      const schema = await createTestSchema();
      schemas.push(schema);
      return { databaseUrl: schema.url };
    },
  }),
];

describe.each(backends)('auth on $name', (backend) => {
  /** A gateway on fresh storage; what it logged is in `logged`. */
  async function start(options: GatewayOptions = {}) {
    const logged: string[] = [];
    const storage = await backend.storage();
    const gateway = await gateways.start({ ...storage, log: (line) => logged.push(line), ...options });
    return { gateway, logged, storage };
  }

  /** A tenant with a token of each role, made by the default tenant's admin. */
  async function tenant(gateway: RunningGateway, name: string) {
    const { createTenant } = await data(gateway.url, CREATE_TENANT, { name });
    const member = (await data(gateway.url, CREATE_TOKEN, { tenantId: createTenant.id, role: 'MEMBER' })).createApiToken;
    const admin = (await data(gateway.url, CREATE_TOKEN, { tenantId: createTenant.id, role: 'ADMIN' })).createApiToken;
    return { id: createTenant.id as string, name, member: member.token as string, admin: admin.token as string };
  }

  it('creates the first admin token on first start, prints it once, and stores only its SHA-256', async () => {
    const { gateway, logged, storage } = await start();
    const token = gateway.adminToken!;
    expect(token).toMatch(/^sl_[A-Za-z0-9_-]{43}$/);
    expect(logged.filter((line) => line.includes(token))).toHaveLength(1);
    expect(await data(gateway.url, '{ viewer { role tenant { id name } } }', {}, { token })).toEqual({ viewer: { role: 'ADMIN', tenant: { id: DEFAULT_TENANT_ID, name: 'default' } } });

    const rows = await gateway.database.db.selectFrom('api_tokens').selectAll().execute();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ tenant_id: DEFAULT_TENANT_ID, role: 'ADMIN', token_hash: sha256(token) });
    expect(JSON.stringify(rows)).not.toContain(token);
    await gateway.close();
    if (storage.dataDir) expect(readFileSync(join(storage.dataDir, SQLITE_FILE)).includes(token)).toBe(false);

    // a restart creates and prints nothing, and the first token still works
    const restartLog: string[] = [];
    const again = await gateways.start({ ...storage, log: (line) => restartLog.push(line) });
    expect(restartLog.join('\n')).not.toMatch(/admin token/);
    expect((await data(again.url, '{ viewer { role } }', {}, { token })).viewer.role).toBe('ADMIN');
    expect(await again.database.db.selectFrom('api_tokens').select('id').execute()).toHaveLength(1);
  });

  it('takes the first admin token from the settings (STREAMLINE_ADMIN_TOKEN), stored hashed, printed nowhere', async () => {
    const given = 'a-long-enough-admin-token-from-the-environment';
    const { gateway, logged, storage } = await start({ adminToken: given });
    expect(gateway.adminToken).toBe(given);
    expect(logged.join('\n')).not.toContain(given);
    expect((await data(gateway.url, '{ viewer { role } }', {}, { token: given })).viewer.role).toBe('ADMIN');
    const rows = await gateway.database.db.selectFrom('api_tokens').select(['token_hash']).execute();
    expect(rows).toEqual([{ token_hash: sha256(given) }]);
    await gateway.close();

    // given again: nothing new; another one later REPLACES it: the first one is revoked (see tokens.test.ts)
    const same = await gateways.start({ ...storage, adminToken: given });
    expect(await same.database.db.selectFrom('api_tokens').select('id').execute()).toHaveLength(1);
    await same.close();
    const other = 'another-admin-token-given-later';
    const next = await gateways.start({ ...storage, adminToken: other });
    expect((await data(next.url, '{ viewer { role } }', {}, { token: other })).viewer.role).toBe('ADMIN');
    expect(await failure(next.url, '{ viewer { role } }', {}, { token: given })).toMatchObject({ code: 'UNAUTHENTICATED', message: expect.stringContaining('revoked') });
    await next.close();

    await expect(gateways.start({ ...storage, adminToken: 'short' })).rejects.toThrow(/at least 16 characters/);
  });

  it('answers missing and unknown tokens with UNAUTHENTICATED and the worker token with FORBIDDEN, over HTTP', async () => {
    const { gateway } = await start({ workerToken: 'the-worker-token-for-this-test' });
    for (const query of PUBLIC_OPERATIONS) {
      expect(await failure(gateway.url, query, {}, { token: null }), query).toMatchObject({ code: 'UNAUTHENTICATED' });
      expect(await failure(gateway.url, query, {}, { token: 'sl_not-a-token-of-this-gateway' }), query).toMatchObject({ code: 'UNAUTHENTICATED' });
      expect(await failure(gateway.url, query, {}, { token: 'the-worker-token-for-this-test' }), query).toMatchObject({ code: 'FORBIDDEN' });
    }
    const basic = await fetch(gateway.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Basic ${gateway.adminToken}` }, body: JSON.stringify({ query: '{ models { id } }' }) });
    expect(((await basic.json()) as { errors: { extensions: { code: string } }[] }).errors[0].extensions.code).toBe('UNAUTHENTICATED');
    const missing = await failure(gateway.url, '{ models { id } }', {}, { token: null });
    expect(missing.message).toContain('Authorization: Bearer');

    // tenants' tokens, admin or member, on the worker API: FORBIDDEN
    const a = await tenant(gateway, 'a');
    for (const token of [gateway.adminToken, a.admin, a.member]) expect(await failure(gateway.url, CLAIM, {}, { token })).toMatchObject({ code: 'FORBIDDEN' });
    expect(await data(gateway.url, CLAIM, {}, { token: 'the-worker-token-for-this-test' })).toEqual({ claimPlan: null });
  });

  it('answers the same codes over graphql-ws, from the authorization connection parameter', async () => {
    const { gateway } = await start({ workerToken: 'the-worker-token-for-this-test' });
    const clients: Client[] = [];
    const client = (token: string | null) => {
      const made = connect(gateway.wsUrl, token);
      clients.push(made);
      return made;
    };
    try {
      // refused at connection_init: no token or an unknown one 4401, the worker token 4403
      for (const query of [PROGRESS, UPDATED]) {
        await expect(wsError(client(null), query, { planId: 'x' })).rejects.toThrow(/"code":4401/);
        await expect(wsError(client('sl_unknown-token'), query, { planId: 'x' })).rejects.toThrow(/"code":4401/);
        await expect(wsError(client('the-worker-token-for-this-test'), query, { planId: 'x' })).rejects.toThrow(/"code":4403/);
        // with the admin token the same subscription gets as far as the plan: absent
        expect(await wsError(client(gateway.adminToken), query, { planId: 'x' })).toMatchObject({ code: 'NOT_FOUND' });
      }
      await expect(wsError(client(null), '{ models { id } }')).rejects.toThrow(/"code":4401/);
      expect(await wsError(client(gateway.adminToken), CLAIM)).toMatchObject({ code: 'FORBIDDEN' });
    } finally {
      await Promise.all(clients.map((c) => c.dispose()));
    }
  });

  it('lets admins create tenants and tokens, each token shown once, and refuses everyone else', async () => {
    const { gateway } = await start();
    const a = await tenant(gateway, 'tenant a');
    const b = await tenant(gateway, 'tenant b');
    expect(a.member).toMatch(/^sl_/);
    expect(a.member).not.toBe(a.admin);
    expect(await data(gateway.url, '{ viewer { role tenant { id name } } }', {}, { token: a.member })).toEqual({ viewer: { role: 'MEMBER', tenant: { id: a.id, name: 'tenant a' } } });
    expect(await data(gateway.url, '{ viewer { role tenant { id } } }', {}, { token: b.admin })).toEqual({ viewer: { role: 'ADMIN', tenant: { id: b.id } } });
    const stored = await gateway.database.db.selectFrom('api_tokens').select(['token_hash', 'tenant_id', 'role']).where('tenant_id', '=', a.id).execute();
    expect(stored.map((row) => row.token_hash).sort()).toEqual([sha256(a.member), sha256(a.admin)].sort());

    // members create nothing; a tenant's admin creates tokens of its own tenant only, and no tenants
    expect(await failure(gateway.url, CREATE_TENANT, { name: 'c' }, { token: a.member })).toMatchObject({ code: 'FORBIDDEN' });
    expect(await failure(gateway.url, CREATE_TOKEN, { tenantId: a.id, role: 'MEMBER' }, { token: a.member })).toMatchObject({ code: 'FORBIDDEN' });
    expect(await failure(gateway.url, CREATE_TENANT, { name: 'c' }, { token: a.admin })).toMatchObject({ code: 'FORBIDDEN' });
    const own = await data(gateway.url, CREATE_TOKEN, { tenantId: a.id, role: 'MEMBER' }, { token: a.admin });
    expect(own.createApiToken).toMatchObject({ role: 'MEMBER', tenant: { id: a.id } });
    expect((await data(gateway.url, '{ viewer { tenant { id } } }', {}, { token: own.createApiToken.token })).viewer.tenant.id).toBe(a.id);
    expect(await failure(gateway.url, CREATE_TOKEN, { tenantId: b.id, role: 'ADMIN' }, { token: a.admin })).toMatchObject({ code: 'NOT_FOUND' });
    expect(await failure(gateway.url, CREATE_TOKEN, { tenantId: DEFAULT_TENANT_ID, role: 'ADMIN' }, { token: a.admin })).toMatchObject({ code: 'NOT_FOUND' });

    // bad input is named
    expect(await failure(gateway.url, CREATE_TOKEN, { tenantId: 'no-such-tenant', role: 'MEMBER' })).toMatchObject({ code: 'NOT_FOUND', message: expect.stringContaining('tenantId') });
    expect(await failure(gateway.url, CREATE_TENANT, { name: '  ' })).toMatchObject({ code: 'BAD_USER_INPUT', message: expect.stringContaining('name') });
    const role = await failure(gateway.url, CREATE_TOKEN, { tenantId: a.id, role: 'OWNER' });
    expect(role.code).toBe('BAD_USER_INPUT');
    expect(role.message).toContain('ADMIN, MEMBER');
    // the role defaults to MEMBER
    const plain = await data(gateway.url, `mutation { createApiToken(tenantId: "${a.id}") { role } }`);
    expect(plain.createApiToken.role).toBe('MEMBER');
  });

  describe.runIf(runWithShared)('tenant isolation', () => {
    let gateway: RunningGateway;
    let a: Awaited<ReturnType<typeof tenant>>;
    let b: Awaited<ReturnType<typeof tenant>>;
    let modelA: string;
    let planA: string;

    beforeEach(async () => {
      ({ gateway } = await start());
      a = await tenant(gateway, 'a');
      b = await tenant(gateway, 'b');
      modelA = (await data(gateway.url, REGISTER, { input: { name: 'stories-a', source: STORIES_URI } }, { token: a.member })).registerModel.id;
      planA = (await data(gateway.url, CREATE, { input: { modelId: modelA, layersToPrune: 1, calibration: { source: TINYSTORIES_URI } } }, { token: a.member })).createPruningPlan.id;
    });

    it("answers another tenant's model and plan as if they did not exist, and filters lists", async () => {
      const modelB = (await data(gateway.url, REGISTER, { input: { name: 'stories-b', source: STORIES_URI } }, { token: b.member })).registerModel.id;
      const planB = (await data(gateway.url, CREATE, { input: { modelId: modelB, layersToPrune: 1, calibration: { source: TINYSTORIES_URI } } }, { token: b.admin })).createPruningPlan.id;

      const lists = '{ models { id plans { id } } plans { id model { id } } }';
      expect(await data(gateway.url, lists, {}, { token: a.member })).toEqual({ models: [{ id: modelA, plans: [{ id: planA }] }], plans: [{ id: planA, model: { id: modelA } }] });
      expect(await data(gateway.url, lists, {}, { token: b.member })).toEqual({ models: [{ id: modelB, plans: [{ id: planB }] }], plans: [{ id: planB, model: { id: modelB } }] });
      // the default tenant (the operator's admin token) is a tenant like the others
      expect(await data(gateway.url, lists)).toEqual({ models: [], plans: [] });
      expect(await data(gateway.url, '{ plans(status: QUEUED) { id } }', {}, { token: b.member })).toEqual({ plans: [{ id: planB }] });

      const byId = 'query ($m: ID!, $p: ID!) { model(id: $m) { id } plan(id: $p) { id } }';
      expect(await data(gateway.url, byId, { m: modelA, p: planA }, { token: b.member })).toEqual({ model: null, plan: null });
      expect(await data(gateway.url, byId, { m: modelA, p: planA }, { token: a.member })).toEqual({ model: { id: modelA }, plan: { id: planA } });

      // changes: NOT_FOUND, with the same message as for an id that does not exist
      const cancel = 'mutation ($id: ID!) { cancelPlan(id: $id) { status } }';
      const foreign = await failure(gateway.url, cancel, { id: planA }, { token: b.admin });
      const absent = await failure(gateway.url, cancel, { id: 'no-such-plan' }, { token: b.admin });
      expect(foreign.code).toBe('NOT_FOUND');
      expect(foreign.message.replace(planA, 'ID')).toBe(absent.message.replace('no-such-plan', 'ID'));
      expect(await failure(gateway.url, 'mutation ($id: ID!) { deleteModel(id: $id) }', { id: modelA }, { token: b.admin })).toMatchObject({ code: 'NOT_FOUND' });
      const plan = await failure(gateway.url, CREATE, { input: { modelId: modelA, layersToPrune: 1, calibration: { source: TINYSTORIES_URI } } }, { token: b.member });
      expect(plan).toMatchObject({ code: 'NOT_FOUND', message: expect.stringContaining('input.modelId') });

      // nothing happened to tenant a's things
      expect((await data(gateway.url, 'query ($id: ID!) { plan(id: $id) { status } }', { id: planA }, { token: a.member })).plan.status).toBe('QUEUED');
      expect((await data(gateway.url, cancel, { id: planA }, { token: a.member })).cancelPlan.status).toBe('CANCELLED');
    });

    it("refuses subscriptions to another tenant's plan with NOT_FOUND, and streams the owner's", async () => {
      const foreign = connect(gateway.wsUrl, b.member);
      const owner = connect(gateway.wsUrl, a.member);
      try {
        expect(await wsError(foreign, PROGRESS, { planId: planA })).toMatchObject({ code: 'NOT_FOUND' });
        expect(await wsError(foreign, UPDATED, { planId: planA })).toMatchObject({ code: 'NOT_FOUND' });
        const progress = subscribe(owner, PROGRESS, { planId: planA }, (d) => d.planProgress.seq);
        await gateway.services.progress.appendProgress(planA, { stage: PlanStage.LOADING, progress: 0.1 });
        await progress.waitFor(1); // replayed or live: the subscription is running
        // live or, when it starts after the cancel, the finished plan sent once: it ends CANCELLED either way
        const updates = subscribe(owner, UPDATED, { planId: planA }, (d) => d.planUpdated.status);
        await data(gateway.url, 'mutation ($id: ID!) { cancelPlan(id: $id) { id } }', { id: planA }, { token: a.member });
        expect(await progress.completed).toEqual([1]);
        expect((await updates.completed).at(-1)).toBe('CANCELLED');
      } finally {
        await Promise.all([foreign.dispose(), owner.dispose()]);
      }
    });
  });

  /** A plan's settings as the first gateway stored them (upgraded to a PlanSpec by migration 0006). */
  const CONFIG_BEFORE_TENANTS = {
    layersToPrune: 1,
    targetSparsity: null,
    startLayer: null,
    replacement: 'NONE',
    dryRun: false,
    calibration: { source: 'file:///old/calibration.txt', samples: 32, seqLen: 128 },
    training: { samples: 32, epochs: null, batchSize: 8, learningRate: 2e-4, minLearningRate: 5e-5, weightDecay: 1e-3, gradientAccumulation: 1, maxGradNorm: 5, validationFraction: 0.1, seed: 0 },
    evaluation: { perplexity: [], tasks: [], limit: null },
  };

  it('upgrades a database from before tenants: its models and plans belong to the default tenant', async () => {
    const storage = await backend.storage();
    const db = storage.databaseUrl
      ? new Kysely<any>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: storage.databaseUrl }) }) })
      : new Kysely<any>({ dialect: new SqliteDialect({ database: new SQLite(join(storage.dataDir!, SQLITE_FILE)) }) });
    try {
      await migrateToLatest(db, { '0001_initial': MIGRATIONS['0001_initial'] });
      const now = new Date().toISOString();
      await db.insertInto('models').values({ id: 'old-model', name: 'old', source: 'file:///old', status: 'READY', created_at: now, updated_at: now }).execute();
      await db
        .insertInto('plans')
        .values({ id: 'old-plan', model_id: 'old-model', status: 'SUCCEEDED', layers_to_prune: 1, replacement: 'NONE', config: JSON.stringify(CONFIG_BEFORE_TENANTS), created_at: now, updated_at: now })
        .execute();
    } finally {
      await db.destroy();
    }

    const gateway = await gateways.start({ ...storage });
    expect(gateway.adminToken).toMatch(/^sl_/);
    expect(await data(gateway.url, '{ models { id } plans { id model { id } } }')).toEqual({ models: [{ id: 'old-model' }], plans: [{ id: 'old-plan', model: { id: 'old-model' } }] });
    const other = await tenant(gateway, 'other');
    expect(await data(gateway.url, '{ models { id } plans { id } }', {}, { token: other.member })).toEqual({ models: [], plans: [] });
    const tenants = await gateway.database.db.selectFrom('tenants').select(['id', 'name']).orderBy('created_at').execute();
    expect(tenants[0]).toEqual({ id: DEFAULT_TENANT_ID, name: 'default' });
  });

  it('runs with auth off only when told, logging a warning, as the default tenant’s admin', async () => {
    const { gateway, logged } = await start({ auth: 'off' });
    expect(gateway.auth).toBe('off');
    expect(gateway.adminToken).toBeNull();
    expect(logged.join('\n')).toMatch(/WARNING: authentication is OFF/);
    expect(await data(gateway.url, '{ viewer { role tenant { id } } }', {}, { token: null })).toEqual({ viewer: { role: 'ADMIN', tenant: { id: DEFAULT_TENANT_ID } } });
    // a tenant's token still means that tenant; the worker token still only works on the worker API
    const { createTenant } = await data(gateway.url, CREATE_TENANT, { name: 'dev' }, { token: null });
    const { createApiToken } = await data(gateway.url, CREATE_TOKEN, { tenantId: createTenant.id, role: 'MEMBER' }, { token: null });
    expect((await data(gateway.url, '{ viewer { tenant { id } } }', {}, { token: createApiToken.token })).viewer.tenant.id).toBe(createTenant.id);
    expect(await failure(gateway.url, '{ models { id } }', {}, { token: gateway.workerToken })).toMatchObject({ code: 'FORBIDDEN' });
    expect(await failure(gateway.url, CLAIM, {}, { token: null })).toMatchObject({ code: 'UNAUTHENTICATED' });

    // by default it is on
    const { gateway: on, logged: onLog } = await start();
    expect(on.auth).toBe('on');
    expect(onLog.join('\n')).not.toMatch(/authentication is OFF/);
    expect(await failure(on.url, '{ models { id } }', {}, { token: null })).toMatchObject({ code: 'UNAUTHENTICATED' });
  });
});

describe('auth settings', () => {
  it('is on unless STREAMLINE_AUTH is exactly "off", and takes STREAMLINE_ADMIN_TOKEN', () => {
    expect(settingsFromEnv({}).auth).toBe('on');
    expect(settingsFromEnv({ STREAMLINE_AUTH: 'on' }).auth).toBe('on');
    expect(settingsFromEnv({ STREAMLINE_AUTH: 'off' }).auth).toBe('off');
    for (const value of ['false', '0', 'OFF', 'no', 'disabled']) expect(() => settingsFromEnv({ STREAMLINE_AUTH: value })).toThrow(/STREAMLINE_AUTH/);
    expect(settingsFromEnv({}).adminToken).toBeUndefined();
    expect(settingsFromEnv({ STREAMLINE_ADMIN_TOKEN: 'tok-tok-tok-tok-tok' }).adminToken).toBe('tok-tok-tok-tok-tok');
  });

  it('refuses an auth setting other than on or off when starting', async () => {
    await expect(gateways.start({ auth: 'maybe' as never })).rejects.toThrow(/auth must be 'on' or 'off'/);
  });

  it('answers GraphQL without a token only for operations that touch no data', async () => {
    const gateway = await gateways.start();
    const response = await graphql(gateway.url, '{ __typename }', {}, { token: null });
    expect(response.data).toEqual({ __typename: 'Query' });
  });
});
