/**
 * Where the CLI finds the gateway and its token, first match wins: --url/--token, then
 * STREAMLINE_URL/STREAMLINE_TOKEN, then the config file ($STREAMLINE_CONFIG, else
 * $XDG_CONFIG_HOME/streamline/config.json or ~/.config/streamline/config.json: {"url": …, "token": …}).
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const DEFAULT_URL = 'http://localhost:4000/graphql';

export interface ConnectionSettings {
  readonly url: string;
  readonly token?: string;
}

export function connectionSettings(flags: { url?: string; token?: string }, env: NodeJS.ProcessEnv = process.env): ConnectionSettings {
  const file = readConfigFile(env);
  const url = flags.url ?? env.STREAMLINE_URL ?? file.url ?? DEFAULT_URL;
  const token = flags.token ?? env.STREAMLINE_TOKEN ?? file.token;
  return { url, token: token || undefined };
}

function readConfigFile(env: NodeJS.ProcessEnv): { url?: string; token?: string } {
  const path = env.STREAMLINE_CONFIG ?? join(env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'streamline', 'config.json');
  if (!existsSync(path)) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new UsageError(`${path}: not valid JSON (${(error as Error).message})`);
  }
  const { url, token } = (parsed ?? {}) as { url?: unknown; token?: unknown };
  return { url: typeof url === 'string' ? url : undefined, token: typeof token === 'string' ? token : undefined };
}

/** A mistake on the command line (or in the config file): exit status 2 and the usage hint. */
export class UsageError extends Error {}
