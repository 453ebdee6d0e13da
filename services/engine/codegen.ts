/**
 * Typed documents for the worker's side of the gateway API, from the root schema.graphql, made as the
 * SDK's are (sdk/codegen.ts): typescript-operations + typed-document-node. `documentMode: 'string'`
 * stores each document as its source text, so the worker needs no `graphql` package at run time.
 * `npm run codegen -w services/engine` (or `npm run sdk:codegen`) writes src/worker/generated/graphql.ts,
 * which is checked in; test/worker-codegen.test.ts fails when it is stale.
 */
import { fileURLToPath } from 'node:url';
import type { CodegenConfig } from '@graphql-codegen/cli';

const here = fileURLToPath(new URL('.', import.meta.url));

export const GENERATED_FILE = 'src/worker/generated/graphql.ts';

const config: CodegenConfig = {
  schema: `${here}../../schema.graphql`,
  documents: [`${here}src/worker/operations/*.graphql`],
  overwrite: true,
  generates: {
    [`${here}${GENERATED_FILE}`]: {
      plugins: ['typescript-operations', 'typed-document-node'],
      config: {
        scalars: { DateTime: 'string', SafeInt: 'number', JSON: 'unknown' },
        useTypeImports: true,
        avoidOptionals: { field: true, inputValue: false, object: false, defaultValue: false },
        documentMode: 'string',
      },
    },
  },
};

export default config;
