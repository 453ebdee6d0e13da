import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { ExpiringCache } from '../caching.js';
import { badInput, ErrorCode, GatewayError } from '../errors.js';
import { DEFAULT_TENANT_ID } from '../store/migrations.js';
import { checkNonEmpty } from '../validation.js';
import type { AuthStore, StoredToken } from './auth.store.js';
import { ApiTokenOrigin, Role, type ApiToken, type NewApiToken, type Tenant, type Viewer } from './auth.type.js';
import { bearerToken, type ClientPrincipal, type Principal } from './principal.js';

export { DEFAULT_TENANT_ID };

/** The row id of the token created (or given) on first start; one per database, whichever replica wins. */
const FIRST_ADMIN_TOKEN_ID = 'first-admin';
/** Tokens shorter than this are refused as STREAMLINE_ADMIN_TOKEN. */
export const MIN_TOKEN_LENGTH = 16;
/** `lastUsedAt` is written at most this often per token (all replicas together). */
export const LAST_USED_RESOLUTION_MS = 60_000;
/** An expired token presented again and again is audited at most this often (per token and replica). */
const EXPIRED_AUDIT_INTERVAL_MS = 60_000;
/** createApiToken's expiresInDays: 1 day to 10 years. */
const MAX_EXPIRY_DAYS = 3650;

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** 32 random bytes; the prefix tells a Streamline token apart in logs and secret scanners. */
export function generateToken(): string {
  return `sl_${randomBytes(32).toString('base64url')}`;
}

/**
 * One audit line: a JSON object on stdout, one per line. Never a token's value or hash: ids only.
 * `by` is the acting token's id, `environment` (a start with STREAMLINE_ADMIN_TOKEN), `first-start`
 * (a generated first admin token), or `auth-off` (a request with auth off and no valid token).
 */
export interface AuditEvent {
  readonly audit: 'token.created' | 'token.first_use' | 'token.revoked' | 'token.expired_refused';
  readonly tokenId: string;
  readonly tenantId: string;
  readonly role: Role;
  readonly by?: string;
  readonly at: string;
}

export type AuditSink = (event: AuditEvent) => void;

export const stdoutAudit: AuditSink = (event) => {
  process.stdout.write(`${JSON.stringify(event)}\n`);
};

export interface AuthOptions {
  /** 'off': every request without a valid API token acts as the default tenant's admin. */
  readonly auth: 'on' | 'off';
  /** The engine workers' token; null disables the worker API (unless `workerTokens` names some). */
  readonly workerToken: string | null;
  /** More worker tokens accepted beside `workerToken` (STREAMLINE_WORKER_TOKENS, for rotating them). */
  readonly workerTokens?: readonly string[];
  /** Where audit lines go; default stdout. */
  readonly audit?: AuditSink;
  /**
   * How long a token looked up in the store is trusted without looking again (STREAMLINE_TOKEN_CACHE_MS,
   * default TOKEN_CACHE_MS; 0: every request reads the store). It bounds how long a token revoked on
   * another replica keeps working here; on the replica that revoked it, it is refused at once.
   */
  readonly tokenCacheMs?: number;
}

/** Default of AuthOptions.tokenCacheMs: a revocation reaches every replica within this. */
export const TOKEN_CACHE_MS = 5_000;
/** Tokens cached per gateway (the most recently looked up). */
const TOKEN_CACHE_ENTRIES = 10_000;

const LOCAL_ADMIN: ClientPrincipal = { kind: 'client', tenantId: DEFAULT_TENANT_ID, role: Role.ADMIN };

export class AuthService {
  /** SHA-256 of each accepted worker token: comparing digests takes the same time whatever the lengths. */
  private readonly workerTokenDigests: readonly Buffer[];
  private readonly audit: AuditSink;
  /** When each expired token was last audited here, so that a client retrying in a loop logs one line a minute. */
  private readonly expiredAudited = new Map<string, number>();
  /**
   * Stored tokens by hash, as read from the store (revoked and expired ones included: those are
   * checked on every request against the cached row). Unknown tokens are never cached, so a token
   * created on another replica works here at once.
   */
  readonly tokens: ExpiringCache<string, StoredToken | null>;
  /**
   * The token hash of each Authorization value recently found to be a stored API token (never a worker
   * token): a repeat request skips parsing and hashing. Its row still comes from `tokens`, so forgetting
   * a token there (revocation) takes effect for these too.
   */
  private readonly hashes: ExpiringCache<string, string>;

  constructor(
    private readonly store: AuthStore,
    private readonly options: AuthOptions,
  ) {
    const accepted = [...(options.workerTokens ?? []), ...(options.workerToken !== null ? [options.workerToken] : [])];
    this.workerTokenDigests = [...new Set(accepted)].map(digest);
    this.audit = options.audit ?? stdoutAudit;
    this.tokens = new ExpiringCache({ ttlMs: options.tokenCacheMs ?? TOKEN_CACHE_MS, maxEntries: TOKEN_CACHE_ENTRIES });
    this.hashes = new ExpiringCache({ ttlMs: options.tokenCacheMs ?? TOKEN_CACHE_MS, maxEntries: TOKEN_CACHE_ENTRIES });
  }

  get enabled(): boolean {
    return this.options.auth === 'on';
  }

  /** Whether `token` is one of the accepted worker tokens; every one is compared in constant time. */
  isWorkerToken(token: string): boolean {
    return this.isWorkerDigest(digest(token));
  }

  private isWorkerDigest(presented: Buffer): boolean {
    let match = false;
    for (const accepted of this.workerTokenDigests) match = timingSafeEqual(presented, accepted) || match;
    return match;
  }

  /** Who sent a request with this Authorization value. */
  async principal(authorization: string | null): Promise<Principal> {
    const off = !this.enabled;
    if (!authorization) return off ? LOCAL_ADMIN : { kind: 'anonymous' };
    let tokenHash = this.hashes.enabled ? this.hashes.get(authorization) : undefined;
    const remembered = tokenHash !== undefined;
    if (tokenHash === undefined) {
      const token = bearerToken(authorization);
      if (token === null) return off ? LOCAL_ADMIN : { kind: 'unknown' };
      const presented = digest(token);
      if (this.isWorkerDigest(presented)) return { kind: 'worker' };
      // looked up by its SHA-256: the comparison happens on hashes in the database's index
      tokenHash = presented.toString('hex');
    }
    const hash = tokenHash;
    let loaded = false;
    // the usual case answers without a promise of its own: the row is cached
    const cached = this.tokens.enabled ? this.tokens.get(hash) : undefined;
    const stored = cached !== undefined ? cached : await this.tokens.fill(
      hash,
      () => {
        loaded = true;
        return this.store.tokenByHash(hash);
      },
      (found) => found !== null,
    );
    if (!stored) return off ? LOCAL_ADMIN : { kind: 'unknown' };
    if (!remembered) this.hashes.set(authorization, hash);
    const now = new Date();
    if (stored.revokedAt !== null) {
      return off ? LOCAL_ADMIN : { kind: 'unknown', message: `the API token ${stored.id} was revoked at ${stored.revokedAt.toISOString()}; ask an admin for a new one` };
    }
    if (stored.expiresAt !== null && stored.expiresAt <= now) {
      this.auditExpired(stored, now);
      return off ? LOCAL_ADMIN : { kind: 'unknown', message: `the API token ${stored.id} expired at ${stored.expiresAt.toISOString()}; ask an admin for a new one` };
    }
    // lastUsedAt is kept to the minute: the store is told when the row is read, not on each request
    if (loaded) await this.recordUse(stored, now);
    return { kind: 'client', tenantId: stored.tenantId, role: stored.role, tokenId: stored.id };
  }

  /**
   * Stores the start's admin token for the default tenant. Given (STREAMLINE_ADMIN_TOKEN): stored
   * hashed if new, and it REPLACES the previous start's token (the one stored from an earlier value,
   * or generated on first start; any stored before it), which is revoked; API tokens are untouched. A given token that was
   * revoked stays revoked (a restart never revives it) and replaces nothing. Not given: creates one
   * when the database has no first admin token yet. Returns the plaintext only when it was given or
   * created now, and `revoked` when the given token is refused.
   */
  async bootstrap(given: string | undefined): Promise<{ token: string; created: boolean; revoked?: boolean } | null> {
    if (given !== undefined) {
      if (given.length < MIN_TOKEN_LENGTH || /\s/.test(given)) throw new Error(`the admin token must be at least ${MIN_TOKEN_LENGTH} characters without spaces`);
      const tokenHash = hashToken(given);
      let stored = await this.store.tokenByHash(tokenHash);
      if (!stored) {
        const first = !(await this.store.hasToken(FIRST_ADMIN_TOKEN_ID));
        const token = { tenantId: DEFAULT_TENANT_ID, tokenHash, role: Role.ADMIN, origin: ApiTokenOrigin.ENVIRONMENT };
        let inserted = await this.store.insertToken({ ...token, id: first ? FIRST_ADMIN_TOKEN_ID : undefined });
        // lost a race for the first-admin id to another replica that was given another token: an id of its own
        if (!inserted && !(await this.store.tokenByHash(tokenHash))) inserted = await this.store.insertToken(token);
        if (inserted) this.emit('token.created', inserted, 'environment');
        stored = inserted ?? (await this.store.tokenByHash(tokenHash));
        if (!stored) throw new Error('could not store the admin token');
      }
      if (stored.tenantId !== DEFAULT_TENANT_ID || stored.role !== Role.ADMIN) {
        throw new Error(`the given admin token is already a ${stored.role} token of tenant ${stored.tenantId}`);
      }
      if (stored.revokedAt !== null) return { token: given, created: false, revoked: true };
      if (stored.origin !== ApiTokenOrigin.ENVIRONMENT) await this.store.setOrigin(stored.id, ApiTokenOrigin.ENVIRONMENT);
      for (const replaced of await this.store.revokeStartTokensBefore(stored, new Date())) {
        this.tokens.forgetWhere((cached) => cached?.id === replaced.id);
        this.emit('token.revoked', replaced, 'environment');
      }
      return { token: given, created: false };
    }
    if (await this.store.hasToken(FIRST_ADMIN_TOKEN_ID)) return null;
    const token = generateToken();
    const inserted = await this.store.insertToken({ id: FIRST_ADMIN_TOKEN_ID, tenantId: DEFAULT_TENANT_ID, tokenHash: hashToken(token), role: Role.ADMIN, origin: ApiTokenOrigin.GENERATED });
    if (inserted) this.emit('token.created', inserted, 'first-start');
    return inserted ? { token, created: true } : null;
  }

  /** Admins of the default tenant (the operator) only. */
  async createTenant(name: string, caller: ClientPrincipal): Promise<Tenant> {
    requireAdmin(caller);
    if (caller.tenantId !== DEFAULT_TENANT_ID) throw new GatewayError(ErrorCode.FORBIDDEN, "only the default tenant's admins may create tenants");
    return this.store.insertTenant(checkNonEmpty('name', name));
  }

  /** Admins of the default tenant: every tenant; other callers: their own. */
  async tenants(caller: ClientPrincipal): Promise<Tenant[]> {
    if (caller.tenantId === DEFAULT_TENANT_ID && caller.role === Role.ADMIN) return this.store.tenants();
    const own = await this.store.tenant(caller.tenantId);
    return own ? [own] : [];
  }

  /**
   * Admins: tokens of their own tenant; admins of the default tenant: of any tenant. Optionally
   * expiring, after `expiresInDays` or at `expiresAt` (one of them, in the future).
   */
  async createApiToken(tenantId: string, role: Role, caller: ClientPrincipal, expiry: { expiresInDays?: number | null; expiresAt?: Date | null } = {}): Promise<NewApiToken> {
    requireAdmin(caller);
    if (!Object.values(Role).includes(role)) throw new GatewayError(ErrorCode.BAD_USER_INPUT, `role: ${JSON.stringify(role)} is not one of ${Object.values(Role).join(', ')}`, { field: 'role' });
    const expiresAt = expiryTime(expiry, new Date());
    const tenant = await this.visibleTenant(tenantId, caller);
    const token = generateToken();
    const stored = await this.store.insertToken({ tenantId, tokenHash: hashToken(token), role, origin: ApiTokenOrigin.API, expiresAt });
    if (!stored) throw new GatewayError(ErrorCode.INTERNAL, 'could not store the new token');
    this.emit('token.created', stored, byWhom(caller));
    return { id: stored.id, token, role, tenant, createdAt: stored.createdAt, expiresAt: stored.expiresAt };
  }

  /** Admins: a tenant's tokens (default: their own), revoked and expired ones included; never values. */
  async apiTokens(tenantId: string | null | undefined, caller: ClientPrincipal): Promise<ApiToken[]> {
    requireAdmin(caller);
    const tenant = await this.visibleTenant(tenantId ?? caller.tenantId, caller);
    return (await this.store.tokensOf(tenant.id)).map((stored) => toApiToken(stored, tenant));
  }

  /**
   * Admins: revokes a token of their own tenant (default tenant's admins: of any tenant); refused at
   * once on this replica, and on every other within tokenCacheMs (each caches tokens it looked up in
   * the shared database for that long, then reads them again). Revoking a revoked
   * token answers it unchanged. The default tenant's last usable admin token cannot be revoked (CONFLICT):
   * that would lock the operator out; create another admin token first.
   */
  async revokeApiToken(id: string, caller: ClientPrincipal): Promise<ApiToken> {
    requireAdmin(caller);
    const target = await this.store.token(id);
    const visible = target !== null && (caller.tenantId === DEFAULT_TENANT_ID || caller.tenantId === target.tenantId);
    if (!target || !visible) throw new GatewayError(ErrorCode.NOT_FOUND, `id: API token ${JSON.stringify(id)} not found`, { field: 'id' });
    const tenant = await this.store.tenant(target.tenantId);
    if (!tenant) throw new GatewayError(ErrorCode.NOT_FOUND, `id: API token ${JSON.stringify(id)} not found`, { field: 'id' });
    const revoked = await this.store.revoke(id, new Date(), true);
    // refused here from now on; other replicas stop accepting it within tokenCacheMs
    this.tokens.forgetWhere((cached) => cached?.id === id);
    if (revoked === 'last-admin') {
      throw new GatewayError(
        ErrorCode.CONFLICT,
        `id: API token ${JSON.stringify(id)} is the default tenant's last usable admin token; create another admin token (createApiToken) before revoking it`,
        { field: 'id' },
      );
    }
    if (revoked === null) return toApiToken((await this.store.token(id)) ?? target, tenant);
    this.emit('token.revoked', revoked, byWhom(caller));
    return toApiToken(revoked, tenant);
  }

  async viewer(caller: ClientPrincipal): Promise<Viewer> {
    const tenant = await this.store.tenant(caller.tenantId);
    if (!tenant) throw new GatewayError(ErrorCode.UNAUTHENTICATED, 'the API token belongs to a tenant that no longer exists');
    return { tenant, role: caller.role };
  }

  /** The tenant, when the caller may see it (its own, or any for the default tenant's admins); NOT_FOUND otherwise. */
  private async visibleTenant(tenantId: string, caller: ClientPrincipal): Promise<Tenant> {
    const visible = caller.tenantId === DEFAULT_TENANT_ID || caller.tenantId === tenantId;
    const tenant = visible ? await this.store.tenant(tenantId) : null;
    if (!tenant) throw new GatewayError(ErrorCode.NOT_FOUND, `tenantId: tenant ${JSON.stringify(tenantId)} not found`, { field: 'tenantId' });
    return tenant;
  }

  /** lastUsedAt, at most once a minute per token; the first use of a token is audited (once, across replicas). */
  private async recordUse(stored: StoredToken, now: Date): Promise<void> {
    try {
      const { first } = await this.store.touch(stored, now, LAST_USED_RESOLUTION_MS);
      if (first) this.emit('token.first_use', stored, stored.id);
    } catch {
      // bookkeeping only: a failed write must not refuse a valid token
    }
  }

  private auditExpired(stored: StoredToken, now: Date): void {
    const last = this.expiredAudited.get(stored.id);
    if (last !== undefined && now.getTime() - last < EXPIRED_AUDIT_INTERVAL_MS) return;
    if (this.expiredAudited.size > 10_000) this.expiredAudited.clear();
    this.expiredAudited.set(stored.id, now.getTime());
    this.emit('token.expired_refused', stored);
  }

  private emit(audit: AuditEvent['audit'], token: StoredToken, by?: string): void {
    this.audit({ audit, tokenId: token.id, tenantId: token.tenantId, role: token.role, ...(by !== undefined ? { by } : {}), at: new Date().toISOString() });
  }
}

function requireAdmin(caller: ClientPrincipal): void {
  if (caller.role !== Role.ADMIN) throw new GatewayError(ErrorCode.FORBIDDEN, 'this operation needs an ADMIN token');
}

function byWhom(caller: ClientPrincipal): string {
  return caller.tokenId ?? 'auth-off';
}

function toApiToken(stored: StoredToken, tenant: Tenant): ApiToken {
  return {
    id: stored.id,
    role: stored.role,
    tenant,
    origin: stored.origin,
    createdAt: stored.createdAt,
    lastUsedAt: stored.lastUsedAt,
    expiresAt: stored.expiresAt,
    revokedAt: stored.revokedAt,
  };
}

/** The expiry createApiToken was asked for: null (never), or a time in the future. */
function expiryTime(expiry: { expiresInDays?: number | null; expiresAt?: Date | null }, now: Date): Date | null {
  const { expiresInDays, expiresAt } = expiry;
  if (expiresInDays != null && expiresAt != null) throw badInput('expiresInDays', 'give expiresInDays or expiresAt, not both');
  if (expiresInDays != null) {
    if (!Number.isInteger(expiresInDays) || expiresInDays < 1 || expiresInDays > MAX_EXPIRY_DAYS) {
      throw badInput('expiresInDays', `${expiresInDays} is not a whole number of days from 1 to ${MAX_EXPIRY_DAYS}`);
    }
    return new Date(now.getTime() + expiresInDays * 86_400_000);
  }
  if (expiresAt != null) {
    if (Number.isNaN(expiresAt.getTime()) || expiresAt <= now) throw badInput('expiresAt', `${JSON.stringify(expiresAt)} is not in the future`);
    if (expiresAt.getTime() > now.getTime() + MAX_EXPIRY_DAYS * 86_400_000) throw badInput('expiresAt', `must be within ${MAX_EXPIRY_DAYS} days from now`);
    return expiresAt;
  }
  return null;
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}
