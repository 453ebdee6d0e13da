/**
 * The gateway process (`npm start`; settings in settings.ts). bin/streamline-gateway.js
 * runs this file through tsx; the image runs the build, `node --conditions=streamline-dist dist/streamline-gateway.js`.
 * reflect-metadata loads before any decorated class.
 */
import 'reflect-metadata';
import { main } from './main.js';

try {
  await main();
} catch (error) {
  console.error(`streamline gateway: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
