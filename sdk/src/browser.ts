/**
 * @streamline/sdk/browser: the typed client for pages, with nothing Node-only in its module graph —
 * fetch for queries and mutations, the browser's WebSocket for subscriptions (graphql-ws), and the same
 * generated documents as the Node entry.
 */
import { StreamlineClient } from './client.js';

export { StreamlineClient } from './client.js';
export * from './errors.js';
export type { ErrorCode } from './errors.js';
export * from './types.js';
export * from './generated/graphql.js';

/**
 * A client for the gateway that served the page (`origin`: the page's location.origin): /graphql over
 * http(s), subscriptions over ws(s) with the browser's global WebSocket.
 */
export function sameOriginClient(token: string, origin: string): StreamlineClient {
  return new StreamlineClient({ url: `${origin}/graphql`, token });
}
