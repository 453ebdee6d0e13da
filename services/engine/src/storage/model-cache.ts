/**
 * Model folders from an object store (s3://bucket/prefix, hf://org/name@rev, a directory) copied into a
 * local cache directory, because the engine's loaders read files. Guarantees:
 *   - a cached copy is complete or absent: files download into a temporary directory, are verified
 *     (size, plus the store's checksum: sha256 metadata or an MD5 ETag, the Hub's sha256/git-sha1), get
 *     a manifest (streamline-cache.json) written last, and the directory is renamed into place;
 *   - a complete copy is reused: one listing of the source (no GET) confirms every file's size and
 *     ETag still match the manifest; files that did not change are hard-linked into a new copy.
 */
import { createHash, randomBytes } from 'node:crypto';
import { copyFile, link, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EngineError } from '../errors.js';
import { sha256OfFile, writeMeasured } from './integrity.js';
import { LocalObjectStore } from './local-store.js';
import { splitObjectUri } from './file-cache.js';
import { normalizePrefix, openObjectStore, parseStorageUri, type ObjectInfo, type ReadableStore, type StorageSettings } from './object-store.js';

export const CACHE_MANIFEST = 'streamline-cache.json';

export interface CachedFile {
  readonly name: string;
  readonly size: number;
  readonly etag: string;
  readonly sha256: string;
}

interface CacheManifest {
  readonly version: 1;
  readonly source: string;
  readonly files: CachedFile[];
  readonly completedAt: string;
}

export interface FetchModelOptions {
  /** Which top-level files of the folder to fetch; default: config, tokenizer and safetensors files. */
  readonly include?: (name: string) => boolean;
  /** Re-hash cached files against the manifest before reusing them (slow for big models). */
  readonly verifyCache?: boolean;
  /** Files downloaded at the same time. */
  readonly concurrency?: number;
  /** For opening a store from the URI when none is given (S3 retry policy, log, env). */
  readonly settings?: StorageSettings;
}

export interface FetchedModel {
  /** The local folder to hand to loadModel. */
  readonly path: string;
  readonly files: readonly CachedFile[];
  /** Names of the files that were downloaded this time (empty when the cached copy was reused). */
  readonly downloaded: readonly string[];
}

/** Weights and everything needed to run them; not PyTorch/TF/Flax duplicates of the weights. */
export function isModelFile(name: string): boolean {
  return /\.(json|safetensors|txt)$/.test(name) || name === 'tokenizer.model' || name === 'tokenizer.bin';
}

/**
 * `source`: a URI (s3://, hf://, file://, a directory), or — when `store` is given — a prefix inside it
 * or a URI under `store.uri`.
 */
export async function fetchModel(source: string, cacheDir: string, store?: ReadableStore, options: FetchModelOptions = {}): Promise<FetchedModel> {
  if (isGgufUri(source)) return fetchGgufModel(source, cacheDir, store, options);
  const { store: from, prefix } = await resolveSource(source, store, options.settings);
  try {
    return await fetchInto(from, prefix, cacheDir, options);
  } finally {
    // A store opened here from the URI is ours to close (an S3 client's sockets would keep a CLI alive).
    if (from !== store) from.destroy?.();
  }
}

/** A GGUF model is one file (s3://bucket/path/model.gguf, hf://org/name@rev/model.gguf), not a folder. */
export function isGgufUri(uri: string): boolean {
  return /\.gguf$/i.test(uri);
}

/**
 * A GGUF source copied into the cache like a folder of one file (verified, complete or absent, reused
 * while its size and ETag hold); `path` is the file. Copies are keyed by the file's URI, so two
 * quantizations in one folder are two copies.
 */
async function fetchGgufModel(source: string, cacheDir: string, store: ReadableStore | undefined, options: FetchModelOptions): Promise<FetchedModel> {
  const { store: from, key } = await resolveFileSource(source, store, options.settings);
  try {
    const folder = key.slice(0, key.lastIndexOf('/') + 1);
    const name = key.slice(folder.length);
    const fetched = await fetchInto(from, folder, cacheDir, { ...options, include: (file) => file === name }, source);
    if (fetched.files.length === 0) throw new EngineError('NOT_FOUND', `no GGUF file at ${source}`);
    return { ...fetched, path: join(fetched.path, name) };
  } finally {
    if (from !== store) from.destroy?.();
  }
}

/** The store holding a single-file source (a GGUF model) and the file's key in it. */
export async function resolveFileSource(source: string, store: ReadableStore | undefined, settings?: StorageSettings): Promise<{ store: ReadableStore; key: string }> {
  if (store) {
    const { prefix } = await resolveSource(source, store, settings);
    return { store, key: prefix.replace(/\/$/, '') };
  }
  if (source.startsWith('hf://')) {
    const { openHfSource, parseHfUri } = await import('./hf-source.js');
    const { file } = parseHfUri(source);
    if (file === null) throw new EngineError('BAD_INPUT', `${source} names a repository, not a file: write hf://org/name@revision/path/model.gguf`);
    return { store: await openHfSource(source, { env: settings?.env }), key: file };
  }
  const { storeUri, key } = splitObjectUri(source);
  return { store: await openObjectStore({ ...settings, storage: storeUri }), key };
}

/** `source` names the cached copy (the folder's URI, or a single file's). */
async function fetchInto(from: ReadableStore, prefix: string, cacheDir: string, options: FetchModelOptions, source?: string): Promise<FetchedModel> {
  const label = from.uri + prefix;
  const include = options.include ?? isModelFile;
  const remote: ObjectInfo[] = [];
  for await (const item of from.list(prefix)) {
    const name = item.key.slice(prefix.length);
    if (!name.includes('/') && include(name)) remote.push({ ...item, key: name });
  }
  if (!remote.some((file) => file.key === 'config.json') && !options.include) {
    throw new EngineError('NOT_FOUND', `no model folder at ${label}: config.json not found`);
  }
  remote.sort((a, b) => a.key.localeCompare(b.key));

  const target = join(cacheDir, cacheName(source ?? label));
  const cached = await readManifest(target);
  const unchanged = (file: ObjectInfo) => cached?.files.find((c) => c.name === file.key && c.size === file.size && c.etag === file.etag);
  if (cached && remote.every(unchanged) && cached.files.length === remote.length && (await intact(target, cached.files, options.verifyCache))) {
    return { path: target, files: cached.files, downloaded: [] };
  }

  await mkdir(cacheDir, { recursive: true });
  const temp = `${target}.tmp-${randomBytes(6).toString('hex')}`;
  await mkdir(temp);
  try {
    const files: CachedFile[] = [];
    const downloaded: string[] = [];
    await forEachLimited(remote, options.concurrency ?? 4, async (file) => {
      const previous = unchanged(file);
      if (previous && (await sizeOf(join(target, file.key))) === file.size) {
        await link(join(target, file.key), join(temp, file.key)).catch(() => copyFile(join(target, file.key), join(temp, file.key)));
        files.push(previous);
        return;
      }
      files.push(await download(from, prefix + file.key, file, join(temp, file.key), label));
      downloaded.push(file.key);
    });
    files.sort((a, b) => a.name.localeCompare(b.name));
    const manifest: CacheManifest = { version: 1, source: source ?? label, files, completedAt: new Date().toISOString() };
    await writeFile(join(temp, CACHE_MANIFEST), JSON.stringify(manifest, null, 2));
    await swapIn(temp, target);
    return { path: target, files, downloaded: downloaded.sort() };
  } catch (err) {
    await rm(temp, { recursive: true, force: true });
    throw err;
  }
}

/** The store a model source URI names (opened from the URI unless `store` is given) and the prefix inside it. */
export async function resolveSource(source: string, store: ReadableStore | undefined, settings?: StorageSettings): Promise<{ store: ReadableStore; prefix: string }> {
  if (store) {
    const base = store.uri.endsWith('/') ? store.uri : `${store.uri}/`;
    if (source.startsWith(base) || `${source}/` === base) return { store, prefix: normalizePrefix(source.slice(base.length)) };
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(source)) throw new EngineError('BAD_INPUT', `model source ${source} is not inside the store ${store.uri}`);
    return { store, prefix: normalizePrefix(source) };
  }
  if (source.startsWith('hf://')) {
    const { openHfSource } = await import('./hf-source.js');
    return { store: await openHfSource(source, { env: settings?.env }), prefix: '' };
  }
  const location = parseStorageUri(source);
  if (location.kind === 'local') return { store: new LocalObjectStore(location.dir), prefix: '' };
  return { store: await openObjectStore({ ...settings, storage: source }), prefix: '' };
}

/** A readable, unique directory name: the source's last segments plus a hash of the whole URI. */
export function cacheName(label: string): string {
  const readable = label.replace(/^[a-z0-9+.-]+:\/\//i, '').split('/').filter(Boolean).slice(-2).join('--').replace(/[^A-Za-z0-9._@-]/g, '_');
  return `${readable}-${createHash('sha256').update(label).digest('hex').slice(0, 12)}`;
}

async function download(store: ReadableStore, key: string, expected: ObjectInfo, path: string, label: string): Promise<CachedFile> {
  // store.get verifies the store's own checksum at the end of the stream; the size check here also
  // catches an object that changed between the listing and the download.
  const { size, sha256 } = await writeMeasured(await store.get(key), path);
  if (size !== expected.size) {
    throw new EngineError('CORRUPT_FILE', `${label}${expected.key}: listed as ${expected.size} bytes, downloaded ${size}`);
  }
  return { name: expected.key, size, etag: expected.etag, sha256 };
}

async function readManifest(dir: string): Promise<CacheManifest | null> {
  try {
    const manifest = JSON.parse(await readFile(join(dir, CACHE_MANIFEST), 'utf8')) as CacheManifest;
    return manifest.version === 1 && Array.isArray(manifest.files) ? manifest : null;
  } catch {
    return null;
  }
}

async function intact(dir: string, files: readonly CachedFile[], rehash = false): Promise<boolean> {
  for (const file of files) {
    if ((await sizeOf(join(dir, file.name))) !== file.size) return false;
    if (rehash && (await sha256OfFile(join(dir, file.name))) !== file.sha256) return false;
  }
  return true;
}

function sizeOf(path: string): Promise<number | null> {
  return stat(path).then((s) => s.size, () => null);
}

/** Replaces `target` by the verified `temp`. If another process put a copy there first, ours is dropped. */
async function swapIn(temp: string, target: string): Promise<void> {
  const old = `${target}.old-${randomBytes(6).toString('hex')}`;
  const hadOld = await rename(target, old).then(() => true, () => false);
  try {
    await rename(temp, target);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if ((code === 'ENOTEMPTY' || code === 'EEXIST') && (await readManifest(target))) {
      await rm(temp, { recursive: true, force: true });
    } else {
      if (hadOld) await rename(old, target).catch(() => {});
      throw new EngineError('STORAGE', `could not move the downloaded model into ${target}: ${code ?? String(err)}`);
    }
  } finally {
    if (hadOld) await rm(old, { recursive: true, force: true }); // no-op when it was moved back
  }
}

async function forEachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false; // one failure stops the others from starting more downloads into a doomed directory
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length && !failed) await work(items[next++]).catch((err: unknown) => { failed = true; throw err; });
  });
  // Wait for every download in flight before reporting, so the caller can remove the directory safely.
  const rejected = (await Promise.allSettled(workers)).find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (rejected) throw rejected.reason;
}
