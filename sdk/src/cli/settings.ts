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
  /** Where each came from, for messages: `--url`, `STREAMLINE_URL`, the config file's path, `the default`. */
  readonly urlFrom: string;
  readonly tokenFrom?: string;
}

export function connectionSettings(flags: { url?: string; token?: string }, env: NodeJS.ProcessEnv = process.env): ConnectionSettings {
  const path = configFilePath(env);
  const file = readConfigFile(path);
  const [url, urlFrom] = firstGiven([flags.url, '--url'], [env.STREAMLINE_URL, 'STREAMLINE_URL'], [file.url, `"url" in ${path}`]) ?? [DEFAULT_URL, 'the default'];
  const [token, tokenFrom] = firstGiven([flags.token, '--token'], [env.STREAMLINE_TOKEN, 'STREAMLINE_TOKEN'], [file.token, `"token" in ${path}`]) ?? [undefined, undefined];
  return { url: checkGatewayUrl(url, urlFrom), urlFrom, token: token || undefined, tokenFrom: token ? tokenFrom : undefined };
}

/** An http(s) URL; anything else is refused saying what one looks like (`new URL` says only "Invalid URL"). */
export function checkGatewayUrl(url: string, from: string): string {
  let parsed: URL | null = null;
  try {
    parsed = new URL(url);
  } catch {
    parsed = null;
  }
  if (parsed === null || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || !parsed.hostname) {
    const hint = parsed === null && /^[\w.-]+(:\d+)?(\/|$)/.test(url) ? ` (did you mean http://${url}?)` : '';
    throw new UsageError(`${from}: ${JSON.stringify(url)} is not a gateway URL${hint}; it must look like http://HOST:PORT/graphql or https://HOST/graphql, e.g. ${DEFAULT_URL}`);
  }
  return url;
}

function firstGiven(...candidates: readonly [string | undefined, string][]): [string, string] | null {
  const found = candidates.find(([value]) => value !== undefined && value !== '');
  return found ? [found[0]!, found[1]] : null;
}

function configFilePath(env: NodeJS.ProcessEnv): string {
  return env.STREAMLINE_CONFIG ?? join(env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'streamline', 'config.json');
}

function readConfigFile(path: string): { url?: string; token?: string } {
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
