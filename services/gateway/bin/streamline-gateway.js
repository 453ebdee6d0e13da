#!/usr/bin/env node
// Runs the TypeScript sources directly (tsx), like the engine's CLI. reflect-metadata must load before
// any decorated class. The gateway's tsconfig is named explicitly: tsx would otherwise look in the
// working directory, and the decorators need its settings wherever the command is run from.
import 'reflect-metadata';
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

register({ tsconfig: fileURLToPath(new URL('../tsconfig.json', import.meta.url)) });
const { main } = await import('../src/main.ts');
try {
  await main();
} catch (error) {
  console.error(`streamline gateway: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
