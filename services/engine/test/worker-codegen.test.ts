/** The worker's checked-in generated documents match what codegen makes from today's schema and operations. */
import { readFileSync } from 'node:fs';
import { generate } from '@graphql-codegen/cli';
import { expect, it } from 'vitest';
import config, { GENERATED_FILE } from '../codegen.js';
import { ClaimDocument } from '../src/worker/generated/graphql.js';

it('has src/worker/generated/graphql.ts up to date (run `npm run codegen -w services/engine` when this fails)', async () => {
  // generate(…, false) returns the files instead of writing them: nothing in the tree changes.
  const [output] = await generate({ ...config, silent: true }, false);
  const checkedIn = readFileSync(new URL(`../${GENERATED_FILE}`, import.meta.url), 'utf8');
  expect(output.filename.endsWith(GENERATED_FILE)).toBe(true);
  expect(checkedIn === output.content, 'services/engine/src/worker/generated/graphql.ts is stale: run `npm run codegen -w services/engine`').toBe(true);
});

it('stores the documents as strings: the worker loads no graphql package', () => {
  const generated = readFileSync(new URL(`../${GENERATED_FILE}`, import.meta.url), 'utf8');
  const imports = [...generated.matchAll(/^import (type )?.* from '([^']+)';$/gm)].map(([, type, from]) => ({ type: Boolean(type), from }));
  expect(imports).toEqual([{ type: true, from: '@graphql-typed-document-node/core' }]);
  // What the transport sends: the operation's source text, not a parsed DocumentNode.
  expect(ClaimDocument.toString()).toMatch(/^\s*mutation Claim\(\$workerId: String!\) \{\s*claimPlan\(workerId: \$workerId\) \{\s*planId\s+config\s+contractVersion\s*\}/);
});
