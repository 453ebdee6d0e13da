/**
 * A list of names as an object mapping each name to itself, so one `as const` list serves as a
 * TypeScript type, a runtime list (for parsers) and an enum object (type-graphql's `registerEnumType`,
 * `PlanStage.TRAINING` in code) at once.
 */
export function enumObject<const Names extends readonly string[]>(names: Names): { readonly [Name in Names[number]]: Name } {
  return Object.freeze(Object.fromEntries(names.map((name) => [name, name]))) as { readonly [Name in Names[number]]: Name };
}
