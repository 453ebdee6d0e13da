/**
 * Token attacks on a real gateway process (`npm start`'s bin, configured by environment), in sequence
 * on one process: a revoked token is refused at once; a member cannot list or revoke tokens and another
 * tenant's admin cannot see them; lists never carry a value or hash; an expired token is refused;
 * STREAMLINE_ADMIN_TOKEN replaces (revokes) the previous environment token across a restart; worker
 * tokens rotate through STREAMLINE_WORKER_TOKENS; every step leaves audit lines on stdout that never
 * hold a token. `/healthz` answers within 1 s after each.
 */
import { createHash } from 'node:crypto';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { afterAll, describe, expect, it } from 'vitest';
import {
  assertHealthy,
  PROCESS_ADMIN_TOKEN,
  PROCESS_WORKER_TOKEN,
  processGraphql,
  startGatewayProcess,
  stopGatewayProcess,
  useGatewayProcess,
  type GatewayProcess,
} from './fixtures/gateway-process.js';

const NEW_WORKER_TOKEN = 'rotated-worker-token-abcdefghijklmnop';
const NEW_ADMIN_TOKEN = 'replacement-admin-token-0123456789abcdef';

const gw = useGatewayProcess({ STREAMLINE_WORKER_TOKENS: `${NEW_WORKER_TOKEN},${PROCESS_WORKER_TOKEN}` });

const CREATE_TENANT = `mutation ($name: String!) { createTenant(name: $name) { id } }`;
const CREATE_TOKEN = `mutation ($tenantId: ID!, $role: Role!, $expiresInDays: Int, $expiresAt: DateTime) {
  createApiToken(tenantId: $tenantId, role: $role, expiresInDays: $expiresInDays, expiresAt: $expiresAt) { id token role expiresAt }
}`;
const LIST = `query ($tenantId: ID) { apiTokens(tenantId: $tenantId) { id role origin tenant { id } createdAt lastUsedAt expiresAt revokedAt } }`;
const REVOKE = `mutation ($id: ID!) { revokeApiToken(id: $id) { id revokedAt tenant { id } } }`;
const VIEWER = '{ viewer { role tenant { id } } }';
const CLAIM = `mutation { claimPlan(workerId: "attacker") { planId } }`;

/** Every token value this file handles: none may appear in an audit line or a list. */
const secrets = new Set<string>([PROCESS_ADMIN_TOKEN, PROCESS_WORKER_TOKEN, NEW_WORKER_TOKEN, NEW_ADMIN_TOKEN]);
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
/** Processes this file started besides useGatewayProcess's own, stopped at the end. */
const extra: GatewayProcess[] = [];
afterAll(async () => {
  for (const process of extra) await stopGatewayProcess(process);
});

async function ok(gateway: GatewayProcess, query: string, variables: Record<string, unknown> = {}, token?: string | null): Promise<any> {
  const { body } = await processGraphql(gateway, query, variables, token === undefined ? gateway.adminToken : token);
  if (body.errors?.length) throw new Error(`unexpected errors: ${JSON.stringify(body.errors)}`);
  return body.data;
}

async function refused(gateway: GatewayProcess, query: string, variables: Record<string, unknown> = {}, token?: string | null): Promise<{ code: string; message: string }> {
  const { body } = await processGraphql(gateway, query, variables, token === undefined ? gateway.adminToken : token);
  if (!body.errors?.length) throw new Error(`expected an error, got ${JSON.stringify(body.data)}`);
  return { code: body.errors[0].extensions?.code, message: body.errors[0].message };
}

async function newToken(gateway: GatewayProcess, tenantId: string, role: 'ADMIN' | 'MEMBER', by: string = gateway.adminToken, expiry: Record<string, unknown> = {}) {
  const { createApiToken } = await ok(gateway, CREATE_TOKEN, { tenantId, role, ...expiry }, by);
  secrets.add(createApiToken.token);
  return createApiToken as { id: string; token: string; role: string; expiresAt: string | null };
}

/** One operation over an open graphql-ws connection: its data, or its first error's code and message. */
function overWebSocket(client: Client, query: string): Promise<{ data?: any; code?: string; message?: string }> {
  return new Promise((resolve, reject) => {
    client.subscribe(
      { query },
      {
        next: (result) => {
          const error = result.errors?.[0];
          resolve(error ? { code: (error.extensions as { code?: string } | undefined)?.code, message: error.message } : { data: result.data });
        },
        error: (error) => reject(error instanceof Error ? error : new Error(JSON.stringify(error))),
        complete: () => {},
      },
    );
  });
}

/** The process's audit lines (JSON objects on stdout), optionally waiting until one matches. */
async function audit(gateway: GatewayProcess, until?: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>[]> {
  const read = () => gateway.log.filter((line) => line.startsWith('{"audit"')).map((line) => JSON.parse(line) as Record<string, unknown>);
  const deadline = Date.now() + 3_000;
  while (until && !read().some(until) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  return read();
}

let tenantA: string;
let tenantB: string;
let adminA: Awaited<ReturnType<typeof newToken>>;
let memberA: Awaited<ReturnType<typeof newToken>>;
let adminB: Awaited<ReturnType<typeof newToken>>;
let memberB: Awaited<ReturnType<typeof newToken>>;

describe('API tokens attacked through a gateway process', () => {
  it("lists a tenant's tokens with their lifecycle, never a value or hash", async () => {
    tenantA = (await ok(gw.current, CREATE_TENANT, { name: 'a' })).createTenant.id;
    tenantB = (await ok(gw.current, CREATE_TENANT, { name: 'b' })).createTenant.id;
    adminA = await newToken(gw.current, tenantA, 'ADMIN');
    memberA = await newToken(gw.current, tenantA, 'MEMBER', adminA.token);
    adminB = await newToken(gw.current, tenantB, 'ADMIN');
    memberB = await newToken(gw.current, tenantB, 'MEMBER', adminB.token);
    expect((await ok(gw.current, VIEWER, {}, memberA.token)).viewer).toEqual({ role: 'MEMBER', tenant: { id: tenantA } });

    const { apiTokens } = await ok(gw.current, LIST, { tenantId: tenantA });
    expect(apiTokens.map((t: { id: string }) => t.id)).toEqual([adminA.id, memberA.id]);
    expect(apiTokens[1]).toMatchObject({ role: 'MEMBER', origin: 'API', tenant: { id: tenantA }, expiresAt: null, revokedAt: null, lastUsedAt: expect.any(String) });
    expect(apiTokens[0].lastUsedAt).not.toBeNull(); // admin A created member A's token
    // the default tenant's list holds the environment's admin token
    const own = (await ok(gw.current, LIST, {})).apiTokens;
    expect(own).toEqual([expect.objectContaining({ id: 'first-admin', role: 'ADMIN', origin: 'ENVIRONMENT', tenant: { id: 'default' }, revokedAt: null })]);

    // nothing in the type can carry the value: no such field, and no value or hash in any answer
    const fields = (await ok(gw.current, '{ __type(name: "ApiToken") { fields { name } } }')).__type.fields.map((f: { name: string }) => f.name);
    expect(fields.sort()).toEqual(['createdAt', 'expiresAt', 'id', 'lastUsedAt', 'origin', 'revokedAt', 'role', 'tenant']);
    expect(await refused(gw.current, '{ apiTokens { token } }')).toMatchObject({ code: 'BAD_USER_INPUT', message: expect.stringContaining('Cannot query field') });
    const answers = JSON.stringify([apiTokens, own]);
    for (const secret of secrets) {
      expect(answers).not.toContain(secret);
      expect(answers).not.toContain(sha256(secret));
    }
    await assertHealthy(gw.current);
  });

  it("refuses members, and hides another tenant's tokens from its admins", async () => {
    // a member lists and revokes nothing, not even its own tenant's tokens
    for (const variables of [{}, { tenantId: tenantA }, { tenantId: tenantB }]) expect(await refused(gw.current, LIST, variables, memberA.token)).toMatchObject({ code: 'FORBIDDEN' });
    for (const id of [adminA.id, memberB.id, 'first-admin']) expect(await refused(gw.current, REVOKE, { id }, memberA.token)).toMatchObject({ code: 'FORBIDDEN' });
    // another tenant's admin: NOT_FOUND, the same answer as for an id that does not exist
    const foreign = await refused(gw.current, LIST, { tenantId: tenantA }, adminB.token);
    expect(foreign.code).toBe('NOT_FOUND');
    expect(await refused(gw.current, LIST, { tenantId: 'default' }, adminB.token)).toMatchObject({ code: 'NOT_FOUND' });
    for (const id of [memberA.id, adminA.id, 'first-admin']) {
      const answer = await refused(gw.current, REVOKE, { id }, adminB.token);
      const absent = await refused(gw.current, REVOKE, { id: 'no-such-token' }, adminB.token);
      expect(answer.code).toBe('NOT_FOUND');
      expect(answer.message.replace(id, 'ID')).toBe(absent.message.replace('no-such-token', 'ID'));
    }
    // an admin's own list, without tenantId, is its own tenant's
    expect((await ok(gw.current, LIST, {}, adminB.token)).apiTokens.map((t: { id: string }) => t.id)).toEqual([adminB.id, memberB.id]);
    // and all those attempts changed nothing
    expect((await ok(gw.current, VIEWER, {}, memberA.token)).viewer.role).toBe('MEMBER');
    expect((await ok(gw.current, LIST, { tenantId: tenantA })).apiTokens.every((t: { revokedAt: string | null }) => t.revokedAt === null)).toBe(true);
    await assertHealthy(gw.current);
  });

  it('refuses a revoked token at once, with UNAUTHENTICATED, over HTTP and on a graphql-ws connection opened before', async () => {
    // Not lazy: the socket stays open between operations (a lazy client would reconnect, and the
    // reconnection is refused at connection_init with close code 4401, before any operation).
    const socket = createClient({ url: gw.current.wsUrl, webSocketImpl: WebSocket, retryAttempts: 0, lazy: false, connectionParams: { authorization: `Bearer ${memberA.token}` } });
    try {
      expect(await overWebSocket(socket, VIEWER)).toEqual({ data: { viewer: { role: 'MEMBER', tenant: { id: tenantA } } } });
      const { revokeApiToken } = await ok(gw.current, REVOKE, { id: memberA.id }, adminA.token);
      expect(revokeApiToken).toMatchObject({ id: memberA.id, tenant: { id: tenantA }, revokedAt: expect.any(String) });
      const next = await refused(gw.current, VIEWER, {}, memberA.token);
      expect(next.code).toBe('UNAUTHENTICATED');
      expect(next.message).toContain('revoked');
      expect(await refused(gw.current, '{ models { id } }', {}, memberA.token)).toMatchObject({ code: 'UNAUTHENTICATED' });
      // each operation on a graphql-ws connection is authenticated again: the next one is refused
      expect(await overWebSocket(socket, VIEWER)).toMatchObject({ code: 'UNAUTHENTICATED', message: expect.stringContaining('revoked') });
      // again: answered unchanged
      expect((await ok(gw.current, REVOKE, { id: memberA.id }, adminA.token)).revokeApiToken.revokedAt).toBe(revokeApiToken.revokedAt);
    } finally {
      await socket.dispose();
    }
    // the default tenant's admin revokes in any tenant
    await ok(gw.current, REVOKE, { id: memberB.id });
    expect(await refused(gw.current, VIEWER, {}, memberB.token)).toMatchObject({ code: 'UNAUTHENTICATED' });
    expect((await ok(gw.current, VIEWER, {}, adminB.token)).viewer.role).toBe('ADMIN');
    await assertHealthy(gw.current);
  });

  it('refuses an expired token with UNAUTHENTICATED saying it expired, and bad expiries by name', async () => {
    const soon = new Date(Date.now() + 1_500).toISOString();
    const short = await newToken(gw.current, tenantA, 'MEMBER', adminA.token, { expiresAt: soon });
    expect(short.expiresAt).toBe(soon);
    expect((await ok(gw.current, VIEWER, {}, short.token)).viewer.role).toBe('MEMBER');
    await new Promise((resolve) => setTimeout(resolve, Date.parse(soon) - Date.now() + 100));
    const expired = await refused(gw.current, VIEWER, {}, short.token);
    expect(expired.code).toBe('UNAUTHENTICATED');
    expect(expired.message).toContain('expired');

    const month = await newToken(gw.current, tenantA, 'MEMBER', adminA.token, { expiresInDays: 30 });
    expect(Math.abs(Date.parse(month.expiresAt!) - Date.now() - 30 * 86_400_000)).toBeLessThan(60_000);
    for (const expiry of [{ expiresInDays: 0 }, { expiresInDays: 100_000 }, { expiresAt: new Date(Date.now() - 1000).toISOString() }, { expiresInDays: 1, expiresAt: soon }]) {
      const error = await refused(gw.current, CREATE_TOKEN, { tenantId: tenantA, role: 'MEMBER', ...expiry }, adminA.token);
      expect(error.code, JSON.stringify(expiry)).toBe('BAD_USER_INPUT');
      expect(error.message).toMatch(/^expires(InDays|At)/);
    }
    await assertHealthy(gw.current);
  });

  it('accepts every worker token of STREAMLINE_WORKER_TOKENS and STREAMLINE_WORKER_TOKEN, and nothing else', async () => {
    for (const token of [NEW_WORKER_TOKEN, PROCESS_WORKER_TOKEN]) expect(await ok(gw.current, CLAIM, {}, token)).toEqual({ claimPlan: null });
    for (const token of [`${NEW_WORKER_TOKEN}x`, NEW_WORKER_TOKEN.slice(0, -1), `${NEW_WORKER_TOKEN},${PROCESS_WORKER_TOKEN}`, adminA.token, gw.current.adminToken]) {
      expect(await refused(gw.current, CLAIM, {}, token)).toMatchObject({ code: 'FORBIDDEN' });
    }
    // worker tokens are no API tokens
    expect(await refused(gw.current, VIEWER, {}, NEW_WORKER_TOKEN)).toMatchObject({ code: 'FORBIDDEN' });
    await assertHealthy(gw.current);
  });

  it('writes an audit line per token created, first used, revoked and refused as expired, without any token in it', async () => {
    const lines = await audit(gw.current, (line) => line.audit === 'token.expired_refused');
    const about = (event: string, tokenId: string) => lines.filter((line) => line.audit === event && line.tokenId === tokenId);
    expect(about('token.created', 'first-admin')).toEqual([expect.objectContaining({ tenantId: 'default', role: 'ADMIN', by: 'environment' })]);
    expect(about('token.created', memberA.id)).toEqual([{ audit: 'token.created', tokenId: memberA.id, tenantId: tenantA, role: 'MEMBER', by: adminA.id, at: expect.any(String) }]);
    expect(about('token.created', adminA.id)).toEqual([expect.objectContaining({ by: 'first-admin' })]);
    expect(about('token.first_use', memberA.id)).toHaveLength(1);
    expect(about('token.first_use', adminA.id)).toHaveLength(1);
    expect(about('token.revoked', memberA.id)).toEqual([expect.objectContaining({ tenantId: tenantA, by: adminA.id })]);
    expect(about('token.revoked', memberB.id)).toEqual([expect.objectContaining({ tenantId: tenantB, by: 'first-admin' })]);
    expect(lines.filter((line) => line.audit === 'token.expired_refused')).toHaveLength(1);
    for (const line of lines) expect(Date.parse(line.at as string)).not.toBeNaN();
    const log = gw.current.log.join('\n');
    for (const secret of secrets) {
      expect(log).not.toContain(secret);
      expect(log).not.toContain(sha256(secret));
    }
    await assertHealthy(gw.current);
  });

  it('replaces the admin token when STREAMLINE_ADMIN_TOKEN changes, retires a worker token, and never locks the operator out', async () => {
    const dataDir = gw.current.dataDir;
    await stopGatewayProcess(gw.current);
    // the rotation's last step: only the new worker token, and a new admin token
    const next = await startGatewayProcess({ STREAMLINE_DATA_DIR: dataDir, STREAMLINE_ADMIN_TOKEN: NEW_ADMIN_TOKEN, STREAMLINE_WORKER_TOKEN: NEW_WORKER_TOKEN });
    extra.push(next);
    const old = await refused(next, VIEWER, {}, PROCESS_ADMIN_TOKEN);
    expect(old).toMatchObject({ code: 'UNAUTHENTICATED', message: expect.stringContaining('revoked') });
    expect((await ok(next, VIEWER, {}, NEW_ADMIN_TOKEN)).viewer).toEqual({ role: 'ADMIN', tenant: { id: 'default' } });
    // tokens created through the API are not affected
    expect((await ok(next, VIEWER, {}, adminA.token)).viewer.role).toBe('ADMIN');
    expect(await ok(next, CLAIM, {}, NEW_WORKER_TOKEN)).toEqual({ claimPlan: null });
    expect(await refused(next, CLAIM, {}, PROCESS_WORKER_TOKEN)).toMatchObject({ code: 'FORBIDDEN' });
    const defaults = (await ok(next, LIST, {})).apiTokens;
    expect(defaults.map((t: { origin: string; revokedAt: string | null }) => [t.origin, t.revokedAt === null])).toEqual([
      ['ENVIRONMENT', false],
      ['ENVIRONMENT', true],
    ]);
    expect(defaults[0].id).toBe('first-admin');
    const replacedBy = (await audit(next, (line) => line.audit === 'token.revoked' && line.tokenId === 'first-admin')).filter((line) => line.audit === 'token.revoked');
    expect(replacedBy).toEqual([expect.objectContaining({ tokenId: 'first-admin', by: 'environment' })]);
    await assertHealthy(next);

    // the default tenant's last usable admin token cannot be revoked; with a second one it can
    const envToken = defaults.find((t: { revokedAt: string | null }) => t.revokedAt === null).id;
    expect(await refused(next, REVOKE, { id: envToken }, NEW_ADMIN_TOKEN)).toMatchObject({ code: 'CONFLICT', message: expect.stringContaining('last') });
    const spare = await newToken(next, 'default', 'ADMIN', NEW_ADMIN_TOKEN);
    await ok(next, REVOKE, { id: envToken }, spare.token);
    expect(await refused(next, VIEWER, {}, NEW_ADMIN_TOKEN)).toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(await refused(next, REVOKE, { id: spare.id }, spare.token)).toMatchObject({ code: 'CONFLICT' });
    await assertHealthy(next);

    // a restart with a revoked value revives nothing and revokes nothing
    await stopGatewayProcess(next);
    const again = await startGatewayProcess({ STREAMLINE_DATA_DIR: dataDir, STREAMLINE_ADMIN_TOKEN: PROCESS_ADMIN_TOKEN, STREAMLINE_WORKER_TOKEN: NEW_WORKER_TOKEN });
    extra.push(again);
    expect(again.log.join('\n')).toMatch(/STREAMLINE_ADMIN_TOKEN was revoked/);
    expect(await refused(again, VIEWER, {}, PROCESS_ADMIN_TOKEN)).toMatchObject({ code: 'UNAUTHENTICATED' });
    expect((await ok(again, VIEWER, {}, spare.token)).viewer.role).toBe('ADMIN');
    await assertHealthy(again);
    const log = [...next.log, ...again.log].join('\n');
    for (const secret of secrets) expect(log).not.toContain(secret);
  });
});
