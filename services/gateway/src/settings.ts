/** The gateway's settings from the environment; every one has a default that runs on one machine. */
import { resolve } from 'node:path';
import { EngineError, parseStorageUri } from './engine.js';
import { limitsFromEnv } from './limits/limits.settings.js';
import { inspectModelFromEnv } from './models/inspection-settings.js';
import type { GatewayOptions } from './server.js';
import { workerTokensSetting } from './auth/auth.settings.js';
import { sourcePolicyFromEnv } from './sources/source.settings.js';
import { planLimitsFromEnv } from './plans/plan.limits.js';
import { nonNegativeInteger } from './env-integers.js';
import { TOKEN_CACHE_MS } from './auth/auth.service.js';
import { PLAN_CACHE_MS } from './plans/plan.store.js';

export function settingsFromEnv(env: NodeJS.ProcessEnv = process.env): GatewayOptions {
  const port = env.PORT === undefined || env.PORT === '' ? 4000 : Number(env.PORT);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PORT=${JSON.stringify(env.PORT)} is not a port number (0 to 65535)`);
  return {
    port,
    host: env.HOST || '127.0.0.1',
    // npm runs workspace scripts inside the workspace; INIT_CWD is where the user typed the command,
    // which is what a relative STREAMLINE_DATA_DIR (and the default) should mean
    dataDir: resolve(env.INIT_CWD || process.cwd(), env.STREAMLINE_DATA_DIR || './.streamline'),
    databaseUrl: env.DATABASE_URL || undefined,
    defaultCalibrationSource: env.STREAMLINE_DEFAULT_CALIBRATION || null,
    workers: nonNegativeInteger(env, 'STREAMLINE_WORKERS', 1),
    workerToken: env.STREAMLINE_WORKER_TOKEN || undefined,
    workerTokens: workerTokensSetting(env.STREAMLINE_WORKER_TOKENS),
    adminToken: env.STREAMLINE_ADMIN_TOKEN || undefined,
    auth: authSetting(env.STREAMLINE_AUTH),
    storage: storageSetting(env.STREAMLINE_STORAGE, env.INIT_CWD || process.cwd()),
    // AWS_* / HF_* credentials are read from here by the storage layer, never echoed
    storageEnv: env,
    sources: sourcePolicyFromEnv(env),
    limits: limitsFromEnv(env),
    planLimits: planLimitsFromEnv(env),
    inspectModel: inspectModelFromEnv(env),
    tokenCacheMs: nonNegativeInteger(env, 'STREAMLINE_TOKEN_CACHE_MS', TOKEN_CACHE_MS),
    planCacheMs: nonNegativeInteger(env, 'STREAMLINE_PLAN_CACHE_MS', PLAN_CACHE_MS),
    // unset or 0: outputs are kept
    outputRetentionDays: nonNegativeInteger(env, 'STREAMLINE_OUTPUT_RETENTION_DAYS', 0) || undefined,
    consoleDir: env.STREAMLINE_CONSOLE_DIR ? resolve(env.INIT_CWD || process.cwd(), env.STREAMLINE_CONSOLE_DIR) : undefined,
  };
}

/**
 * STREAMLINE_STORAGE: s3://bucket/prefix, file:///dir or a directory; unset means the data directory.
 * A relative directory means the same as a relative STREAMLINE_DATA_DIR: from where the command was typed.
 */
function storageSetting(raw: string | undefined, cwd: string): string | undefined {
  if (raw === undefined || raw === '') return undefined;
  try {
    parseStorageUri(raw);
  } catch (error) {
    if (error instanceof EngineError) throw new Error(`STREAMLINE_STORAGE=${JSON.stringify(raw)}: ${error.message.replace(/^storage: /, '')}`);
    throw error;
  }
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : resolve(cwd, raw);
}

/** Auth is on unless STREAMLINE_AUTH is exactly "off"; anything but on/off is refused, never read as off. */
function authSetting(raw: string | undefined): 'on' | 'off' {
  if (raw === undefined || raw === '' || raw === 'on') return 'on';
  if (raw === 'off') return 'off';
  throw new Error(`STREAMLINE_AUTH=${JSON.stringify(raw)} is not "on" or "off" (auth is on unless it is exactly "off")`);
}
