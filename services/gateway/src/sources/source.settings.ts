/**
 * Where tenants' sources may come from — the operator's settings, from the environment:
 *   STREAMLINE_FILE_ROOTS  absolute directories separated by ':'; file:// sources only under them (by real
 *                          path) and never inside the data or storage directory. Unset: file:// refused.
 *   STREAMLINE_S3_SOURCES  comma-separated s3://bucket/prefix/; s3:// sources only under them (whole path
 *                          segments). Unset: s3:// sources refused. The STREAMLINE_STORAGE bucket is not
 *                          implicitly allowed: a tenant re-uses its own outputs with registerModel(fromPlan).
 *   STREAMLINE_HF          "on" allows hf:// sources; default off.
 * Operator settings (STREAMLINE_DEFAULT_CALIBRATION) and the engine CLI are not confined.
 */
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface SourcePolicy {
  /** Absolute directories; null: file:// sources are disabled. */
  readonly fileRoots: readonly string[] | null;
  /** `s3://bucket/prefix/` entries (prefix may be empty: the whole bucket). */
  readonly s3Sources: readonly string[];
  readonly hf: boolean;
}

/** Nothing a tenant names is read: file://, s3:// and hf:// all refused. The default of startGateway. */
export const CLOSED_SOURCE_POLICY: SourcePolicy = { fileRoots: null, s3Sources: [], hf: false };

export const FILE_ROOTS_SETTING = 'STREAMLINE_FILE_ROOTS';
export const S3_SOURCES_SETTING = 'STREAMLINE_S3_SOURCES';
export const HF_SETTING = 'STREAMLINE_HF';

export function sourcePolicyFromEnv(env: NodeJS.ProcessEnv = process.env): SourcePolicy {
  return { fileRoots: fileRootsSetting(env[FILE_ROOTS_SETTING]), s3Sources: s3SourcesSetting(env[S3_SOURCES_SETTING]), hf: hfSetting(env[HF_SETTING]) };
}

function fileRootsSetting(raw: string | undefined): string[] | null {
  if (raw === undefined || raw.trim() === '') return null;
  const roots = raw.split(':').map((d) => d.trim()).filter(Boolean);
  for (const root of roots) {
    if (!isAbsolute(root)) throw new Error(`${FILE_ROOTS_SETTING}=${JSON.stringify(raw)}: ${JSON.stringify(root)} is not an absolute directory (expected e.g. /data/models:/data/datasets)`);
    if (resolve(root) === '/') throw new Error(`${FILE_ROOTS_SETTING}=${JSON.stringify(raw)}: "/" would let tenants read every file the gateway can; name the directories that hold models and data`);
  }
  return roots.map((root) => resolve(root));
}

/** One `s3://bucket/prefix/` entry: whole segments, no '.', '..' or empty ones. */
export function parseS3SourcePrefix(entry: string): { bucket: string; segments: string[] } | null {
  const match = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(entry);
  if (!match) return null;
  const segments = (match[2] ?? '').split('/').filter((s, i, all) => !(s === '' && i === all.length - 1));
  if (segments.length === 1 && segments[0] === '') segments.pop();
  if (segments.some((s) => s === '' || s === '.' || s === '..')) return null;
  return { bucket: match[1], segments };
}

function s3SourcesSetting(raw: string | undefined): string[] {
  if (raw === undefined || raw.trim() === '') return [];
  const entries = raw.split(',').map((e) => e.trim()).filter(Boolean);
  for (const entry of entries) {
    if (!parseS3SourcePrefix(entry)) throw new Error(`${S3_SOURCES_SETTING}=${JSON.stringify(raw)}: ${JSON.stringify(entry)} is not s3://bucket/prefix/ (a valid bucket name, whole path segments, no '.' or '..')`);
  }
  return entries;
}

function hfSetting(raw: string | undefined): boolean {
  if (raw === undefined || raw === '' || raw === 'off') return false;
  if (raw === 'on') return true;
  throw new Error(`${HF_SETTING}=${JSON.stringify(raw)} is not "on" or "off" (hf:// sources are off unless it is exactly "on")`);
}

/** The data directory and a local STREAMLINE_STORAGE directory: never a source, whatever the roots. */
export function deniedSourceDirs(dataDir: string | undefined, storage: string | undefined): string[] {
  const dirs = dataDir ? [resolve(dataDir)] : [];
  if (storage && !storage.startsWith('s3://')) dirs.push(storage.startsWith('file://') ? resolve(fileURLToPath(storage)) : resolve(storage));
  return dirs;
}
