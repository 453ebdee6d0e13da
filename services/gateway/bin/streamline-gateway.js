#!/usr/bin/env node
// Runs the TypeScript sources directly (tsx), like the engine's CLI. reflect-metadata must load before
// any decorated class.
import 'reflect-metadata';
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/main.ts');
try {
  await main();
} catch (error) {
  console.error(`streamline gateway: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
