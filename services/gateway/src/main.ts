/** `npm start` (the gateway process; bin/streamline-gateway.js): serves the API with settings from the environment until a signal. */
import 'reflect-metadata';
import { readConfigFile } from './config-file.js';
import { settingsFromEnv } from './settings.js';
import { startGateway } from './server.js';

export async function main(): Promise<void> {
  Object.assign(process.env, readConfigFile(process.env));
  const settings = settingsFromEnv();
  const gateway = await startGateway(settings);
  console.error(`streamline gateway: ${gateway.url} (subscriptions ${gateway.wsUrl}); data in ${gateway.database.description}; objects in ${settings.storage ?? settings.dataDir}; ${gateway.workers.length} local engine worker(s); auth ${gateway.auth}`);
  const stop = (signal: string) => {
    console.error(`streamline gateway: ${signal}, closing`);
    gateway.close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(`streamline gateway: close failed: ${(error as Error).message}`);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}
