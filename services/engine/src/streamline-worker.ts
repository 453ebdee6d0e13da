/**
 * The engine worker process (see worker/main.ts for its settings). bin/streamline-worker.js runs this
 * file through tsx; the images run the build, `node --conditions=streamline-dist dist/streamline-worker.js`.
 * The name ends like the bin's so that infra/healthcheck.mjs recognises the process either way.
 */
import { main } from './worker/main.js';

process.exitCode = await main();
