// What testing/global-setup.ts provides to every test file (vitest's inject()).
export {};

declare module 'vitest' {
  export interface ProvidedContext {
    /** postgres://… of a database the suites may create schemas in, or null when there is none. */
    testDatabaseUrl: string | null;
  }
}
