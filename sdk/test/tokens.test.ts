/**
 * API tokens through the SDK facade and the `streamline tokens` commands against a live gateway:
 * create (with an expiry), list (never a value), revoke (refused at once), and the typed errors for a
 * revoked token and for the default tenant's last admin token.
 */
import { describe, expect, it } from 'vitest';
import { ConflictError, ForbiddenError, NotFoundError, UnauthenticatedError } from '../src/index.js';
import { useGateway } from './fixtures/gateway.js';


describe('API tokens from the SDK and the CLI', () => {
  const live = useGateway({ workers: 0 });

  const streamline = (...args: string[]) => live.cli(...args);

  it('creates, lists and revokes tokens through the client, with typed errors', async () => {
    const admin = live.client();
    const member = await admin.createApiToken('default', { role: 'MEMBER', expiresInDays: 7 });
    expect(member).toMatchObject({ role: 'MEMBER', tenant: { id: 'default' }, token: expect.stringMatching(/^sl_/) });
    expect(Date.parse(member.expiresAt!)).toBeGreaterThan(Date.now() + 6 * 86_400_000);
    const memberClient = live.client({ token: member.token });
    expect(await memberClient.models()).toEqual([]);
    await expect(memberClient.apiTokens()).rejects.toBeInstanceOf(ForbiddenError);

    const listed = await admin.apiTokens();
    expect(listed.map((t) => t.id)).toContain(member.id);
    expect(JSON.stringify(listed)).not.toContain(member.token);

    const revoked = await admin.revokeApiToken(member.id);
    expect(revoked.revokedAt).not.toBeNull();
    await expect(memberClient.models()).rejects.toBeInstanceOf(UnauthenticatedError);
    await expect(admin.revokeApiToken('no-such-token')).rejects.toBeInstanceOf(NotFoundError);
    const own = listed.find((t) => t.role === 'ADMIN' && t.revokedAt === null)!;
    await expect(admin.revokeApiToken(own.id)).rejects.toBeInstanceOf(ConflictError);
  });

  it('streamline tokens create | list | revoke', async () => {
    const created = await streamline('tokens', 'create', '--tenant', 'default', '--role', 'member', '--expires-in-days', '3', '--json');
    expect(created.status, created.stderr).toBe(0);
    const token = JSON.parse(created.stdout);
    expect(token).toMatchObject({ role: 'MEMBER', token: expect.stringMatching(/^sl_/), expiresAt: expect.any(String) });

    const table = await streamline('tokens', 'list');
    expect(table.status, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/ID\s+ROLE\s+TENANT\s+ORIGIN\s+CREATED\s+LAST USED\s+EXPIRES\s+REVOKED/);
    expect(table.stdout).toContain(token.id);
    expect(table.stdout).not.toContain(token.token);

    const revoked = await streamline('tokens', 'revoke', token.id);
    expect(revoked.status, revoked.stderr).toBe(0);
    expect(revoked.stdout).toMatch(new RegExp(`^revoked API token ${token.id}`));
    const listed = JSON.parse((await streamline('tokens', 'list', '--json')).stdout);
    expect(listed.find((t: { id: string }) => t.id === token.id).revokedAt).not.toBeNull();

    const bad = await streamline('tokens', 'create', '--tenant', 'default', '--role', 'owner');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--role');
  });
});
