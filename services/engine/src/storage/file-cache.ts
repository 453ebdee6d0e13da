/**
 * Single objects by URI — calibration and evaluation datasets, a tokenizer kept apart from its model —
 * copied into a local cache directory, because the engine's readers take files. `file://` URIs and plain
 * paths are used in place. A cached copy is reused while the object's size and ETag are unchanged (one
 * HEAD, no GET); a new copy downloads to a temporary file, is verified by the store (its sha256
 * metadata or MD5 ETag), and is renamed into place, so a cached file is complete or absent.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pipeline } from 'node:stream/promises';
import { EngineError } from '../errors.js';
import { cacheName } from './model-cache.js';
import { openObjectStore, parseStorageUri, type ObjectStore, type StorageSettings } from './object-store.js';

export interface FetchedFile {
  /** The local file to read. */
  readonly path: string;
  /** True when it was downloaded this time (false: used in place, or the cached copy was reused). */
  readonly downloaded: boolean;
  /** Identifies the content: the ETag for stored objects, size and mtime for local files. */
  readonly version: string;
}

interface CachedFileRecord {
  readonly source: string;
  readonly size: number;
  readonly etag: string;
}

/** `s3://bucket/key` → its bucket URI and key. */
export function splitObjectUri(uri: string): { storeUri: string; key: string } {
  const location = parseStorageUri(uri);
  if (location.kind !== 's3' || location.prefix === '') throw new EngineError('BAD_INPUT', `${uri} does not name an object: expected s3://bucket/path/to/file`);
  const key = location.prefix.replace(/\/$/, '');
  return { storeUri: `s3://${location.bucket}`, key };
}

export function isRemoteUri(uri: string): boolean {
  return /^(s3|hf):\/\//i.test(uri);
}

/** A local path for `uri`: file:// and plain paths as they are, s3:// objects through the cache in `cacheDir`. */
export async function fetchFile(uri: string, cacheDir: string, options: { settings?: StorageSettings; store?: ObjectStore } = {}): Promise<FetchedFile> {
  if (uri.startsWith('file://')) return local(fileURLToPath(uri));
  if (!uri.startsWith('s3://')) {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(uri)) throw new EngineError('BAD_INPUT', `cannot read ${uri}: single files are read from file:// or s3:// URIs`);
    return local(uri);
  }
  const { storeUri, key } = splitObjectUri(uri);
  const store = options.store ?? (await openObjectStore({ ...options.settings, storage: storeUri }));
  try {
    const head = await store.head(key);
    if (!head) throw new EngineError('NOT_FOUND', `object not found: ${uri}`);
    const dir = join(cacheDir, cacheName(uri));
    const path = join(dir, posix.basename(key));
    const recordPath = join(dir, 'streamline-cache.json');
    const record = await readFile(recordPath, 'utf8').then((text) => JSON.parse(text) as CachedFileRecord, () => null);
    const size = await stat(path).then((s) => s.size, () => null);
    if (record && record.size === head.size && record.etag === head.etag && size === head.size) return { path, downloaded: false, version: head.etag };

    await mkdir(dir, { recursive: true });
    const temp = `${path}.tmp-${randomBytes(6).toString('hex')}`;
    try {
      await rm(recordPath, { force: true }); // the record goes first and comes back last: never a stale "complete"
      await pipeline(await store.get(key), createWriteStream(temp)); // verified by the store at the end of the stream
      const got = (await stat(temp)).size;
      if (got !== head.size) throw new EngineError('CORRUPT_FILE', `${uri}: expected ${head.size} bytes, downloaded ${got}`);
      await rename(temp, path);
      await writeFile(recordPath, JSON.stringify({ source: uri, size: head.size, etag: head.etag } satisfies CachedFileRecord));
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
    return { path, downloaded: true, version: head.etag };
  } finally {
    if (store !== options.store) store.destroy?.();
  }
}

async function local(path: string): Promise<FetchedFile> {
  const info = await stat(path).catch(() => null);
  if (!info?.isFile()) throw new EngineError('NOT_FOUND', `file not found: ${path}`);
  return { path, downloaded: false, version: createHash('sha256').update(`${info.size}:${info.mtimeMs}`).digest('hex').slice(0, 16) };
}
