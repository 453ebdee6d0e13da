/**
 * The gateway's limits on what one request or connection may cost, and its transport policy
 * (introspection, field suggestions, landing page, CORS), from the environment. Every value has a
 * default that admits every document the SDK sends; invalid values stop the start with a message that
 * names the variable.
 */
import { nonNegativeInteger, positiveInteger } from '../env-integers.js';

export interface GatewayLimits {
  /** STREAMLINE_QUERY_MAX_DEPTH: deepest selection of an operation, fragments followed. Default 10. */
  readonly maxDepth: number;
  /** STREAMLINE_QUERY_MAX_ALIASES: aliased fields, and root fields, of one operation (each). Default 30. */
  readonly maxAliases: number;
  /** STREAMLINE_QUERY_MAX_TOKENS: lexical tokens in one document; the parser stops past it. Default 20000. */
  readonly maxTokens: number;
  /** STREAMLINE_QUERY_MAX_COST: the operation's estimated cost (see query-limits.ts). Default 5000. */
  readonly maxCost: number;
  /** STREAMLINE_REQUEST_TIMEOUT_MS: an HTTP request still running after this is answered DEADLINE_EXCEEDED. Default 30000; 0 turns it off. */
  readonly requestTimeoutMs: number;
  /** STREAMLINE_WS_MAX_CONNECTIONS_PER_TENANT: open graphql-ws connections of one tenant. Default 50. */
  readonly maxConnectionsPerTenant: number;
  /** STREAMLINE_WS_MAX_SUBSCRIPTIONS_PER_TENANT: active subscriptions of one tenant, all connections together. Default 200. */
  readonly maxSubscriptionsPerTenant: number;
  /**
   * STREAMLINE_WS_MAX_BUFFERED_EVENTS: messages one subscription may hold for a client that reads more
   * slowly than they come; past it the connection is closed (4413, the reason says the afterSeq to
   * resume from). Default 1000.
   */
  readonly maxBufferedEvents: number;
  /** STREAMLINE_WS_CONNECTION_INIT_TIMEOUT_MS: how long a graphql-ws connection may stay open without a connection_init message (then 4408). Default 10000. */
  readonly connectionInitWaitMs: number;
  /**
   * STREAMLINE_WS_REAUTH_INTERVAL_MS: how often an open graphql-ws connection's token is checked again;
   * a token revoked or expired since the connection opened closes it (4401), subscriptions and all.
   * Default 10000 (a token revoked on another replica is seen once STREAMLINE_TOKEN_CACHE_MS has passed too).
   */
  readonly reauthIntervalMs: number;
  /**
   * Introspection and "Did you mean …" suggestions in validation errors. Default: on, except when
   * NODE_ENV=production; STREAMLINE_INTROSPECTION=on|off overrides.
   */
  readonly introspection: boolean;
  /** The Apollo landing page on GET /graphql from a browser: off when NODE_ENV=production. */
  readonly landingPage: boolean;
  /** STREAMLINE_CORS_ORIGINS: exact origins (scheme://host[:port]) allowed cross-origin; default none. */
  readonly corsOrigins: readonly string[];
}

export const DEFAULT_LIMITS = {
  maxDepth: 10,
  maxAliases: 30,
  maxCost: 5000,
  maxTokens: 20_000,
  requestTimeoutMs: 30_000,
  maxConnectionsPerTenant: 50,
  maxSubscriptionsPerTenant: 200,
  connectionInitWaitMs: 10_000,
  reauthIntervalMs: 10_000,
  maxBufferedEvents: 1_000,
} as const;

/** The limits and transport policy the environment asks for (defaults for what it does not set). */
export function limitsFromEnv(env: NodeJS.ProcessEnv = process.env): GatewayLimits {
  const production = env.NODE_ENV === 'production';
  return {
    maxDepth: positiveInteger(env, 'STREAMLINE_QUERY_MAX_DEPTH', DEFAULT_LIMITS.maxDepth),
    maxAliases: positiveInteger(env, 'STREAMLINE_QUERY_MAX_ALIASES', DEFAULT_LIMITS.maxAliases),
    maxCost: positiveInteger(env, 'STREAMLINE_QUERY_MAX_COST', DEFAULT_LIMITS.maxCost),
    maxTokens: positiveInteger(env, 'STREAMLINE_QUERY_MAX_TOKENS', DEFAULT_LIMITS.maxTokens),
    requestTimeoutMs: nonNegativeInteger(env, 'STREAMLINE_REQUEST_TIMEOUT_MS', DEFAULT_LIMITS.requestTimeoutMs),
    maxConnectionsPerTenant: positiveInteger(env, 'STREAMLINE_WS_MAX_CONNECTIONS_PER_TENANT', DEFAULT_LIMITS.maxConnectionsPerTenant),
    maxSubscriptionsPerTenant: positiveInteger(env, 'STREAMLINE_WS_MAX_SUBSCRIPTIONS_PER_TENANT', DEFAULT_LIMITS.maxSubscriptionsPerTenant),
    connectionInitWaitMs: positiveInteger(env, 'STREAMLINE_WS_CONNECTION_INIT_TIMEOUT_MS', DEFAULT_LIMITS.connectionInitWaitMs),
    reauthIntervalMs: positiveInteger(env, 'STREAMLINE_WS_REAUTH_INTERVAL_MS', DEFAULT_LIMITS.reauthIntervalMs),
    maxBufferedEvents: positiveInteger(env, 'STREAMLINE_WS_MAX_BUFFERED_EVENTS', DEFAULT_LIMITS.maxBufferedEvents),
    introspection: onOff(env, 'STREAMLINE_INTROSPECTION', !production),
    landingPage: !production,
    corsOrigins: corsOrigins(env.STREAMLINE_CORS_ORIGINS),
  };
}

function onOff(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (raw === 'on') return true;
  if (raw === 'off') return false;
  throw new Error(`${name}=${JSON.stringify(raw)} is not "on" or "off"`);
}

/** Comma-separated exact origins, e.g. "https://app.example.com,http://localhost:5173"; "*" and paths are refused. */
function corsOrigins(raw: string | undefined): string[] {
  if (raw === undefined || raw.trim() === '') return [];
  return raw
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '')
    .map((entry) => {
      let url: URL | null = null;
      try {
        url = new URL(entry);
      } catch {
        url = null;
      }
      if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.origin !== entry.replace(/\/$/, '')) {
        throw new Error(`STREAMLINE_CORS_ORIGINS: ${JSON.stringify(entry)} is not an origin (scheme://host[:port], exactly as browsers send it; "*" is not accepted)`);
      }
      return url.origin;
    });
}
