/**
 * The query limits as validation rules, without a server: every document the SDK (and so the CLI)
 * sends passes the default limits with room to spare; fragments cannot hide depth or cost; a fragment
 * cycle is refused by graphql's own rule without hanging this one; the settings refuse bad values by
 * name.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buildSchema, getIntrospectionQuery, Kind, parse, print, specifiedRules, validate, type FragmentDefinitionNode, type OperationDefinitionNode } from 'graphql';
import { describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS, limitsFromEnv } from '../src/limits/limits.settings.js';
import { measureOperation, queryLimitsRule } from '../src/limits/query-limits.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const schema = buildSchema(readFileSync(`${ROOT}schema.graphql`, 'utf8'));
const OPERATIONS_DIR = `${ROOT}sdk/src/operations/`;
const sdkDocument = parse(
  readdirSync(OPERATIONS_DIR)
    .filter((name) => name.endsWith('.graphql'))
    .map((name) => readFileSync(`${OPERATIONS_DIR}${name}`, 'utf8'))
    .join('\n'),
);
const rules = [...specifiedRules, queryLimitsRule(DEFAULT_LIMITS)];

function measure(text: string) {
  const document = parse(text);
  const fragments = new Map(document.definitions.filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION).map((d) => [d.name.value, d]));
  const operation = document.definitions.find((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION)!;
  return measureOperation(schema, operation, (name) => fragments.get(name));
}

describe('query limits', () => {
  it('admit every operation the SDK sends, each with room to spare', () => {
    // the whole set of documents together is far below the parser's token limit
    expect(() => parse(print(sdkDocument), { maxTokens: DEFAULT_LIMITS.maxTokens / 5 })).not.toThrow();
    const operations = sdkDocument.definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
    expect(operations.length).toBeGreaterThanOrEqual(10);
    for (const operation of operations) {
      // each operation on its own, with the fragments it uses (as the SDK sends it)
      const errors = validate(schema, { ...sdkDocument, definitions: [operation, ...sdkDocument.definitions.filter((d) => d.kind === Kind.FRAGMENT_DEFINITION)] }, rules).filter(
        (error) => !/Fragment ".+" is never used/.test(error.message),
      );
      expect(errors.map((e) => e.message), operation.name?.value).toEqual([]);
      const fragments = new Map(sdkDocument.definitions.filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION).map((d) => [d.name.value, d]));
      const measured = measureOperation(schema, operation, (name) => fragments.get(name));
      expect(measured.depth, operation.name?.value).toBeLessThanOrEqual(DEFAULT_LIMITS.maxDepth / 2);
      // The largest, Plan (profiles, report, sweep candidates with their task scores), is about a quarter.
      expect(measured.cost, operation.name?.value).toBeLessThanOrEqual(DEFAULT_LIMITS.maxCost / 3);
    }
  });

  it("admit the engine workers' operations and a standard introspection query", () => {
    for (const text of [
      'mutation Claim($workerId: String!) { claimPlan(workerId: $workerId) { planId config } }',
      'mutation Beat($planId: ID!, $workerId: String!) { heartbeat(planId: $planId, workerId: $workerId) { cancelled } }',
      getIntrospectionQuery(),
    ]) {
      expect(validate(schema, parse(text), rules).map((e) => e.message)).toEqual([]);
    }
  });

  it('measure depth, aliases, root fields and cost through fragments', () => {
    expect(measure('{ models { id } }')).toEqual({ depth: 2, aliases: 0, rootFields: 1, cost: 11 });
    expect(measure('{ a: models { id } viewer { role } }')).toMatchObject({ aliases: 1, rootFields: 2 });
    const direct = measure('{ models { plans { model { id } } } }');
    const viaFragments = measure('{ models { ...M } } fragment M on Model { plans { ...P } } fragment P on PruningPlan { model { id } }');
    expect(viaFragments).toEqual(direct);
    expect(direct).toMatchObject({ depth: 4, cost: 1 + 10 * (1 + 10 * (1 + 1)) });
    // a literal limit is the list's size
    expect(measure('{ plan(id: "x") { events(limit: 2) { seq } } }').cost).toBe(1 + (1 + 2 * 1));
    // a fragment spread many times is measured once, and counted every time
    const wide = `{ models { ${Array.from({ length: 5 }, (_, i) => `p${i}: plans { ...S }`).join(' ')} } } fragment S on PruningPlan { id status }`;
    expect(measure(wide)).toMatchObject({ aliases: 5, cost: 1 + 10 * 5 * (1 + 10 * 2) });
  });

  it('refuse with QUERY_TOO_COMPLEX, naming the setting and its value', () => {
    const errors = validate(schema, parse('{ models { plans { model { plans { model { plans { model { plans { model { plans { id } } } } } } } } } } }'), rules);
    expect(errors.map((e) => e.message)).toContain('query depth 11 exceeds STREAMLINE_QUERY_MAX_DEPTH=10');
    expect(errors.every((e) => e.extensions.code === 'QUERY_TOO_COMPLEX')).toBe(true);
  });

  it("leave a fragment cycle to graphql's own rule, without hanging", () => {
    const errors = validate(schema, parse('{ models { ...A } } fragment A on Model { plans { ...B } } fragment B on PruningPlan { model { ...A } }'), rules);
    expect(errors.map((e) => e.message).join('\n')).toMatch(/Cannot spread fragment "A" within itself/);
  });
});

describe('limits settings', () => {
  it('default to the documented values, production turning introspection and the landing page off', () => {
    expect(limitsFromEnv({})).toMatchObject({ ...DEFAULT_LIMITS, introspection: true, landingPage: true, corsOrigins: [] });
    expect(limitsFromEnv({ NODE_ENV: 'production' })).toMatchObject({ introspection: false, landingPage: false });
    expect(limitsFromEnv({ NODE_ENV: 'production', STREAMLINE_INTROSPECTION: 'on' })).toMatchObject({ introspection: true, landingPage: false });
    expect(limitsFromEnv({ STREAMLINE_INTROSPECTION: 'off' }).introspection).toBe(false);
    expect(limitsFromEnv({ STREAMLINE_CORS_ORIGINS: 'https://a.example.com, http://localhost:5173' }).corsOrigins).toEqual(['https://a.example.com', 'http://localhost:5173']);
    expect(limitsFromEnv({ STREAMLINE_REQUEST_TIMEOUT_MS: '0' }).requestTimeoutMs).toBe(0);
  });

  it('refuse values that are not positive integers, naming the variable', () => {
    for (const name of ['STREAMLINE_QUERY_MAX_DEPTH', 'STREAMLINE_QUERY_MAX_ALIASES', 'STREAMLINE_QUERY_MAX_COST', 'STREAMLINE_QUERY_MAX_TOKENS', 'STREAMLINE_WS_MAX_CONNECTIONS_PER_TENANT', 'STREAMLINE_WS_MAX_SUBSCRIPTIONS_PER_TENANT', 'STREAMLINE_WS_CONNECTION_INIT_TIMEOUT_MS']) {
      for (const value of ['-1', '1.5', 'ten', '0', '1e3']) expect(() => limitsFromEnv({ [name]: value }), `${name}=${value}`).toThrow(name);
    }
    for (const value of ['-1', '2.5', 'soon']) expect(() => limitsFromEnv({ STREAMLINE_REQUEST_TIMEOUT_MS: value })).toThrow('STREAMLINE_REQUEST_TIMEOUT_MS');
    expect(() => limitsFromEnv({ STREAMLINE_INTROSPECTION: 'yes' })).toThrow('STREAMLINE_INTROSPECTION');
    for (const value of ['*', 'https://a.example.com/path', 'a.example.com', 'ftp://a.example.com']) expect(() => limitsFromEnv({ STREAMLINE_CORS_ORIGINS: value })).toThrow('STREAMLINE_CORS_ORIGINS');
  });
});
