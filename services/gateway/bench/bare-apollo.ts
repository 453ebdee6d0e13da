/**
 * The reference the gateway's `plan(id)` is measured against: a bare Apollo Server 5 on express 5 with
 * a one-field schema answering `plan(id) { id status progress removedLayers }` from memory, no auth,
 * no limits, no store. Prints `bare apollo: http://127.0.0.1:<port>/graphql` once it listens.
 *
 *   node --import tsx services/gateway/bench/bare-apollo.ts        (PORT, default 0)
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { expressMiddleware } from '@as-integrations/express5';
import express from 'express';

const typeDefs = `#graphql
  enum PlanStatus { QUEUED RUNNING SUCCEEDED FAILED CANCELLED }
  type PruningPlan { id: ID! status: PlanStatus! progress: Float! removedLayers: [Int!]! }
  type Query { plan(id: ID!): PruningPlan }
`;
const plans = new Map<string, { id: string; status: string; progress: number; removedLayers: number[] }>();
const resolvers = {
  Query: {
    plan: (_: unknown, { id }: { id: string }) => plans.get(id) ?? { id, status: 'RUNNING', progress: 0.5, removedLayers: [2, 3] },
  },
};

const app = express();
const httpServer = createServer(app);
const apollo = new ApolloServer({ typeDefs, resolvers, plugins: [ApolloServerPluginDrainHttpServer({ httpServer })] });
await apollo.start();
app.use('/graphql', express.json(), expressMiddleware(apollo));
await new Promise<void>((resolve) => httpServer.listen(Number(process.env.PORT ?? 0), '127.0.0.1', resolve));
console.log(`bare apollo: http://127.0.0.1:${(httpServer.address() as AddressInfo).port}/graphql`);
const stop = () => void apollo.stop().then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
