import { randomUUID } from 'node:crypto';
import { PostgresAdapter, type Selectable } from 'kysely';
import type { Db } from '../store/database.js';
import { creationTime, dateOrNull, isoNow } from '../store/columns.js';
import type { ApiTokensTable, TenantsTable } from '../store/tables.js';
import { DEFAULT_TENANT_ID } from '../store/migrations.js';
import { ApiTokenOrigin, Role, type Tenant } from './auth.type.js';

/** A stored token as the service sees it; never its value, and its hash only where it is looked up by it. */
export interface StoredToken {
  readonly id: string;
  readonly tenantId: string;
  readonly role: Role;
  readonly origin: ApiTokenOrigin;
  readonly createdAt: Date;
  readonly expiresAt: Date | null;
  readonly revokedAt: Date | null;
  readonly lastUsedAt: Date | null;
}

const TOKEN_COLUMNS = ['id', 'tenant_id', 'role', 'origin', 'created_at', 'expires_at', 'revoked_at', 'last_used_at'] as const;

export class AuthStore {
  constructor(private readonly db: Db) {}

  async insertTenant(name: string): Promise<Tenant> {
    const row = await this.db.insertInto('tenants').values({ id: randomUUID(), name, created_at: isoNow() }).returningAll().executeTakeFirstOrThrow();
    return toTenant(row);
  }

  /** Every tenant, oldest first. */
  async tenants(): Promise<Tenant[]> {
    const rows = await this.db.selectFrom('tenants').selectAll().orderBy('created_at').orderBy('id').execute();
    return rows.map(toTenant);
  }

  async tenant(id: string): Promise<Tenant | null> {
    const row = await this.db.selectFrom('tenants').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toTenant(row) : null;
  }

  /**
   * Stores a token's hash; null when that hash (or, given `id`, that id) is already stored, so that
   * gateway replicas starting together create one first admin token between them.
   */
  async insertToken(token: {
    id?: string;
    tenantId: string;
    tokenHash: string;
    role: Role;
    origin?: ApiTokenOrigin;
    expiresAt?: Date | null;
  }): Promise<StoredToken | null> {
    const id = token.id ?? randomUUID();
    // strictly increasing within a process, so that lists keep the order tokens were made in
    const createdAt = creationTime();
    const origin = token.origin ?? ApiTokenOrigin.API;
    const expiresAt = token.expiresAt?.toISOString() ?? null;
    const result = await this.db
      .insertInto('api_tokens')
      .values({ id, tenant_id: token.tenantId, token_hash: token.tokenHash, role: token.role, created_at: createdAt, origin, expires_at: expiresAt, revoked_at: null, last_used_at: null })
      .onConflict((oc) => oc.doNothing())
      .executeTakeFirst();
    if (Number(result.numInsertedOrUpdatedRows ?? 0) === 0) return null;
    return { id, tenantId: token.tenantId, role: token.role, origin, createdAt: new Date(createdAt), expiresAt: dateOrNull(expiresAt), revokedAt: null, lastUsedAt: null };
  }

  /** The token with this hash, revoked or expired ones included (the caller decides what they mean). */
  async tokenByHash(tokenHash: string): Promise<StoredToken | null> {
    const row = await this.db.selectFrom('api_tokens').select(TOKEN_COLUMNS).where('token_hash', '=', tokenHash).executeTakeFirst();
    return row ? toStoredToken(row) : null;
  }

  async token(id: string): Promise<StoredToken | null> {
    const row = await this.db.selectFrom('api_tokens').select(TOKEN_COLUMNS).where('id', '=', id).executeTakeFirst();
    return row ? toStoredToken(row) : null;
  }

  /** A tenant's tokens, oldest first. */
  async tokensOf(tenantId: string): Promise<StoredToken[]> {
    const rows = await this.db.selectFrom('api_tokens').select(TOKEN_COLUMNS).where('tenant_id', '=', tenantId).orderBy('created_at').orderBy('id').execute();
    return rows.map(toStoredToken);
  }

  async hasToken(id: string): Promise<boolean> {
    return (await this.db.selectFrom('api_tokens').select('id').where('id', '=', id).executeTakeFirst()) !== undefined;
  }

  async setOrigin(id: string, origin: ApiTokenOrigin): Promise<void> {
    await this.db.updateTable('api_tokens').set({ origin }).where('id', '=', id).execute();
  }

  /**
   * Records a use: writes `last_used_at` only when it is unset or older than `minIntervalMs`, so a busy
   * token costs one write a minute, not one per request, across all replicas. `first` is true for the
   * one call (of all replicas) that recorded the token's first use.
   */
  async touch(token: StoredToken, now: Date, minIntervalMs: number): Promise<{ written: boolean; first: boolean }> {
    const first = token.lastUsedAt === null;
    if (!first && now.getTime() - token.lastUsedAt!.getTime() < minIntervalMs) return { written: false, first: false };
    const stale = new Date(now.getTime() - minIntervalMs).toISOString();
    const result = await this.db
      .updateTable('api_tokens')
      .set({ last_used_at: now.toISOString() })
      .where('id', '=', token.id)
      .where((eb) => (first ? eb('last_used_at', 'is', null) : eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<', stale)])))
      .executeTakeFirst();
    const written = Number(result.numUpdatedRows) > 0;
    return { written, first: written && first };
  }

  /**
   * Revokes the token unless it is already revoked; null when it was (or does not exist). With
   * `keepOneDefaultAdmin`, refuses ('last-admin') to revoke the default tenant's last usable admin
   * token; the check and the update are one transaction, with the default tenant's admin rows locked on
   * PostgreSQL (SQLite serialises writers), so two revocations at once cannot both pass it.
   */
  async revoke(id: string, now: Date, keepOneDefaultAdmin: boolean): Promise<StoredToken | 'last-admin' | null> {
    return this.db.transaction().execute(async (trx) => {
      const target = await trx.selectFrom('api_tokens').select(TOKEN_COLUMNS).where('id', '=', id).executeTakeFirst();
      if (!target || target.revoked_at !== null) return null;
      if (keepOneDefaultAdmin && target.tenant_id === DEFAULT_TENANT_ID && target.role === Role.ADMIN) {
        let admins = trx
          .selectFrom('api_tokens')
          .select(['id', 'expires_at'])
          .where('tenant_id', '=', DEFAULT_TENANT_ID)
          .where('role', '=', Role.ADMIN)
          .where('revoked_at', 'is', null);
        if (trx.getExecutor().adapter instanceof PostgresAdapter) admins = admins.forUpdate();
        const usable = (await admins.execute()).filter((row) => row.id !== id && (row.expires_at === null || new Date(row.expires_at) > now));
        if (usable.length === 0) return 'last-admin';
      }
      const result = await trx.updateTable('api_tokens').set({ revoked_at: now.toISOString() }).where('id', '=', id).where('revoked_at', 'is', null).executeTakeFirst();
      if (Number(result.numUpdatedRows) === 0) return null;
      return toStoredToken({ ...target, revoked_at: now.toISOString() });
    });
  }

  /**
   * Revokes the default tenant's admin tokens that an earlier start stored from the environment (or
   * generated) before `kept` was stored: the environment's admin token replaces, not adds to, the
   * previous one. Only older ones: a replica restarting with the previous value while another starts
   * with the new one must not revoke the new token (whichever runs first, the newer token survives).
   */
  async revokeStartTokensBefore(kept: StoredToken, now: Date): Promise<StoredToken[]> {
    const rows = await this.db
      .updateTable('api_tokens')
      .set({ revoked_at: now.toISOString() })
      .where('tenant_id', '=', DEFAULT_TENANT_ID)
      .where('origin', 'in', [ApiTokenOrigin.ENVIRONMENT, ApiTokenOrigin.GENERATED])
      .where('revoked_at', 'is', null)
      .where('id', '!=', kept.id)
      .where('created_at', '<', kept.createdAt.toISOString())
      .returning(TOKEN_COLUMNS)
      .execute();
    return rows.map(toStoredToken);
  }
}

function toTenant(row: Selectable<TenantsTable>): Tenant {
  return { id: row.id, name: row.name, createdAt: new Date(row.created_at) };
}

function toStoredToken(row: Pick<Selectable<ApiTokensTable>, (typeof TOKEN_COLUMNS)[number]>): StoredToken {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    role: row.role as Role,
    origin: row.origin as ApiTokenOrigin,
    createdAt: new Date(row.created_at),
    expiresAt: dateOrNull(row.expires_at),
    revokedAt: dateOrNull(row.revoked_at),
    lastUsedAt: dateOrNull(row.last_used_at),
  };
}
