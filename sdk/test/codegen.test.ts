/** The checked-in generated documents match what codegen makes from today's schema and operations. */
import { readFileSync } from 'node:fs';
import { generate } from '@graphql-codegen/cli';
import { expect, it } from 'vitest';
import config, { GENERATED_FILE } from '../codegen.js';

it('has src/generated/graphql.ts up to date (run `npm run codegen -w sdk` when this fails)', async () => {
  // generate(…, false) returns the files instead of writing them: nothing in the tree changes.
  const [output] = await generate({ ...config, silent: true }, false);
  const checkedIn = readFileSync(new URL(`../${GENERATED_FILE}`, import.meta.url), 'utf8');
  expect(output.filename.endsWith(GENERATED_FILE)).toBe(true);
  expect(checkedIn === output.content, 'sdk/src/generated/graphql.ts is stale: run `npm run codegen -w sdk`').toBe(true);
});
