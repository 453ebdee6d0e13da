import { createRequire } from 'node:module';
import { defineConfig } from 'vitest/config';

const require = createRequire(import.meta.url);

export default defineConfig({
  resolve: {
    // graphql 16 ships CommonJS (main) and ESM (module) builds. Node, and every library that imports it
    // (type-graphql, Apollo, graphql-ws, graphql-scalars), loads the CommonJS one; Vite would give test
    // sources the ESM one, and two copies of GraphQLError/GraphQLScalarType break instanceof checks.
    alias: [{ find: /^graphql$/, replacement: require.resolve('graphql') }],
  },
  test: {
    include: ['services/*/test/**/*.test.ts', 'sdk/test/**/*.test.ts', 'web/test/**/*.test.ts', 'test/**/*.test.ts', 'testing/**/*.test.ts'],
    // A PostgreSQL server for the suites that need one, and a temporary folder of the run's own.
    globalSetup: ['testing/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
