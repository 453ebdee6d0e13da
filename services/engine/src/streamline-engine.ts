/** The engine CLI (see cli.ts): bin/streamline-engine.js runs this file through tsx; a build runs dist/streamline-engine.js. */
import { main } from './cli.js';

process.exitCode = await main(process.argv.slice(2));
