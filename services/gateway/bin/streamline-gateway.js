#!/usr/bin/env node
// Runs the TypeScript sources directly (tsx), like the engine's CLI. The gateway's tsconfig is named
// explicitly: tsx would otherwise look in the working directory, and the decorators need its settings
// wherever the command is run from. The image runs the build of the same entry instead:
// node --conditions=streamline-dist dist/streamline-gateway.js.
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

register({ tsconfig: fileURLToPath(new URL('../tsconfig.json', import.meta.url)) });
await import('../src/streamline-gateway.ts');
