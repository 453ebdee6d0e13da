/** @streamline/sdk: the typed client for Streamline's GraphQL API. */
export { StreamlineClient, type StreamlineClientOptions } from './client.js';
export { PlanHandle, type ProgressOptions } from './plan-handle.js';
export * from './errors.js';
// errors.ts's ErrorCode (the schema's codes and the SDK's own) rather than the generated one it extends,
// which is exported as GatewayErrorCode.
export type { ErrorCode } from './errors.js';
export * from './types.js';
// The generated typed documents, for queries the facade does not wrap: client.query(PlanDocument, …).
export * from './generated/graphql.js';
