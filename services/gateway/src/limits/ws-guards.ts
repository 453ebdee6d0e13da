/**
 * graphql-ws hooks: authentication at connection_init, per-tenant limits on connections and on
 * subscriptions, and the query limits (and, when introspection is off, no introspection) for every
 * operation sent over the socket.
 *
 * - No token (or a blank one), or a token that is not valid, auth on: close 4401 "Unauthorized" (as
 *   HTTP answers both UNAUTHENTICATED, and the SDK maps 4401 to UnauthenticatedError). A valid token
 *   that may not subscribe — the worker token: close 4403 "Forbidden".
 * - A tenant's connection beyond STREAMLINE_WS_MAX_CONNECTIONS_PER_TENANT: close 4429, the reason
 *   naming QUOTA_EXCEEDED and the setting. A subscription beyond STREAMLINE_WS_MAX_SUBSCRIPTIONS_PER_TENANT
 *   (all the tenant's connections together): an `error` message on that subscription, QUOTA_EXCEEDED.
 * - A connection that never sends connection_init is closed by graphql-ws after connectionInitWaitMs
 *   (4408).
 * - An open connection's token is checked again every reauthIntervalMs: one revoked or expired since
 *   is closed 4401 with the reason (its running subscriptions end with it; each operation also reads the
 *   token again).
 */
import { GraphQLError, getOperationAST, validate, type DocumentNode, type ExecutionArgs, type GraphQLSchema, type ValidationRule } from 'graphql';
import type { ServerOptions } from 'graphql-ws';
import type { WebSocket } from 'ws';
import type { Principal } from '../auth/principal.js';
import { ErrorCode, GatewayError } from '../errors.js';
import type { GatewayLimits } from './limits.settings.js';
import { parseWithinLimits } from './query-limits.js';
import { rememberDocumentText } from '../events/shared-execution.js';

export const CLOSE_UNAUTHORIZED = 4401;
export const CLOSE_FORBIDDEN = 4403;
/** Too many connections for the tenant (like HTTP 429). */
export const CLOSE_TOO_MANY_CONNECTIONS = 4429;
/** The client read too slowly: a subscription's buffer (STREAMLINE_WS_MAX_BUFFERED_EVENTS) overflowed; the reason says how to resume. */
export const CLOSE_SLOW_SUBSCRIBER = 4413;
/** How long a slow subscriber's close handshake may take before its socket is destroyed. */
const SLOW_CLOSE_GRACE_MS = 1_000;

/**
 * Disconnects a client whose subscription overflowed: a close frame with the reason (which says how to
 * resume), then, since a client that does not read may never answer it, the socket destroyed shortly
 * after, dropping whatever was still buffered for it.
 */
export function disconnectSlowSubscriber(socket: WebSocket, reason: string): void {
  if (socket.readyState === socket.CLOSED) return;
  socket.close(CLOSE_SLOW_SUBSCRIBER, reason.slice(0, 120));
  setTimeout(() => socket.terminate(), SLOW_CLOSE_GRACE_MS).unref();
}

type Extra = { readonly socket: WebSocket };
type Hooks = Required<Pick<ServerOptions<Record<string, unknown>, Extra>, 'onConnect' | 'onSubscribe' | 'onComplete' | 'onClose'>> & {
  readonly connectionInitWaitTimeout: number;
};

interface Connection {
  readonly tenantId: string;
  /** Ids of this connection's subscriptions that count against the tenant's limit. */
  readonly subscriptions: Set<string>;
  /** The periodic check of the connection's token. */
  readonly reauth: NodeJS.Timeout;
}

/** The authorization connection parameter (either spelling), or null when absent or blank. */
export function authorizationParam(params: Readonly<Record<string, unknown>> | undefined): string | null {
  const value = params?.authorization ?? params?.Authorization;
  return typeof value === 'string' && value.trim() !== '' ? value : null;
}

export function websocketGuards(options: {
  readonly schema: GraphQLSchema;
  readonly limits: Pick<GatewayLimits, 'maxConnectionsPerTenant' | 'maxSubscriptionsPerTenant' | 'connectionInitWaitMs' | 'reauthIntervalMs' | 'maxTokens'>;
  /** All validation rules an operation must pass (graphql's own, the query limits, …). */
  readonly rules: readonly ValidationRule[];
  readonly principal: (authorization: string | null) => Promise<Principal>;
}): Hooks {
  const { schema, limits, rules } = options;
  const connectionsByTenant = new Map<string, number>();
  const subscriptionsByTenant = new Map<string, number>();
  const connections = new WeakMap<object, Connection>();
  const change = (counts: Map<string, number>, tenantId: string, by: number) => {
    const next = (counts.get(tenantId) ?? 0) + by;
    if (next > 0) counts.set(tenantId, next);
    else counts.delete(tenantId);
  };

  return {
    connectionInitWaitTimeout: limits.connectionInitWaitMs,

    async onConnect(ctx) {
      const { socket } = ctx.extra;
      const authorization = authorizationParam(ctx.connectionParams);
      const principal = await options.principal(authorization);
      switch (principal.kind) {
        case 'anonymous':
          socket.close(CLOSE_UNAUTHORIZED, 'Unauthorized: send the authorization connection parameter (Bearer <token>)');
          return false;
        case 'unknown':
          // like HTTP (UNAUTHENTICATED) and as the SDK maps it: a token that is not valid is no credential
          socket.close(CLOSE_UNAUTHORIZED, 'Unauthorized: the API token is not valid');
          return false;
        case 'worker':
          socket.close(CLOSE_FORBIDDEN, 'Forbidden: the worker token may not open subscriptions');
          return false;
      }
      const open = connectionsByTenant.get(principal.tenantId) ?? 0;
      if (open >= limits.maxConnectionsPerTenant) {
        socket.close(CLOSE_TOO_MANY_CONNECTIONS, `QUOTA_EXCEEDED: the tenant has ${open} connections, STREAMLINE_WS_MAX_CONNECTIONS_PER_TENANT=${limits.maxConnectionsPerTenant}`);
        return false;
      }
      change(connectionsByTenant, principal.tenantId, 1);
      const reauth = setInterval(() => {
        void options.principal(authorization).then(
          (now) => {
            if (now.kind === 'client' && now.tenantId === principal.tenantId) return;
            // "the API token … was revoked at …" without the advice after it: a close reason holds 123 bytes
            const why = now.kind === 'unknown' && now.message ? now.message.split(';')[0] : 'the API token is no longer valid';
            socket.close(CLOSE_UNAUTHORIZED, `Unauthorized: ${why}`.slice(0, 120));
          },
          () => {}, // the store did not answer: the connection stays until a check succeeds
        );
      }, limits.reauthIntervalMs);
      reauth.unref();
      connections.set(ctx, { tenantId: principal.tenantId, subscriptions: new Set(), reauth });
      return true;
    },

    async onSubscribe(ctx, id, payload) {
      const connection = connections.get(ctx);
      if (!connection) return [new GatewayError(ErrorCode.UNAUTHENTICATED, 'the connection is not authenticated')];
      let document: DocumentNode;
      try {
        document = parseWithinLimits(payload.query, limits.maxTokens);
      } catch (error) {
        return [error instanceof GraphQLError ? error : new GatewayError(ErrorCode.BAD_USER_INPUT, 'the query could not be parsed')];
      }
      const errors = validate(schema, document, rules);
      if (errors.length > 0) return errors;
      rememberDocumentText(document, payload.query);
      const operation = getOperationAST(document, payload.operationName);
      if (!operation) return [new GatewayError(ErrorCode.BAD_USER_INPUT, 'operationName: no single operation of that name in the document')];
      if (operation.operation === 'subscription') {
        const active = subscriptionsByTenant.get(connection.tenantId) ?? 0;
        if (active >= limits.maxSubscriptionsPerTenant) {
          return [new GatewayError(ErrorCode.QUOTA_EXCEEDED, `the tenant has ${active} active subscriptions, STREAMLINE_WS_MAX_SUBSCRIPTIONS_PER_TENANT=${limits.maxSubscriptionsPerTenant}`)];
        }
        change(subscriptionsByTenant, connection.tenantId, 1);
        connection.subscriptions.add(id);
      }
      const args: ExecutionArgs = { schema, document, operationName: payload.operationName, variableValues: payload.variables };
      return args;
    },

    async onComplete(ctx, id) {
      const connection = connections.get(ctx);
      if (connection?.subscriptions.delete(id)) change(subscriptionsByTenant, connection.tenantId, -1);
    },

    async onClose(ctx) {
      const connection = connections.get(ctx);
      if (!connection) return;
      clearInterval(connection.reauth);
      connections.delete(ctx);
      change(subscriptionsByTenant, connection.tenantId, -connection.subscriptions.size);
      connection.subscriptions.clear();
      change(connectionsByTenant, connection.tenantId, -1);
    },
  };
}
