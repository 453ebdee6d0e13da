// Entry for the worker thread when the engine runs from TypeScript sources (tests, tsx): register the
// TypeScript loader inside the thread, then load the real worker.
import { register } from 'tsx/esm/api';

register();
await import('./tfjs-worker.ts');
