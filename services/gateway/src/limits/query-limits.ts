/**
 * Query limits, checked by GraphQL validation before anything runs (over HTTP and graphql-ws alike):
 * depth, aliases and root fields, and an estimated cost — after the parser has refused documents of
 * more than STREAMLINE_QUERY_MAX_TOKENS tokens (validating a 1 MB document takes about a second). Fragments are followed wherever they are
 * spread, so a fragment cannot hide depth or cost; each fragment is measured once (memoized), so the
 * check stays linear in the size of the document however often fragments are spread. A fragment cycle
 * counts as nothing here: graphql's own NoFragmentCyclesRule refuses it.
 *
 * Cost model (an upper-bound estimate; no variables are known at validation time):
 * - every field costs 1;
 * - a field whose type is a list multiplies the cost of its selection by the list's assumed size: its
 *   `first`, `last` or `limit` argument when that is an integer literal, else ASSUMED_LIST_SIZE (10);
 * - fragments and inline fragments add the cost of their selections (every branch counted);
 * - `__schema` and `__type` (introspection, bounded by the schema rather than by data) cost 1.
 * Depth: a field with no selection is depth 1; `{ models { id } }` is depth 2. `ofType` (the
 * introspection wrapper chain, one object per level) adds no depth.
 */
import {
  GraphQLError,
  getNamedType,
  getNullableType,
  isCompositeType,
  isListType,
  isObjectType,
  isInterfaceType,
  Kind,
  parse,
  SchemaMetaFieldDef,
  TypeMetaFieldDef,
  TypeNameMetaFieldDef,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLCompositeType,
  type GraphQLField,
  type GraphQLFormattedError,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';
import { ErrorCode } from '../errors.js';
import type { GatewayLimits } from './limits.settings.js';

/** The size assumed for a list field without a `first`/`last`/`limit` literal. */
export const ASSUMED_LIST_SIZE = 10;
const LIST_SIZE_ARGUMENTS = new Set(['first', 'last', 'limit']);

export type QueryLimits = Pick<GatewayLimits, 'maxDepth' | 'maxAliases' | 'maxCost'>;
// The token limit (maxTokens) is the parser's: Apollo's parseOptions and parseWithinLimits below.

export interface OperationMeasure {
  /** Deepest field path. */
  readonly depth: number;
  /** Fields selected under an alias. */
  readonly aliases: number;
  /** Fields selected at the root of the operation. */
  readonly rootFields: number;
  /** Estimated cost (see the model above). */
  readonly cost: number;
}

/** A refused query: QUERY_TOO_COMPLEX, naming the limit, the setting and its value. */
export class QueryTooComplexError extends GraphQLError {
  constructor(message: string, node: OperationDefinitionNode, limit: { setting: string; max: number; actual: number }) {
    super(message, { nodes: [node], extensions: { code: ErrorCode.QUERY_TOO_COMPLEX, limit: limit.setting, max: limit.max, actual: limit.actual } });
    this.name = 'QueryTooComplexError';
  }
}

/** One validation rule that measures every operation of the document and refuses those over a limit. */
export function queryLimitsRule(limits: QueryLimits): ValidationRule {
  return (context: ValidationContext) => ({
    OperationDefinition(operation) {
      const measure = measureOperation(context.getSchema(), operation, (name) => context.getFragment(name));
      const name = operation.name ? `operation ${operation.name.value}: ` : '';
      if (measure.depth > limits.maxDepth) {
        context.reportError(new QueryTooComplexError(`${name}query depth ${measure.depth} exceeds STREAMLINE_QUERY_MAX_DEPTH=${limits.maxDepth}`, operation, { setting: 'STREAMLINE_QUERY_MAX_DEPTH', max: limits.maxDepth, actual: measure.depth }));
      }
      if (measure.aliases > limits.maxAliases) {
        context.reportError(new QueryTooComplexError(`${name}${measure.aliases} aliased fields exceed STREAMLINE_QUERY_MAX_ALIASES=${limits.maxAliases}`, operation, { setting: 'STREAMLINE_QUERY_MAX_ALIASES', max: limits.maxAliases, actual: measure.aliases }));
      }
      if (measure.rootFields > limits.maxAliases) {
        context.reportError(new QueryTooComplexError(`${name}${measure.rootFields} root fields exceed STREAMLINE_QUERY_MAX_ALIASES=${limits.maxAliases}`, operation, { setting: 'STREAMLINE_QUERY_MAX_ALIASES', max: limits.maxAliases, actual: measure.rootFields }));
      }
      if (measure.cost > limits.maxCost) {
        const cost = measure.cost <= Number.MAX_SAFE_INTEGER ? String(measure.cost) : `over ${Number.MAX_SAFE_INTEGER}`;
        context.reportError(new QueryTooComplexError(`${name}query cost ${cost} exceeds STREAMLINE_QUERY_MAX_COST=${limits.maxCost}`, operation, { setting: 'STREAMLINE_QUERY_MAX_COST', max: limits.maxCost, actual: Math.min(measure.cost, Number.MAX_SAFE_INTEGER) }));
      }
      return false; // the operation is measured whole; nothing inside needs visiting by this rule
    },
  });
}

interface SelectionMeasure {
  depth: number;
  aliases: number;
  fields: number;
  cost: number;
}

const EMPTY: SelectionMeasure = { depth: 0, aliases: 0, fields: 0, cost: 0 };

/** Depth, aliases, root fields and cost of one operation, its fragments followed. */
export function measureOperation(
  schema: GraphQLSchema,
  operation: OperationDefinitionNode,
  fragment: (name: string) => FragmentDefinitionNode | null | undefined,
): OperationMeasure {
  const fragments = new Map<string, SelectionMeasure>();
  const visiting = new Set<string>();

  const measureSelections = (selectionSet: SelectionSetNode, parent: GraphQLCompositeType | undefined): SelectionMeasure => {
    const total: SelectionMeasure = { depth: 0, aliases: 0, fields: 0, cost: 0 };
    const add = (part: SelectionMeasure) => {
      total.depth = Math.max(total.depth, part.depth);
      total.aliases += part.aliases;
      total.fields += part.fields;
      total.cost += part.cost;
    };
    for (const selection of selectionSet.selections) {
      switch (selection.kind) {
        case Kind.FIELD:
          add(measureField(selection, parent));
          break;
        case Kind.INLINE_FRAGMENT: {
          const type = selection.typeCondition ? compositeType(schema, selection.typeCondition.name.value) : parent;
          add(measureSelections(selection.selectionSet, type));
          break;
        }
        case Kind.FRAGMENT_SPREAD:
          add(measureFragment(selection.name.value));
          break;
      }
    }
    return total;
  };

  const measureFragment = (name: string): SelectionMeasure => {
    const known = fragments.get(name);
    if (known) return known;
    const definition = fragment(name);
    if (!definition || visiting.has(name)) return EMPTY; // unknown or cyclic: graphql's own rules refuse it
    visiting.add(name);
    const measured = measureSelections(definition.selectionSet, compositeType(schema, definition.typeCondition.name.value));
    visiting.delete(name);
    fragments.set(name, measured);
    return measured;
  };

  const measureField = (node: FieldNode, parent: GraphQLCompositeType | undefined): SelectionMeasure => {
    const definition = parent ? fieldDefinition(schema, parent, node.name.value) : undefined;
    const alias = node.alias ? 1 : 0;
    if (!node.selectionSet) return { depth: 1, aliases: alias, fields: 1, cost: 1 };
    const children = measureSelections(node.selectionSet, childType(definition));
    // The schema's own description is bounded by the schema, not by data: it costs 1 (depth still counts).
    if (definition === SchemaMetaFieldDef || definition === TypeMetaFieldDef) return { depth: 1 + children.depth, aliases: alias + children.aliases, fields: 1, cost: 1 };
    const multiplier = definition && isListType(getNullableType(definition.type)) ? listSize(node) : 1;
    return {
      depth: (node.name.value === 'ofType' ? 0 : 1) + children.depth,
      aliases: alias + children.aliases,
      fields: 1,
      cost: 1 + multiplier * children.cost,
    };
  };

  const root = measureSelections(operation.selectionSet, schema.getRootType(operation.operation) ?? undefined);
  return { depth: root.depth, aliases: root.aliases, rootFields: root.fields, cost: root.cost };
}

function childType(definition: GraphQLField<unknown, unknown> | undefined): GraphQLCompositeType | undefined {
  const type = definition ? getNamedType(definition.type) : undefined;
  return type && isCompositeType(type) ? type : undefined;
}

function listSize(node: FieldNode): number {
  for (const argument of node.arguments ?? []) {
    if (LIST_SIZE_ARGUMENTS.has(argument.name.value) && argument.value.kind === Kind.INT) {
      const value = Number(argument.value.value);
      if (Number.isFinite(value) && value >= 0) return value;
    }
  }
  return ASSUMED_LIST_SIZE;
}

function compositeType(schema: GraphQLSchema, name: string): GraphQLCompositeType | undefined {
  const type = schema.getType(name);
  return type && isCompositeType(type) ? type : undefined;
}

function fieldDefinition(schema: GraphQLSchema, parent: GraphQLCompositeType, name: string): GraphQLField<unknown, unknown> | undefined {
  if (name === SchemaMetaFieldDef.name && schema.getQueryType() === parent) return SchemaMetaFieldDef;
  if (name === TypeMetaFieldDef.name && schema.getQueryType() === parent) return TypeMetaFieldDef;
  if (name === TypeNameMetaFieldDef.name) return TypeNameMetaFieldDef;
  return isObjectType(parent) || isInterfaceType(parent) ? parent.getFields()[name] : undefined;
}

/** graphql's parser, stopped at `maxTokens` (its message: "Document contains more than N tokens"). */
const TOO_MANY_TOKENS = /Document contains more tha[nt] (\d+) tokens/; // graphql 16 spells it "more that"

function tooManyTokens(max: number): { message: string; extensions: Record<string, unknown> } {
  return {
    message: `the document has more than ${max} tokens: STREAMLINE_QUERY_MAX_TOKENS=${max}`,
    extensions: { code: ErrorCode.QUERY_TOO_COMPLEX, limit: 'STREAMLINE_QUERY_MAX_TOKENS', max },
  };
}

/**
 * Apollo reports every validation error as GRAPHQL_VALIDATION_FAILED and a document over the token
 * limit as a syntax error; a refusal by these limits keeps its own code, QUERY_TOO_COMPLEX, and its
 * details.
 */
export function withQueryLimitCode(formatted: GraphQLFormattedError, original: unknown): GraphQLFormattedError {
  const error = (original as { originalError?: unknown } | null)?.originalError ?? original;
  if (error instanceof QueryTooComplexError) return { ...formatted, extensions: { ...formatted.extensions, ...error.extensions } };
  const tokens = TOO_MANY_TOKENS.exec(formatted.message);
  if (tokens) {
    const refusal = tooManyTokens(Number(tokens[1]));
    return { ...formatted, message: refusal.message, extensions: { ...formatted.extensions, ...refusal.extensions } };
  }
  return formatted;
}

/** Parses a document of at most `maxTokens` tokens; past it, a QUERY_TOO_COMPLEX error (graphql-ws). */
export function parseWithinLimits(text: string, maxTokens: number): DocumentNode {
  try {
    return parse(text, { maxTokens });
  } catch (error) {
    if (error instanceof GraphQLError && TOO_MANY_TOKENS.test(error.message)) {
      const refusal = tooManyTokens(maxTokens);
      throw new GraphQLError(refusal.message, { extensions: refusal.extensions });
    }
    throw error;
  }
}

/** graphql's "Did you mean …?" suggestions, removed from a message when introspection is off. */
export function withoutSuggestions(message: string): string {
  return message.replace(/ ?Did you mean(.+?)\?$/, '');
}
