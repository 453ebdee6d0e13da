/** The code-first schema: every feature's resolvers, the contract's scalars, and the pubsub. */
import 'reflect-metadata';
import { lexicographicSortSchema, printSchema, type GraphQLSchema } from 'graphql';
import { buildSchema, type NonEmptyArray } from 'type-graphql';
import { AuthResolver } from './auth/auth.resolver.js';
import { CandidateResolver } from './candidates/candidate.resolver.js';
import type { GatewayContext } from './context.js';
import { DownloadResolver } from './downloads/download.resolver.js';
import { ImportanceResolver } from './importance/importance.resolver.js';
import { ModelResolver } from './models/model.resolver.js';
import { createGatewayPubSub, type GatewayPubSub } from './events/plan-events.js';
import { PlanDefaultsResolver } from './plan-defaults/plan-defaults.resolver.js';
import { PlanEstimateResolver } from './plan-estimates/plan-estimate.resolver.js';
import { PlanResolver } from './plans/plan.resolver.js';
import { ProgressResolver } from './progress/progress.resolver.js';
import { DateTimeScalar } from './scalars.js';
import { StabilityResolver } from './stability/stability.resolver.js';
import { WorkerResolver } from './workers/worker.resolver.js';
import { HealthResolver } from './health/health.resolver.js';

export const RESOLVERS: NonEmptyArray<Function> = [ModelResolver, PlanResolver, CandidateResolver, ProgressResolver, ImportanceResolver, StabilityResolver, WorkerResolver, AuthResolver, DownloadResolver, HealthResolver, PlanDefaultsResolver, PlanEstimateResolver];

export async function buildGatewaySchema(pubSub: GatewayPubSub = createGatewayPubSub()): Promise<GraphQLSchema> {
  return buildSchema({
    resolvers: RESOLVERS,
    pubSub,
    container: ({ context }) => (context as GatewayContext).container,
    scalarsMap: [{ type: Date, scalar: DateTimeScalar }],
    validate: false,
  });
}

/** The schema as checked in at the repository root: sorted, so that moving code around does not churn it. */
export async function printGatewaySchema(): Promise<string> {
  const schema = await buildGatewaySchema();
  return `${printSchema(lexicographicSortSchema(schema))}\n`;
}
