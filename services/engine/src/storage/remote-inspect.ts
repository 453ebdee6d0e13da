/**
 * What a model in an object store (s3://bucket/prefix/, hf://org/name@rev) is — architecture, config,
 * parameter count, storage dtype — without downloading its weights. `inspectModel` reads config.json,
 * the shard index, streamline.json and the safetensors headers; so this fetches exactly those: the small
 * JSON files whole, and each safetensors file's header by two ranged GETs (its 8-byte length, then the
 * header). They are laid out in a scratch folder as sparse files of the listed sizes (header at the
 * start, a hole after it), `inspectModel` runs on that folder, and the folder is removed.
 */
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EngineError } from '../errors.js';
import { GgufFile, GgufHeaderEndedError, MAX_GGUF_HEADER_BYTES } from '../formats/gguf.js';
import { inspectModel, type ModelInfo } from '../models/model.js';
import { isGgufUri, resolveFileSource, resolveSource } from './model-cache.js';
import { readObject, type ObjectInfo, type ReadableStore, type StorageSettings } from './object-store.js';

/** JSON files inspectModel reads whole (all small). */
const READ_WHOLE = new Set(['config.json', 'model.safetensors.index.json', 'streamline.json']);
/** Files inspectModel only looks for (a tokenizer beside the weights). */
const PRESENCE_ONLY = new Set(['tokenizer.json', 'tokenizer.bin', 'tokenizer.model']);
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export interface RemoteModelInfo extends Omit<ModelInfo, 'path' | 'tokenizerPath'> {
  /** The model folder's URI (a trailing config.json removed). */
  readonly path: string;
  /** URI of the tokenizer beside the weights, when there is one. */
  readonly tokenizerPath: string | null;
  /** The folder's top-level files as listed (sizes and ETags), weights included. */
  readonly files: readonly ObjectInfo[];
}

/** `s3://b/models/x/config.json` → `s3://b/models/x/`; folder URIs get their trailing slash; a GGUF file's URI stays as it is. */
export function modelFolderUri(uri: string): string {
  if (uri.startsWith('hf://') || isGgufUri(uri)) return uri;
  const folder = uri.replace(/\/config\.json$/, '');
  return folder.endsWith('/') ? folder : `${folder}/`;
}

/** JSON files of a model are small; a bigger one is refused before it is fetched (as inspectModel refuses it on disk). */
const MAX_JSON_BYTES = 16 * 1024 * 1024;

export interface RemoteInspectOptions {
  readonly settings?: StorageSettings;
  readonly store?: ReadableStore;
  /** Inspects the scratch folder; default the engine's inspectModel in this thread (the gateway passes one in a worker thread). */
  readonly inspect?: (dir: string) => ModelInfo | Promise<ModelInfo>;
}

export async function inspectRemoteModel(source: string, options: RemoteInspectOptions = {}): Promise<RemoteModelInfo> {
  if (isGgufUri(source)) return inspectRemoteGguf(source, options);
  const uri = modelFolderUri(source);
  if (/\.(bin|pt|pth)\/$/i.test(uri)) {
    throw new EngineError('BAD_INPUT', `${source}: models in object storage must be Hugging Face folders (config.json + safetensors) or GGUF files; convert a llama2.c checkpoint with \`streamline-engine convert\` and upload the folder`);
  }
  const { store, prefix } = await resolveSource(uri, options.store, options.settings);
  const scratch = await mkdtemp(join(tmpdir(), 'streamline-inspect-'));
  try {
    const files: ObjectInfo[] = [];
    for await (const item of store.list(prefix)) {
      const name = item.key.slice(prefix.length);
      if (name !== '' && !name.includes('/')) files.push({ ...item, key: name });
    }
    files.sort((a, b) => a.key.localeCompare(b.key));
    if (!files.some((file) => file.key === 'config.json')) {
      throw new EngineError('NOT_FOUND', `no model folder at ${store.uri}${prefix}: config.json not found${files.length === 0 ? ' (nothing is stored under that prefix)' : ''}`);
    }
    // All shards' headers together stay within one header's limit, as inspectModel requires on disk.
    let headerBudget = MAX_HEADER_BYTES;
    for (const file of files) {
      const path = join(scratch, file.key);
      if (READ_WHOLE.has(file.key)) {
        if (file.size > MAX_JSON_BYTES) throw new EngineError('CORRUPT_FILE', `${store.uri}${prefix}${file.key} is ${file.size} bytes, more than the ${MAX_JSON_BYTES} accepted for a JSON file of a model`);
        await writeFile(path, await readObject(store, prefix + file.key));
      } else if (PRESENCE_ONLY.has(file.key)) await writeFile(path, '');
      else if (file.key.endsWith('.safetensors')) headerBudget -= await writeHeaderOnly(store, prefix + file.key, file.size, path, `${store.uri}${prefix}${file.key}`, headerBudget);
    }
    const info = await (options.inspect ?? inspectModel)(scratch);
    const label = `${store.uri}${prefix}`;
    return {
      ...info,
      path: label,
      tokenizerPath: info.tokenizerPath ? `${label}${info.tokenizerPath.slice(scratch.length + 1)}` : null,
      files,
    };
  } catch (err) {
    // Messages about the scratch folder would only confuse: name the source instead.
    if (err instanceof EngineError && err.message.includes(scratch)) throw new EngineError(err.code, err.message.split(scratch).join(modelFolderUri(source).replace(/\/$/, '')));
    throw err;
  } finally {
    await rm(scratch, { recursive: true, force: true });
    if (store !== options.store) store.destroy?.();
  }
}

/** A sparse file of `size` bytes holding only the safetensors header of the stored object. */
async function writeHeaderOnly(store: ReadableStore, key: string, size: number, path: string, where: string, headerBudget: number): Promise<number> {
  if (size < 8) throw new EngineError('CORRUPT_FILE', `${where} is not a safetensors file: ${size} bytes, fewer than the 8-byte header length`);
  const lengthBytes = await readObject(store, key, { range: { start: 0, end: 8 } });
  const headerLength = Number(lengthBytes.readBigUInt64LE(0));
  if (headerLength > MAX_HEADER_BYTES || 8 + headerLength > size) {
    throw new EngineError('CORRUPT_FILE', `${where} is not a valid safetensors file: header length ${headerLength} does not fit in an object of ${size} bytes`);
  }
  if (headerLength > headerBudget) {
    throw new EngineError('CORRUPT_FILE', `${where}: its safetensors header of ${headerLength} bytes is more than the ${Math.max(0, headerBudget)} bytes left for the model's headers (at most ${MAX_HEADER_BYTES} in all)`);
  }
  const header = await readObject(store, key, { range: { start: 8, end: 8 + headerLength } });
  const handle = await open(path, 'w');
  try {
    await handle.write(lengthBytes, 0, 8, 0);
    await handle.write(header, 0, header.length, 8);
    await handle.truncate(size);
  } finally {
    await handle.close();
  }
  return headerLength;
}

/** The first ranged read of a GGUF header; each further one fetches as much again (SmolLM2-135M's header is 1.7 MiB: two reads). */
const FIRST_GGUF_READ = 1024 * 1024;

/**
 * A GGUF file's header without its tensor data: its first bytes by ranged reads into a local file,
 * growing until the header parses from real bytes alone (GgufOpenOptions.size: needing a byte past them
 * fails with GgufHeaderEndedError), at most MAX_GGUF_HEADER_BYTES; any other refusal is the answer at
 * once. The header is parsed here (bounded, like any header) to learn how much to fetch; the prefix then
 * becomes a sparse file of the object's size, which `inspect` reads (the gateway's, in its thread).
 */
async function inspectRemoteGguf(source: string, options: RemoteInspectOptions): Promise<RemoteModelInfo> {
  const { store, key } = await resolveFileSource(source, options.store, options.settings);
  const scratch = await mkdtemp(join(tmpdir(), 'streamline-inspect-'));
  const name = key.slice(key.lastIndexOf('/') + 1);
  const path = join(scratch, name);
  try {
    const head = await store.head(key);
    if (!head) throw new EngineError('NOT_FOUND', `no GGUF file at ${source}`);
    const bound = Math.min(head.size, MAX_GGUF_HEADER_BYTES);
    const handle = await open(path, 'w');
    try {
      let fetched = 0;
      for (let want = Math.min(FIRST_GGUF_READ, bound); ; want = Math.min(2 * want, bound)) {
        if (want > fetched) {
          const bytes = await readObject(store, key, { range: { start: fetched, end: want } });
          await handle.write(bytes, 0, bytes.length, fetched);
          fetched += bytes.length;
          if (fetched !== want) throw new EngineError('STORAGE', `${source}: a ranged read ending at byte ${want} returned ${fetched} bytes`);
        }
        try {
          GgufFile.open(path, { size: head.size }).close();
          break;
        } catch (error) {
          // Only running out of the fetched bytes asks for more; any other refusal is the file's.
          if (!(error instanceof GgufHeaderEndedError) || fetched >= bound) throw error;
        }
      }
      await handle.truncate(head.size);
    } finally {
      await handle.close();
    }
    const info = await (options.inspect ?? inspectModel)(path);
    return { ...info, path: source, tokenizerPath: info.tokenizerPath ? source : null, files: [{ key: name, size: head.size, etag: head.etag }] };
  } catch (err) {
    if (err instanceof EngineError && err.message.includes(scratch)) throw new EngineError(err.code, err.message.split(path).join(source).split(scratch).join(source));
    throw err;
  } finally {
    await rm(scratch, { recursive: true, force: true });
    if (store !== options.store) store.destroy?.();
  }
}
