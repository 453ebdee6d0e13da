#!/usr/bin/env node
// Runs the TypeScript sources directly (tsx), so there is no build step between a change and the CLI.
// The build (npm run build) runs the same entry as dist/streamline-engine.js, without tsx.
import { register } from 'tsx/esm/api';

register();
await import('../src/streamline-engine.ts');
