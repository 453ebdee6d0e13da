import { randomUUID } from 'node:crypto';
import type { Selectable } from 'kysely';
import type { Db } from '../store/database.js';
import { isoNow } from '../store/columns.js';
import type { TenantsTable } from '../store/tables.js';
import type { Role, Tenant } from './auth.type.js';

export interface StoredToken {
  readonly id: string;
  readonly tenantId: string;
  readonly role: Role;
}

export class AuthStore {
  constructor(private readonly db: Db) {}

  async insertTenant(name: string): Promise<Tenant> {
    const row = await this.db.insertInto('tenants').values({ id: randomUUID(), name, created_at: isoNow() }).returningAll().executeTakeFirstOrThrow();
    return toTenant(row);
  }

  async tenant(id: string): Promise<Tenant | null> {
    const row = await this.db.selectFrom('tenants').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toTenant(row) : null;
  }

  /**
   * Stores a token's hash; false when that hash (or, given `id`, that id) is already stored, so that
   * gateway replicas starting together create one first admin token between them.
   */
  async insertToken(token: { id?: string; tenantId: string; tokenHash: string; role: Role }): Promise<{ id: string; createdAt: Date } | null> {
    const id = token.id ?? randomUUID();
    const createdAt = isoNow();
    const result = await this.db
      .insertInto('api_tokens')
      .values({ id, tenant_id: token.tenantId, token_hash: token.tokenHash, role: token.role, created_at: createdAt })
      .onConflict((oc) => oc.doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0) > 0 ? { id, createdAt: new Date(createdAt) } : null;
  }

  async tokenByHash(tokenHash: string): Promise<StoredToken | null> {
    const row = await this.db.selectFrom('api_tokens').select(['id', 'tenant_id', 'role']).where('token_hash', '=', tokenHash).executeTakeFirst();
    return row ? { id: row.id, tenantId: row.tenant_id, role: row.role as Role } : null;
  }

  async hasToken(id: string): Promise<boolean> {
    return (await this.db.selectFrom('api_tokens').select('id').where('id', '=', id).executeTakeFirst()) !== undefined;
  }
}

function toTenant(row: Selectable<TenantsTable>): Tenant {
  return { id: row.id, name: row.name, createdAt: new Date(row.created_at) };
}
