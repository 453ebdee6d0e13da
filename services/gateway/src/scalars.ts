/** The contract's custom scalars, taken from graphql-scalars so their parsing rules are the usual ones. */
import { GraphQLScalarType } from 'graphql';
import { DateTimeResolver, JSONResolver, SafeIntResolver } from 'graphql-scalars';

export const DateTimeScalar = DateTimeResolver;
export const JSONScalar = JSONResolver;
export const SafeIntScalar = new GraphQLScalarType({
  ...SafeIntResolver.toConfig(),
  name: 'SafeInt',
  description: "Integers up to 2^53 (parameter counts of large models do not fit GraphQL's Int).",
});
