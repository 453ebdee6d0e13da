/**
 * `@streamline/sdk/browser` bundles for a browser with nothing Node-only in it: Vite (the web console's
 * bundler) follows every static and dynamic import from the entry, and neither the `ws` package nor a
 * Node builtin may be bundled or left as an import. The client's Node fallback (the `ws` package when
 * there is no global WebSocket) stays out because its specifier is not a literal.
 */
import { builtinModules } from 'node:module';
import { fileURLToPath } from 'node:url';
import { build, type Rollup } from 'vite';
import { expect, it } from 'vitest';

const ENTRY = fileURLToPath(new URL('../src/browser.ts', import.meta.url));
const isNodeOnly = (specifier: string) => specifier === 'ws' || specifier.startsWith('node:') || builtinModules.includes(specifier);

it('bundles for the browser without ws or Node builtins', async () => {
  const outputs = (await build({
    configFile: false,
    logLevel: 'silent',
    resolve: { conditions: ['@streamline/source', 'browser', 'module', 'import', 'default'] },
    build: { write: false, lib: { entry: ENTRY, formats: ['es'] }, minify: false },
  })) as Rollup.RollupOutput[];
  const chunks = outputs.flatMap((output) => output.output).filter((chunk): chunk is Rollup.OutputChunk => chunk.type === 'chunk');
  const bundled = chunks.flatMap((chunk) => chunk.moduleIds);
  const left = chunks.flatMap((chunk) => [...chunk.imports, ...chunk.dynamicImports]);
  expect(bundled.some((id) => id.includes('/node_modules/graphql-ws/'))).toBe(true);
  expect(bundled.filter((id) => id.includes('/node_modules/ws/'))).toEqual([]);
  expect(left.filter(isNodeOnly)).toEqual([]);
  expect(chunks.map((chunk) => chunk.code).join('\n')).toContain('function sameOriginClient');
}, 60_000);
