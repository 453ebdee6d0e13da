// The entry of a model-inspection worker thread (see model-inspection.ts). A thread starts as plain
// Node, under vitest as under bin/streamline-gateway.js, so it registers tsx itself, with the gateway's
// tsconfig like the bin, before loading the TypeScript that does the work.
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

register({ tsconfig: fileURLToPath(new URL('../../tsconfig.json', import.meta.url)) });
await import('./inspect-thread.ts');
