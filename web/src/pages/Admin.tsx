/** Tenants and API tokens, for admins of the default tenant: create a tenant, list, create and revoke tokens. */
import { useState } from 'react';
import { CreateTenantDocument, type NewApiToken, type Role } from '@streamline/sdk/browser';
import { ErrorMessage } from '../components/ErrorMessage.js';
import { ACTIONS_COLUMN, ScrollTable } from '../components/Table.js';
import { formatTime } from '../format.js';
import { useSession } from '../session.js';
import { useAction } from '../use-action.js';
import { useAsync } from '../use-async.js';

export function TenantsPage() {
  const { client } = useSession();
  const [name, setName] = useState('');
  const [created, setCreated] = useState<{ id: string; name: string }[]>([]);
  const creating = useAction();
  const submit = creating.submit(async () => {
    const { createTenant } = await client.mutate(CreateTenantDocument, { name: name.trim() });
    setCreated([...created, createTenant]);
    setName('');
  });
  return (
    <>
      <h1>Tenants</h1>
      <p>A new tenant has no tokens: create its first admin token on the Tokens page with the tenant's id.</p>
      <form onSubmit={submit} className="form-grid">
        <div className="field">
          <label htmlFor="tenant-name">Tenant name</label>
          <input id="tenant-name" required value={name} onChange={(e) => setName(e.target.value)} />
        </div>
        <div className="actions">
          <button type="submit">Create tenant</button>
        </div>
      </form>
      <ErrorMessage error={creating.error} />
      {created.length ? (
        <ul>
          {created.map((tenant) => (
            <li key={tenant.id}>
              {tenant.name}: id <code>{tenant.id}</code>
            </li>
          ))}
        </ul>
      ) : null}
    </>
  );
}

export function TokensPage() {
  const { client, viewer } = useSession();
  const [tenantId, setTenantId] = useState(viewer.tenant.id);
  const tokens = useAsync(() => client.apiTokens(tenantId || undefined), [client, tenantId]);
  const [role, setRole] = useState<Role>('MEMBER');
  const [days, setDays] = useState('');
  const [fresh, setFresh] = useState<NewApiToken | null>(null);
  // creating and revoking share one error line: the last one tried says what went wrong
  const editing = useAction();
  const create = editing.submit(async () => {
    setFresh(await client.createApiToken(tenantId, { role, ...(days ? { expiresInDays: Number(days) } : {}) }));
    tokens.reload();
  });
  const revoke = (id: string) =>
    editing.run(async () => {
      await client.revokeApiToken(id);
      tokens.reload();
    });
  return (
    <>
      <h1>API tokens</h1>
      <form onSubmit={create} className="form-grid">
        <div className="field">
          <label htmlFor="token-tenant">Tenant id</label>
          <input id="token-tenant" required value={tenantId} onChange={(e) => setTenantId(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor="token-role">Role</label>
          <select id="token-role" value={role} onChange={(e) => setRole(e.target.value as Role)}>
            <option value="MEMBER">MEMBER</option>
            <option value="ADMIN">ADMIN</option>
          </select>
        </div>
        <div className="field">
          <label htmlFor="token-days">Expires in days</label>
          <input id="token-days" type="number" min={1} max={3650} value={days} onChange={(e) => setDays(e.target.value)} aria-describedby="token-days-hint" />
          <span className="hint" id="token-days-hint">
            empty: never
          </span>
        </div>
        <div className="actions">
          <button type="submit">Create token</button>
        </div>
      </form>
      {fresh ? (
        <p role="status" className="notice">
          New {fresh.role} token for {fresh.tenant.name} — copy it now, it is not shown again: <code className="wrap">{fresh.token}</code>
        </p>
      ) : null}
      <ErrorMessage error={editing.error ?? tokens.error} />
      {tokens.data ? (
        <ScrollTable label="Tokens" caption={<>Tokens of {tenantId}</>} columns={['Id', 'Role', 'Created', 'Last used', 'Expires', 'Revoked', ACTIONS_COLUMN]}>
          {tokens.data.map((token) => (
            <tr key={token.id}>
              <td>{token.id}</td>
              <td>{token.role}</td>
              <td>{formatTime(token.createdAt)}</td>
              <td>{formatTime(token.lastUsedAt)}</td>
              <td>{formatTime(token.expiresAt)}</td>
              <td>{formatTime(token.revokedAt)}</td>
              <td>
                {token.revokedAt ? null : (
                  <button type="button" className="secondary" onClick={() => revoke(token.id)} aria-label={`Revoke token ${token.id}`}>
                    Revoke
                  </button>
                )}
              </td>
            </tr>
          ))}
        </ScrollTable>
      ) : null}
    </>
  );
}
