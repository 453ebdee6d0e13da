/**
 * The optional settings file: STREAMLINE_CONFIG names a JSON object whose keys are the environment
 * variables the gateway reads (PORT, DATABASE_URL, STREAMLINE_*, AWS_*, HF_*). Its values count as if
 * exported — so local engine workers and the storage layer see them too — but a variable that is
 * already set in the environment wins. Typos are refused rather than silently ignored.
 */
import { readFileSync } from 'node:fs';

const SETTING_NAME = /^(PORT|HOST|DATABASE_URL|(STREAMLINE|AWS|HF)_[A-Z0-9_]+)$/;

/** The file's settings that the environment does not already set. */
export function readConfigFile(env: NodeJS.ProcessEnv): Record<string, string> {
  const path = env.STREAMLINE_CONFIG;
  if (!path) return {};
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(`STREAMLINE_CONFIG=${path}: cannot read it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new Error(`STREAMLINE_CONFIG=${path}: not valid JSON (${(error as Error).message})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error(`STREAMLINE_CONFIG=${path}: expected a JSON object of settings, e.g. {"PORT": 4000, "STREAMLINE_WORKERS": 2}`);
  }
  const settings: Record<string, string> = {};
  for (const [name, value] of Object.entries(parsed)) {
    if (!SETTING_NAME.test(name) || name === 'STREAMLINE_CONFIG') {
      throw new Error(`STREAMLINE_CONFIG=${path}: ${JSON.stringify(name)} is not a setting (settings are PORT, HOST, DATABASE_URL and STREAMLINE_*, AWS_*, HF_* variables)`);
    }
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
      throw new Error(`STREAMLINE_CONFIG=${path}: ${name} must be a string, number or boolean`);
    }
    if (env[name] === undefined || env[name] === '') settings[name] = String(value);
  }
  return settings;
}
