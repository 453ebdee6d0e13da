#!/usr/bin/env node
// The `streamline` command. In this repository (src/ is here and tsx is installed) it runs the
// TypeScript sources, so there is no build step between a change and the CLI; an installed package
// (npm pack ships dist/, not src/) runs the compiled dist/cli.js with plain Node.
import { existsSync } from 'node:fs';

const source = new URL('../src/cli.ts', import.meta.url);
const compiled = new URL('../dist/cli.js', import.meta.url);

async function loadCli() {
  if (existsSync(source) && (await registerTsx())) return import(source.href);
  if (!existsSync(compiled)) {
    throw new Error(`${compiled.pathname} is missing: run \`npm run build -w sdk\` (or install the packed package)`);
  }
  return import(compiled.href);
}

/** Lets Node import .ts files; false when tsx is not installed (a checkout used outside the workspace). */
async function registerTsx() {
  try {
    const { register } = await import('tsx/esm/api');
    register();
    return true;
  } catch (error) {
    if (error?.code === 'ERR_MODULE_NOT_FOUND') return false;
    throw error;
  }
}

const { main } = await loadCli();
process.exitCode = await main(process.argv.slice(2));
