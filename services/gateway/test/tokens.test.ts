/**
 * API token lifecycle on SQLite and on PostgreSQL: revocation seen at once by another replica on the
 * same database, lastUsedAt written at most once a minute and the first use audited once across
 * replicas, two concurrent revocations of the default tenant's last two admin tokens (one must fail),
 * the environment's admin token replacing the previous one, and a database from before these columns.
 */
import { createHash } from 'node:crypto';
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { acceptedWorkerTokens, workerTokensSetting } from '../src/auth/auth.settings.js';
import { AuthService, DEFAULT_TENANT_ID, LAST_USED_RESOLUTION_MS, type AuditEvent } from '../src/auth/auth.service.js';
import { AuthStore } from '../src/auth/auth.store.js';
import { ApiTokenOrigin, Role } from '../src/auth/auth.type.js';
import type { ClientPrincipal } from '../src/auth/principal.js';
import type { GatewayOptions } from '../src/server.js';
import { settingsFromEnv } from '../src/settings.js';
import { openDatabase, SQLITE_FILE, type Database } from '../src/store/database.js';
import { migrateToLatest, MIGRATIONS } from '../src/store/migrations.js';
import { data, failure, useGateways } from './fixtures/gateway.js';
import { createTestSchema, ifPostgres, type TestSchema } from './fixtures/postgres.js';

const gateways = useGateways();
const schemas: TestSchema[] = [];
const databases: Database[] = [];
afterEach(async () => {
  for (const database of databases.splice(0)) await database.close();
  for (const schema of schemas.splice(0)) await schema.drop();
});

interface Backend {
  readonly name: string;
  storage(): Promise<Pick<GatewayOptions, 'dataDir' | 'databaseUrl'>>;
}

const backends: Backend[] = [
  { name: 'SQLite', storage: async () => ({ dataDir: gateways.tempDir() }) },
  ...ifPostgres('tokens on PostgreSQL', {
    name: 'PostgreSQL',
    async storage() {
      const schema = await createTestSchema();
      schemas.push(schema);
      return { databaseUrl: schema.url };
    },
  }),
];

const ADMIN = 'the-operators-admin-token-1234567890';
const REVOKE = `mutation ($id: ID!) { revokeApiToken(id: $id) { id revokedAt } }`;
const CREATE_TOKEN = `mutation ($tenantId: ID!, $role: Role!) { createApiToken(tenantId: $tenantId, role: $role) { id token } }`;

describe.each(backends)('API tokens on $name', (backend) => {
  /** An AuthService of its own on the storage (another replica), with its audit lines collected. */
  async function replica(storage: Pick<GatewayOptions, 'dataDir' | 'databaseUrl'>) {
    const database = await openDatabase(storage);
    databases.push(database);
    const audit: AuditEvent[] = [];
    const store = new AuthStore(database.db);
    // no token cache: these tests are about what the store records on each lookup
    const auth = new AuthService(store, { auth: 'on', workerToken: null, audit: (event) => audit.push(event), tokenCacheMs: 0 });
    return { database, store, auth, audit };
  }

  it('refuses a token revoked through one replica on another at once when tokens are not cached (STREAMLINE_TOKEN_CACHE_MS=0)', async () => {
    const storage = await backend.storage();
    const one = await gateways.start({ ...storage, adminToken: ADMIN, tokenCacheMs: 0 });
    const two = await gateways.start({ ...storage, adminToken: ADMIN, tokenCacheMs: 0 });
    const { createApiToken } = await data(one.url, CREATE_TOKEN, { tenantId: DEFAULT_TENANT_ID, role: 'MEMBER' }, { token: ADMIN });
    expect((await data(two.url, '{ viewer { role } }', {}, { token: createApiToken.token })).viewer.role).toBe('MEMBER');
    await data(one.url, REVOKE, { id: createApiToken.id }, { token: ADMIN });
    expect(await failure(two.url, '{ viewer { role } }', {}, { token: createApiToken.token })).toMatchObject({ code: 'UNAUTHENTICATED', message: expect.stringContaining('revoked') });
    expect(await failure(one.url, '{ viewer { role } }', {}, { token: createApiToken.token })).toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('refuses a revoked token at once on the replica that revoked it, and on every other within the token cache time', async () => {
    const storage = await backend.storage();
    const cacheMs = 1_500;
    const one = await gateways.start({ ...storage, adminToken: ADMIN, tokenCacheMs: cacheMs });
    const two = await gateways.start({ ...storage, adminToken: ADMIN, tokenCacheMs: cacheMs });
    const { createApiToken } = await data(one.url, CREATE_TOKEN, { tenantId: DEFAULT_TENANT_ID, role: 'MEMBER' }, { token: ADMIN });
    const viewer = '{ viewer { role } }';
    // both replicas have looked the token up (and cached it) before it is revoked
    expect((await data(one.url, viewer, {}, { token: createApiToken.token })).viewer.role).toBe('MEMBER');
    expect((await data(two.url, viewer, {}, { token: createApiToken.token })).viewer.role).toBe('MEMBER');
    const cachedBy = performance.now();
    expect(two.services.auth.tokens.size).toBeGreaterThan(0);
    await data(one.url, REVOKE, { id: createApiToken.id }, { token: ADMIN });
    // the replica that revoked it forgets it at once
    expect(await failure(one.url, viewer, {}, { token: createApiToken.token })).toMatchObject({ code: 'UNAUTHENTICATED', message: expect.stringContaining('revoked') });
    // the other may serve it from its cache until the bound, never after
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, cachedBy + cacheMs - performance.now()) + 10));
    expect(await failure(two.url, viewer, {}, { token: createApiToken.token })).toMatchObject({ code: 'UNAUTHENTICATED', message: expect.stringContaining('revoked') });
    const counts = two.services.auth.tokens.counts;
    expect(counts.hits + counts.misses).toBeGreaterThan(0);
  });

  it('writes lastUsedAt at most once a minute and audits the first use once, across replicas', async () => {
    const storage = await backend.storage();
    const a = await replica(storage);
    const b = await replica(storage);
    await a.auth.bootstrap(ADMIN);
    const bearer = `Bearer ${ADMIN}`;
    const [first, second] = await Promise.all([a.auth.principal(bearer), b.auth.principal(bearer)]);
    expect(first).toMatchObject({ kind: 'client', role: Role.ADMIN, tokenId: 'first-admin' });
    expect(second).toMatchObject({ kind: 'client', tokenId: 'first-admin' });
    const firstUses = [...a.audit, ...b.audit].filter((event) => event.audit === 'token.first_use');
    expect(firstUses).toHaveLength(1);
    const used = (await a.store.token('first-admin'))!.lastUsedAt!;
    expect(used).toBeInstanceOf(Date);

    // many requests within the minute: no further writes
    for (let i = 0; i < 5; i++) await b.auth.principal(bearer);
    expect((await a.store.token('first-admin'))!.lastUsedAt).toEqual(used);
    // once the stored time is older than a minute, the next request writes it (and is no first use)
    const old = new Date(Date.now() - LAST_USED_RESOLUTION_MS - 1_000).toISOString();
    await a.database.db.updateTable('api_tokens').set({ last_used_at: old }).where('id', '=', 'first-admin').execute();
    await b.auth.principal(bearer);
    expect((await a.store.token('first-admin'))!.lastUsedAt!.getTime()).toBeGreaterThan(Date.parse(old) + LAST_USED_RESOLUTION_MS);
    expect([...a.audit, ...b.audit].filter((event) => event.audit === 'token.first_use')).toHaveLength(1);
  });

  it("lets only one of two concurrent revocations of the default tenant's last two admin tokens through", async () => {
    const storage = await backend.storage();
    const a = await replica(storage);
    // PostgreSQL: another replica; SQLite (one gateway per file): the same one, its statements interleaved
    const b = backend.name === 'SQLite' ? a : await replica(storage);
    await a.auth.bootstrap(ADMIN);
    const operator: ClientPrincipal = { kind: 'client', tenantId: DEFAULT_TENANT_ID, role: Role.ADMIN, tokenId: 'first-admin' };
    const spare = await a.auth.createApiToken(DEFAULT_TENANT_ID, Role.ADMIN, operator);
    const outcomes = await Promise.allSettled([a.auth.revokeApiToken('first-admin', operator), b.auth.revokeApiToken(spare.id, operator)]);
    expect(outcomes.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(1);
    const refusal = outcomes.find((outcome) => outcome.status === 'rejected') as PromiseRejectedResult;
    expect(refusal.reason).toMatchObject({ extensions: { code: 'CONFLICT' } });
    const usable = (await a.store.tokensOf(DEFAULT_TENANT_ID)).filter((token) => token.role === Role.ADMIN && token.revokedAt === null);
    expect(usable).toHaveLength(1);
    // an expired admin token does not count as one left
    const other = await a.store.insertToken({ tenantId: DEFAULT_TENANT_ID, tokenHash: 'x'.repeat(64), role: Role.ADMIN, expiresAt: new Date(Date.now() - 1000) });
    expect(other).not.toBeNull();
    await expect(a.auth.revokeApiToken(usable[0].id, operator)).rejects.toMatchObject({ extensions: { code: 'CONFLICT' } });
  });

  it.runIf(backend.name === 'PostgreSQL')("waits for another replica's revocation in flight before counting the default tenant's admins", async () => {
    const storage = await backend.storage();
    const a = await replica(storage);
    await a.auth.bootstrap(ADMIN);
    const operator: ClientPrincipal = { kind: 'client', tenantId: DEFAULT_TENANT_ID, role: Role.ADMIN, tokenId: 'first-admin' };
    const spare = await a.auth.createApiToken(DEFAULT_TENANT_ID, Role.ADMIN, operator);
    // another replica in the middle of revoking first-admin: it holds the rows' locks and has not committed
    const other = new pg.Client({ connectionString: storage.databaseUrl });
    await other.connect();
    try {
      await other.query('begin');
      await other.query(`select id from api_tokens where tenant_id = 'default' and role = 'ADMIN' and revoked_at is null for update`);
      const pending = a.auth.revokeApiToken(spare.id, operator).then(
        (token) => ({ token }),
        (error: unknown) => ({ error }),
      );
      await new Promise((resolve) => setTimeout(resolve, 300));
      await other.query(`update api_tokens set revoked_at = $1 where id = 'first-admin'`, [new Date().toISOString()]);
      await other.query('commit');
      expect(await pending).toMatchObject({ error: { extensions: { code: 'CONFLICT' } } });
    } finally {
      await other.end();
    }
    expect((await a.store.token(spare.id))!.revokedAt).toBeNull();
  });

  it("replaces the previous start's admin token (environment or generated), leaves API tokens alone, and never revives a revoked one", async () => {
    const storage = await backend.storage();
    const a = await replica(storage);
    const generated = await a.auth.bootstrap(undefined);
    expect(generated?.created).toBe(true);
    expect((await a.store.token('first-admin'))!.origin).toBe(ApiTokenOrigin.GENERATED);
    const operator: ClientPrincipal = { kind: 'client', tenantId: DEFAULT_TENANT_ID, role: Role.ADMIN, tokenId: 'first-admin' };
    const api = await a.auth.createApiToken(DEFAULT_TENANT_ID, Role.ADMIN, operator);

    await a.auth.bootstrap(ADMIN);
    expect(await a.auth.principal(`Bearer ${generated!.token}`)).toMatchObject({ kind: 'unknown', message: expect.stringContaining('revoked') });
    expect(await a.auth.principal(`Bearer ${api.token}`)).toMatchObject({ kind: 'client' });
    expect(await a.auth.principal(`Bearer ${ADMIN}`)).toMatchObject({ kind: 'client' });
    // the same value again: nothing changes
    await a.auth.bootstrap(ADMIN);
    expect((await a.store.tokensOf(DEFAULT_TENANT_ID)).map((t) => [t.origin, t.revokedAt === null])).toEqual([
      [ApiTokenOrigin.GENERATED, false],
      [ApiTokenOrigin.API, true],
      [ApiTokenOrigin.ENVIRONMENT, true],
    ]);
    // replaced again, then the first value given once more: it stays revoked, and the current one stays valid
    const next = 'the-next-admin-token-abcdefghijklmnop';
    await a.auth.bootstrap(next);
    expect(await a.auth.principal(`Bearer ${ADMIN}`)).toMatchObject({ kind: 'unknown' });
    expect(await a.auth.bootstrap(ADMIN)).toMatchObject({ revoked: true });
    expect(await a.auth.principal(`Bearer ${ADMIN}`)).toMatchObject({ kind: 'unknown' });
    expect(await a.auth.principal(`Bearer ${next}`)).toMatchObject({ kind: 'client' });
    const revocations = a.audit.filter((event) => event.audit === 'token.revoked');
    expect(revocations.map((event) => [event.by, event.tokenId])).toEqual([
      ['environment', 'first-admin'],
      ['environment', expect.any(String)],
    ]);
    expect(JSON.stringify(a.audit)).not.toMatch(new RegExp([ADMIN, next, generated!.token, api.token].join('|')));
  });

  it('keeps the newer environment token when a replica restarts with the previous value during a rollout', async () => {
    const storage = await backend.storage();
    const oldPod = await replica(storage);
    const newPod = await replica(storage);
    const previous = 'the-previous-admin-token-0123456789';
    const current = 'the-current-admin-token-0123456789';
    await oldPod.auth.bootstrap(previous);
    // the new pod has stored its token but not yet replaced the previous one when the old pod restarts
    await newPod.store.insertToken({ tenantId: DEFAULT_TENANT_ID, tokenHash: createHash('sha256').update(current).digest('hex'), role: Role.ADMIN, origin: ApiTokenOrigin.ENVIRONMENT });
    await oldPod.auth.bootstrap(previous);
    expect(await oldPod.auth.principal(`Bearer ${current}`)).toMatchObject({ kind: 'client' });
    await newPod.auth.bootstrap(current);
    expect(await newPod.auth.principal(`Bearer ${current}`)).toMatchObject({ kind: 'client' });
    expect(await newPod.auth.principal(`Bearer ${previous}`)).toMatchObject({ kind: 'unknown' });
  });

  it('upgrades tokens from before lifecycle columns: first-admin is the start token, the others API tokens', async () => {
    const storage = await backend.storage();
    const db = storage.databaseUrl
      ? new Kysely<any>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: storage.databaseUrl }) }) })
      : new Kysely<any>({ dialect: new SqliteDialect({ database: new SQLite(join(storage.dataDir!, SQLITE_FILE)) }) });
    try {
      await migrateToLatest(db, { '0001_initial': MIGRATIONS['0001_initial'], '0002_tenants': MIGRATIONS['0002_tenants'] });
      const now = new Date().toISOString();
      await db.insertInto('api_tokens').values({ id: 'first-admin', tenant_id: DEFAULT_TENANT_ID, token_hash: 'a'.repeat(64), role: 'ADMIN', created_at: now }).execute();
      await db.insertInto('api_tokens').values({ id: 'other', tenant_id: DEFAULT_TENANT_ID, token_hash: 'b'.repeat(64), role: 'MEMBER', created_at: now }).execute();
    } finally {
      await db.destroy();
    }
    const { store } = await replica(storage);
    expect((await store.tokensOf(DEFAULT_TENANT_ID)).map((t) => [t.id, t.origin, t.revokedAt, t.expiresAt, t.lastUsedAt])).toEqual([
      ['first-admin', ApiTokenOrigin.GENERATED, null, null, null],
      ['other', ApiTokenOrigin.API, null, null, null],
    ]);
  });
});

describe('worker token settings', () => {
  it('reads STREAMLINE_WORKER_TOKENS beside STREAMLINE_WORKER_TOKEN; local workers get the first', () => {
    expect(settingsFromEnv({}).workerTokens).toBeUndefined();
    const env = { STREAMLINE_WORKER_TOKENS: ' new-worker-token-0123456789, old-worker-token-0123456789,', STREAMLINE_WORKER_TOKEN: 'old-worker-token-0123456789' };
    const settings = settingsFromEnv(env);
    expect(settings.workerTokens).toEqual(['new-worker-token-0123456789', 'old-worker-token-0123456789']);
    expect(acceptedWorkerTokens(settings)).toEqual(['new-worker-token-0123456789', 'old-worker-token-0123456789']);
    expect(acceptedWorkerTokens({ workerToken: 'only-this-one' })).toEqual(['only-this-one']);
    expect(acceptedWorkerTokens({})).toHaveLength(1);
    expect(() => workerTokensSetting('long-enough-worker-token,short')).toThrow(/entry 2 must be at least 16 characters/);
    expect(() => workerTokensSetting('has a space inside the token')).toThrow(/STREAMLINE_WORKER_TOKENS: entry 1/);
    // the refusal never quotes the value
    expect(() => workerTokensSetting('short')).not.toThrow(/short/);
  });

  it('hands local workers the first accepted token, and accepts every one', async () => {
    const gateway = await gateways.start({ workers: 0, workerTokens: ['first-worker-token-0123456789', 'second-worker-token-0123456789'], workerToken: 'single-worker-token-0123456789' });
    expect(gateway.workerToken).toBe('first-worker-token-0123456789');
    for (const token of ['first-worker-token-0123456789', 'second-worker-token-0123456789', 'single-worker-token-0123456789']) {
      expect(await data(gateway.url, 'mutation { claimPlan(workerId: "w") { planId } }', {}, { token })).toEqual({ claimPlan: null });
    }
    expect(await failure(gateway.url, 'mutation { claimPlan(workerId: "w") { planId } }', {}, { token: 'first-worker-token-012345678' })).toMatchObject({ code: 'FORBIDDEN' });
  });
});
