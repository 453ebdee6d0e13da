#!/usr/bin/env node
// Runs the TypeScript sources directly (tsx), like bin/streamline-engine.js. The images run the build
// of the same entry instead: node --conditions=streamline-dist dist/streamline-worker.js.
import { register } from 'tsx/esm/api';

register();
await import('../src/streamline-worker.ts');
