import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { ErrorCode, GatewayError } from '../errors.js';
import { DEFAULT_TENANT_ID } from '../store/migrations.js';
import { checkNonEmpty } from '../validation.js';
import type { AuthStore } from './auth.store.js';
import { Role, type NewApiToken, type Tenant, type Viewer } from './auth.type.js';
import { bearerToken, type ClientPrincipal, type Principal } from './principal.js';

export { DEFAULT_TENANT_ID };

/** The row id of the token created (or given) on first start; one per database, whichever replica wins. */
const FIRST_ADMIN_TOKEN_ID = 'first-admin';
/** Tokens shorter than this are refused as STREAMLINE_ADMIN_TOKEN. */
export const MIN_TOKEN_LENGTH = 16;

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** 32 random bytes; the prefix tells a Streamline token apart in logs and secret scanners. */
export function generateToken(): string {
  return `sl_${randomBytes(32).toString('base64url')}`;
}

export interface AuthOptions {
  /** 'off': every request without a valid API token acts as the default tenant's admin. */
  readonly auth: 'on' | 'off';
  /** The engine workers' token; null disables the worker API. */
  readonly workerToken: string | null;
}

const LOCAL_ADMIN: ClientPrincipal = { kind: 'client', tenantId: DEFAULT_TENANT_ID, role: Role.ADMIN };

export class AuthService {
  constructor(
    private readonly store: AuthStore,
    private readonly options: AuthOptions,
  ) {}

  get enabled(): boolean {
    return this.options.auth === 'on';
  }

  /** Who sent a request with this Authorization value. */
  async principal(authorization: string | null): Promise<Principal> {
    const off = !this.enabled;
    if (!authorization) return off ? LOCAL_ADMIN : { kind: 'anonymous' };
    const token = bearerToken(authorization);
    if (token === null) return off ? LOCAL_ADMIN : { kind: 'unknown' };
    if (this.options.workerToken !== null && sameString(token, this.options.workerToken)) return { kind: 'worker' };
    const stored = await this.store.tokenByHash(hashToken(token));
    if (stored) return { kind: 'client', tenantId: stored.tenantId, role: stored.role };
    return off ? LOCAL_ADMIN : { kind: 'unknown' };
  }

  /**
   * First start: stores the given admin token (hashed) for the default tenant, or creates one when the
   * database has no first admin token yet. Returns the plaintext only when it was given or created now.
   */
  async bootstrap(given: string | undefined): Promise<{ token: string; created: boolean } | null> {
    if (given !== undefined) {
      if (given.length < MIN_TOKEN_LENGTH || /\s/.test(given)) throw new Error(`the admin token must be at least ${MIN_TOKEN_LENGTH} characters without spaces`);
      const tokenHash = hashToken(given);
      const first = !(await this.store.hasToken(FIRST_ADMIN_TOKEN_ID));
      await this.store.insertToken({ id: first ? FIRST_ADMIN_TOKEN_ID : undefined, tenantId: DEFAULT_TENANT_ID, tokenHash, role: Role.ADMIN });
      const stored = await this.store.tokenByHash(tokenHash);
      if (!stored) {
        // lost a race for the first-admin id to another replica: store it under an id of its own
        await this.store.insertToken({ tenantId: DEFAULT_TENANT_ID, tokenHash, role: Role.ADMIN });
      } else if (stored.tenantId !== DEFAULT_TENANT_ID || stored.role !== Role.ADMIN) {
        throw new Error(`the given admin token is already a ${stored.role} token of tenant ${stored.tenantId}`);
      }
      return { token: given, created: false };
    }
    if (await this.store.hasToken(FIRST_ADMIN_TOKEN_ID)) return null;
    const token = generateToken();
    const inserted = await this.store.insertToken({ id: FIRST_ADMIN_TOKEN_ID, tenantId: DEFAULT_TENANT_ID, tokenHash: hashToken(token), role: Role.ADMIN });
    return inserted ? { token, created: true } : null;
  }

  /** Admins of the default tenant (the operator) only. */
  async createTenant(name: string, caller: ClientPrincipal): Promise<Tenant> {
    requireAdmin(caller);
    if (caller.tenantId !== DEFAULT_TENANT_ID) throw new GatewayError(ErrorCode.FORBIDDEN, "only the default tenant's admins may create tenants");
    return this.store.insertTenant(checkNonEmpty('name', name));
  }

  /** Admins: tokens of their own tenant; admins of the default tenant: of any tenant. */
  async createApiToken(tenantId: string, role: Role, caller: ClientPrincipal): Promise<NewApiToken> {
    requireAdmin(caller);
    if (!Object.values(Role).includes(role)) throw new GatewayError(ErrorCode.BAD_USER_INPUT, `role: ${JSON.stringify(role)} is not one of ${Object.values(Role).join(', ')}`, { field: 'role' });
    const visible = caller.tenantId === DEFAULT_TENANT_ID || caller.tenantId === tenantId;
    const tenant = visible ? await this.store.tenant(tenantId) : null;
    if (!tenant) throw new GatewayError(ErrorCode.NOT_FOUND, `tenantId: tenant ${JSON.stringify(tenantId)} not found`, { field: 'tenantId' });
    const token = generateToken();
    const stored = await this.store.insertToken({ tenantId, tokenHash: hashToken(token), role });
    if (!stored) throw new GatewayError(ErrorCode.INTERNAL, 'could not store the new token');
    return { id: stored.id, token, role, tenant, createdAt: stored.createdAt };
  }

  async viewer(caller: ClientPrincipal): Promise<Viewer> {
    const tenant = await this.store.tenant(caller.tenantId);
    if (!tenant) throw new GatewayError(ErrorCode.UNAUTHENTICATED, 'the API token belongs to a tenant that no longer exists');
    return { tenant, role: caller.role };
  }
}

function requireAdmin(caller: ClientPrincipal): void {
  if (caller.role !== Role.ADMIN) throw new GatewayError(ErrorCode.FORBIDDEN, 'this operation needs an ADMIN token');
}

function sameString(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}
