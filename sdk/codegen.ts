/**
 * Typed documents from the root schema.graphql (the gateway emits it; this package never edits it).
 * typescript-operations + typed-document-node only: adding the `typescript` plugin would emit every
 * enum twice (see DESIGN.md). `npm run codegen -w sdk` writes src/generated/graphql.ts, which is
 * checked in; test/codegen.test.ts fails when it is stale.
 */
import { fileURLToPath } from 'node:url';
import type { CodegenConfig } from '@graphql-codegen/cli';

const here = fileURLToPath(new URL('.', import.meta.url));

export const GENERATED_FILE = 'src/generated/graphql.ts';

const config: CodegenConfig = {
  schema: `${here}../schema.graphql`,
  documents: [`${here}src/operations/*.graphql`],
  overwrite: true,
  generates: {
    [`${here}${GENERATED_FILE}`]: {
      plugins: ['typescript-operations', 'typed-document-node'],
      config: {
        // Scalars as they arrive in JSON: DateTime is an ISO string, SafeInt a plain number.
        scalars: { DateTime: 'string', SafeInt: 'number', JSON: 'unknown' },
        useTypeImports: true,
        avoidOptionals: { field: true, inputValue: false, object: false, defaultValue: false },
      },
    },
  },
};

export default config;
