/**
 * A plan's outputs — the pruned model in Hugging Face layout with streamline.json, the importance profile
 * and the stability report — moved from the worker's staging folder into the object store under the
 * plan's prefix (`outputs/<planId>/`), with nothing usable visible before everything is there:
 *   - in a local-directory store on the same disk, the finished folder is renamed into place (one atomic
 *     step);
 *   - anywhere else (S3), the objects go up one by one with the model's entry points last —
 *     streamline.json, then config.json (no loader opens a folder without it) — and finally
 *     `streamline-output.json`, which lists every file with its size and sha256: an output without it is
 *     incomplete. A stale listing is deleted before a re-upload starts, and a failed upload deletes what
 *     it had put. `PruningPlan.outputUri` is only published after this returns.
 */
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EngineError } from '../errors.js';
import { sha256OfFile } from './integrity.js';
import { LocalObjectStore } from './local-store.js';
import { normalizePrefix, openObjectStore, readObject, type ObjectStore } from './object-store.js';

export const OUTPUT_MANIFEST = 'streamline-output.json';
/** Uploaded last, in this order, before the output manifest. */
const ENTRY_POINTS = ['streamline.json', 'config.json'];

export interface OutputManifest {
  readonly format: 'streamline-output/1';
  readonly completedAt: string;
  readonly files: { readonly name: string; readonly size: number; readonly sha256: string }[];
}

/** `file:///data/outputs/p1` or `s3://bucket/prefix/outputs/p1` — where `prefix` lives in `store`. */
export function outputUri(store: ObjectStore, prefix: string): string {
  return `${store.uri.replace(/\/$/, '')}/${normalizePrefix(prefix).replace(/\/$/, '')}`;
}

export async function publishOutputs(store: ObjectStore, prefix: string, localDir: string, log: (line: string) => void = () => {}): Promise<string> {
  const base = normalizePrefix(prefix);
  const names = (await readdir(localDir, { withFileTypes: true })).filter((e) => e.isFile() && e.name !== OUTPUT_MANIFEST).map((e) => e.name);
  const ordered = [...names.filter((n) => !ENTRY_POINTS.includes(n)).sort(), ...ENTRY_POINTS.filter((n) => names.includes(n))];
  const files: OutputManifest['files'] = [];
  for (const name of ordered) files.push({ name, size: (await stat(join(localDir, name))).size, sha256: await sha256OfFile(join(localDir, name)) });
  const manifest: OutputManifest = { format: 'streamline-output/1', completedAt: new Date().toISOString(), files };
  const uri = outputUri(store, base);

  if (store instanceof LocalObjectStore) {
    await writeFile(join(localDir, OUTPUT_MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
    const target = join(store.root, ...base.split('/').filter(Boolean));
    const moved = await swapDirectory(localDir, target);
    if (moved) {
      log(`outputs: ${files.length} files at ${uri}`);
      return uri;
    }
    await rm(join(localDir, OUTPUT_MANIFEST), { force: true }); // another disk: upload like any store
  }

  await store.delete(`${base}${OUTPUT_MANIFEST}`); // a listing from an earlier attempt must not vouch for this one
  const put: string[] = [];
  try {
    for (const file of files) {
      await store.put(`${base}${file.name}`, { path: join(localDir, file.name) }, { contentType: file.name.endsWith('.json') ? 'application/json' : undefined });
      put.push(`${base}${file.name}`);
    }
    // Objects an earlier attempt left that this output does not have (other shard names).
    const keep = new Set(files.map((f) => `${base}${f.name}`));
    const strays: string[] = [];
    for await (const item of store.list(base)) if (!keep.has(item.key) && !item.key.slice(base.length).includes('/')) strays.push(item.key);
    for (const key of strays) await store.delete(key);
    await store.put(`${base}${OUTPUT_MANIFEST}`, Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`), { contentType: 'application/json' });
  } catch (err) {
    for (const key of put.reverse()) await store.delete(key).catch(() => {});
    throw err;
  }
  log(`outputs: ${files.length} files uploaded to ${uri}`);
  return uri;
}

/** Renames `from` over `to` (replacing an earlier copy); false when they are on different disks. */
async function swapDirectory(from: string, to: string): Promise<boolean> {
  await mkdir(join(to, '..'), { recursive: true });
  const old = `${to}.old-${process.pid}-${Date.now()}`;
  const hadOld = await rename(to, old).then(() => true, () => false);
  try {
    await rename(from, to);
  } catch (err) {
    if (hadOld) await rename(old, to).catch(() => {});
    if ((err as NodeJS.ErrnoException).code === 'EXDEV') return false;
    throw err;
  } finally {
    if (hadOld) await rm(old, { recursive: true, force: true });
  }
  return true;
}

export interface OutputDownload {
  readonly name: string;
  readonly size: number;
  readonly sha256: string;
  /** A pre-signed GET URL. */
  readonly url: string;
}

/**
 * Pre-signed download URLs for every file of a published output in S3, from its listing
 * (`streamline-output.json`); null for an output that is not in S3 (a `file://` output is read where it
 * is). `env` holds the S3 settings and credentials, as for every store.
 */
export async function presignOutputs(uri: string, expiresInSeconds: number, env?: NodeJS.ProcessEnv): Promise<OutputDownload[] | null> {
  if (!uri.startsWith('s3://')) return null;
  const store = await openObjectStore({ storage: uri, env });
  try {
    const { presignGet } = store;
    if (!presignGet) return null;
    const manifest = JSON.parse((await readObject(store, OUTPUT_MANIFEST)).toString('utf8')) as OutputManifest;
    if (manifest.format !== 'streamline-output/1') throw new EngineError('CORRUPT_FILE', `${uri}/${OUTPUT_MANIFEST}: unknown format ${JSON.stringify(manifest.format)}`);
    return await Promise.all(manifest.files.map(async (file) => ({ ...file, url: await presignGet.call(store, file.name, expiresInSeconds) })));
  } finally {
    store.destroy?.(); // one store per request: its client's sockets must not outlive it
  }
}
