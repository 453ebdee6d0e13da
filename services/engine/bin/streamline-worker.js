#!/usr/bin/env node
// Runs the TypeScript sources directly (tsx), like bin/streamline-engine.js.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/worker/main.ts');
process.exitCode = await main();
