/**
 * Who sent a request, decided once per request (HTTP) or operation (graphql-ws) from its
 * Authorization header or `authorization` connection parameter.
 */
import { ErrorCode, GatewayError } from '../errors.js';
import type { Role } from './auth.type.js';

export type Principal =
  /** No Authorization at all. */
  | { readonly kind: 'anonymous' }
  /**
   * A token that is not a worker token and matches no usable API token (or is not `Bearer …`);
   * `message` says why when the token is known but revoked or expired.
   */
  | { readonly kind: 'unknown'; readonly message?: string }
  /** The engine workers' token: worker operations only. */
  | { readonly kind: 'worker' }
  /**
   * An API token of a tenant (or anyone, when auth is off: the default tenant's admin); `tokenId` is
   * the stored token's id (absent for auth off's stand-in admin), named as `by` in audit lines.
   */
  | { readonly kind: 'client'; readonly tenantId: string; readonly role: Role; readonly tokenId?: string };

export type ClientPrincipal = Extract<Principal, { kind: 'client' }>;

/** The request's tenant and role; refuses requests without an API token as the codes say. */
export function requireClient(ctx: { readonly principal: Principal }): ClientPrincipal {
  const { principal } = ctx;
  switch (principal.kind) {
    case 'client':
      return principal;
    case 'anonymous':
      throw new GatewayError(ErrorCode.UNAUTHENTICATED, 'this operation needs an API token: Authorization: Bearer <token> (graphql-ws: the authorization connection parameter)');
    case 'unknown':
      throw new GatewayError(ErrorCode.UNAUTHENTICATED, principal.message ?? 'the API token is not valid: send Authorization: Bearer <token> with a token from createApiToken or the first admin token');
    case 'worker':
      throw new GatewayError(ErrorCode.FORBIDDEN, 'the worker token may only do worker operations (claimPlan, heartbeat, reportProgress, completePlan, failPlan, releasePlan)');
  }
}

/** The bearer token of an Authorization value, or null when it is not `Bearer <token>`. */
export function bearerToken(authorization: string): string | null {
  const match = /^\s*Bearer\s+(\S+)\s*$/i.exec(authorization);
  return match ? match[1] : null;
}
