/**
 * The object-store layer shared by the engine and the gateway: models, checkpoints and artifacts live
 * under string keys ("models/llama/config.json") in either a local directory (the embedded default) or
 * an S3 bucket prefix (any S3-compatible store). Both implementations promise the same things:
 *   - a put is atomic: readers see the old object, or no object, or the complete new one — never a
 *     partial one (a half-written checkpoint must not look like a checkpoint);
 *   - reads stream (a multi-GB shard is never buffered whole) and support byte ranges;
 *   - a whole-object read verifies the object's recorded checksum and fails with CORRUPT_FILE;
 *   - errors are EngineErrors naming the bucket/directory and key, never a credential.
 */
import { resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { EngineError } from '../errors.js';
import type { RetryPolicy } from './retry.js';

export interface ObjectInfo {
  readonly key: string;
  readonly size: number;
  /** Opaque version tag: changes whenever the content does (an S3 ETag, or a local content hash). */
  readonly etag: string;
}

export interface ObjectHead extends ObjectInfo {
  /** Hex sha256 of the content, when the writer recorded it (this layer's put always does for known bodies). */
  readonly sha256?: string;
  readonly contentType?: string;
}

export interface ByteRange {
  readonly start: number;
  /** Exclusive, like Buffer.subarray; default: the end of the object. */
  readonly end?: number;
}

export interface GetOptions {
  readonly range?: ByteRange;
}

/** A Buffer, a stream, or `{ path }` of a local file (a plain string would be ambiguous with content). */
export type PutBody = Buffer | Uint8Array | Readable | { readonly path: string };

export interface PutOptions {
  readonly contentType?: string;
}

/** What model sources (an S3 prefix, a Hugging Face repository) offer: reading only. */
export interface ReadableStore {
  /** Where this store points, safe to show: `s3://bucket/prefix`, `file:///dir`, `hf://org/name@rev`. */
  readonly uri: string;
  /** Streams the object (or a range of it). Whole-object reads are checksum-verified at the end. */
  get(key: string, options?: GetOptions): Promise<Readable>;
  /** Size and version of an object; null when the key does not exist. */
  head(key: string): Promise<ObjectHead | null>;
  /** Every object whose key starts with `prefix`, in no particular order. */
  list(prefix: string): AsyncIterable<ObjectInfo>;
  /** Releases what the store holds open (an S3 client's sockets, which would keep a process alive). */
  destroy?(): void;
}

export interface ObjectStore extends ReadableStore {
  put(key: string, body: PutBody, options?: PutOptions): Promise<ObjectHead>;
  /** Removes the object; deleting a missing key is not an error (as in S3). */
  delete(key: string): Promise<void>;
  /**
   * A URL with which anyone can GET the object until it expires, where the store has such URLs (S3);
   * `expiresInSeconds` from 1 to MAX_PRESIGN_SECONDS.
   */
  presignGet?(key: string, expiresInSeconds: number): Promise<string>;
}

export interface StorageSettings {
  /** `s3://bucket/prefix`, `file:///dir` or a directory path; default: STREAMLINE_STORAGE, then dataDir. */
  readonly storage?: string;
  /** The embedded default's directory; default: STREAMLINE_DATA_DIR, then ./.streamline. */
  readonly dataDir?: string;
  /** Where S3 settings and credentials come from (never from an API). Default: process.env. */
  readonly env?: NodeJS.ProcessEnv;
  readonly retry?: Partial<RetryPolicy>;
  /** Receives one line per retry; lines never contain credentials. */
  readonly log?: (line: string) => void;
}

/** Multipart thresholds: objects above 16 MiB go up in parts of 8 MiB or more (S3's minimum is 5 MiB). */
export const MULTIPART_THRESHOLD = 16 * 1024 * 1024;
export const MIN_PART_SIZE = 8 * 1024 * 1024;
/** SigV4 pre-signed URLs are valid for at most 7 days. */
export const MAX_PRESIGN_SECONDS = 7 * 24 * 3600;

export async function openObjectStore(target?: string | StorageSettings): Promise<ObjectStore> {
  const settings: StorageSettings = typeof target === 'string' ? { storage: target } : (target ?? {});
  const env = settings.env ?? process.env;
  const storage = settings.storage ?? env.STREAMLINE_STORAGE ?? settings.dataDir ?? env.STREAMLINE_DATA_DIR ?? './.streamline';
  const parsed = parseStorageUri(storage);
  // Imported lazily so that the embedded default never loads the AWS SDK.
  if (parsed.kind === 's3') {
    const { S3ObjectStore } = await import('./s3-store.js');
    return new S3ObjectStore({ bucket: parsed.bucket, prefix: parsed.prefix, env, retry: settings.retry, log: settings.log });
  }
  const { LocalObjectStore } = await import('./local-store.js');
  return new LocalObjectStore(parsed.dir);
}

export type StorageLocation = { kind: 's3'; bucket: string; prefix: string } | { kind: 'local'; dir: string };

export function parseStorageUri(uri: string): StorageLocation {
  if (uri.startsWith('s3://')) {
    const [bucket, ...rest] = uri.slice('s3://'.length).split('/');
    // Bucket names: 3-63 lowercase letters, digits, dots and hyphens.
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
      throw new EngineError('BAD_INPUT', `storage: '${bucket}' in ${uri} is not a valid S3 bucket name (expected s3://bucket/prefix)`);
    }
    return { kind: 's3', bucket, prefix: normalizePrefix(rest.join('/')) };
  }
  if (uri.startsWith('file://')) return { kind: 'local', dir: resolve(decodeURIComponent(new URL(uri).pathname)) };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(uri)) {
    throw new EngineError('BAD_INPUT', `storage: unsupported URI scheme in ${uri}; accepted: s3://bucket/prefix, file:///dir, or a directory path`);
  }
  return { kind: 'local', dir: resolve(uri) };
}

/** '' or 'a/b/' — a prefix always ends with '/' so that 'models' never matches 'models-old'. */
export function normalizePrefix(prefix: string): string {
  const trimmed = prefix.replace(/^\/+|\/+$/g, '');
  return trimmed === '' ? '' : `${trimmed}/`;
}

/**
 * Keys are relative, '/'-separated paths without '.', '..' or empty segments: the same key must mean the
 * same thing in a directory and in a bucket, and must never escape the store's root.
 */
export function checkKey(key: string): string {
  const segments = key.split('/');
  if (key === '' || key.includes('\\') || key.includes('\0') || segments.some((s) => s === '' || s === '.' || s === '..')) {
    throw new EngineError('BAD_INPUT', `storage key '${key}' is not valid: expected a relative path like 'models/llama/config.json'`);
  }
  return key;
}

/** Reads a (small) object whole: config files, manifests. Large objects should be streamed. */
export async function readObject(store: ReadableStore, key: string, options?: GetOptions): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await store.get(key, options)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
