/**
 * The object store as a local directory (the embedded default): key "a/b.json" is the file <root>/a/b.json,
 * so outputs are plain folders other tools can open. Checksums recorded at put time live in a sidecar
 * tree, <root>/.streamline-meta/<key>.json, so reads can be verified like S3 reads are.
 *
 * Atomic visibility: put writes a temporary file in the destination directory (same filesystem), fsyncs
 * it and renames it over the key — rename(2) is atomic, so readers see the old file or the new one.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative, sep } from 'node:path';
import { pipeline as pump } from 'node:stream/promises';
import { Readable, Transform, pipeline } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { EngineError } from '../errors.js';
import { bodyChunks, bodyFailure } from './body.js';
import { expectedDigest, VerifyingStream } from './integrity.js';
import { checkKey, type GetOptions, type ObjectHead, type ObjectInfo, type ObjectStore, type PutBody, type PutOptions } from './object-store.js';

const META_DIR = '.streamline-meta';
const TEMP_MARK = '.streamline-tmp-';

interface Sidecar {
  readonly size: number;
  readonly sha256: string;
  readonly contentType?: string;
}

export class LocalObjectStore implements ObjectStore {
  readonly uri: string;

  constructor(readonly root: string) {
    this.uri = pathToFileURL(root).href;
  }

  private path(key: string): string {
    if (checkKey(key).split('/')[0] === META_DIR) throw new EngineError('BAD_INPUT', `storage key '${key}' is reserved`);
    return join(this.root, ...key.split('/'));
  }

  private sidecarPath(key: string): string {
    return join(this.root, META_DIR, ...key.split('/')) + '.json';
  }

  private where(key: string): string {
    return `${this.uri.replace(/\/$/, '')}/${key}`;
  }

  /** NOT_FOUND naming the root when the whole store is missing, else the key. */
  private async notFound(key: string): Promise<EngineError> {
    const rootExists = await stat(this.root).then((s) => s.isDirectory(), () => false);
    return new EngineError('NOT_FOUND', rootExists ? `object not found: ${this.where(key)}` : `storage directory does not exist: ${this.root}`);
  }

  private async readSidecar(key: string, size: number): Promise<Sidecar | undefined> {
    try {
      const sidecar = JSON.parse(await readFile(this.sidecarPath(key), 'utf8')) as Sidecar;
      // A file replaced by something other than put (a different size) has no trustworthy checksum.
      return sidecar.size === size ? sidecar : undefined;
    } catch {
      return undefined;
    }
  }

  async head(key: string): Promise<ObjectHead | null> {
    const path = this.path(key);
    const info = await stat(path).catch(() => null);
    if (!info?.isFile()) {
      const missing = await this.notFound(key);
      if (missing.message.startsWith('storage directory')) throw missing;
      return null;
    }
    const sidecar = await this.readSidecar(key, info.size);
    return {
      key,
      size: info.size,
      etag: sidecar ? `"${sidecar.sha256}"` : `W/"${info.size}-${Math.floor(info.mtimeMs)}"`,
      sha256: sidecar?.sha256,
      contentType: sidecar?.contentType,
    };
  }

  async get(key: string, options: GetOptions = {}): Promise<Readable> {
    const head = await this.head(key);
    if (!head) throw await this.notFound(key);
    const { range } = options;
    if (range) {
      if (range.start < 0 || (range.end !== undefined && range.end < range.start) || range.start > head.size) {
        throw new EngineError('BAD_INPUT', `byte range [${range.start}, ${range.end}) outside ${this.where(key)} (${head.size} bytes)`);
      }
      const end = Math.min(range.end ?? head.size, head.size);
      if (end === range.start) return Readable.from([]);
      return createReadStream(this.path(key), { start: range.start, end: end - 1 });
    }
    const verifier = new VerifyingStream(this.where(key), { size: head.size, digest: expectedDigest(head.sha256, undefined, false) });
    pipeline(createReadStream(this.path(key)), verifier, () => {});
    return verifier;
  }

  async put(key: string, body: PutBody, options: PutOptions = {}): Promise<ObjectHead> {
    const path = this.path(key);
    const temp = join(dirname(path), `.${basename(path)}${TEMP_MARK}${randomBytes(6).toString('hex')}`);
    const hash = createHash('sha256');
    let size = 0;
    let sink: WriteStream | null = null;
    try {
      await mkdir(dirname(path), { recursive: true });
      const counter = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          size += chunk.length;
          hash.update(chunk);
          done(null, chunk);
        },
      });
      sink = createWriteStream(temp);
      await pump(Readable.from(bodyChunks(body)), counter, sink);
      const handle = await open(temp, 'r+');
      await handle.sync().finally(() => handle.close()); // durable before it becomes visible
      const sidecar: Sidecar = { size, sha256: hash.digest('hex'), contentType: options.contentType };
      // Old checksum out first: in the instant between the two renames the object is unverified, never
      // wrongly "corrupt".
      await rm(this.sidecarPath(key), { force: true });
      await rename(temp, path);
      await this.writeSidecar(key, sidecar);
      return { key, size, etag: `"${sidecar.sha256}"`, sha256: sidecar.sha256, contentType: options.contentType };
    } catch (err) {
      // A body that fails at once can fail before the file stream has opened its file: the stream still
      // creates it, so wait for it to close before removing the temporary file.
      const unfinished = sink;
      if (unfinished && !unfinished.closed) await new Promise<void>((done) => unfinished.once('close', () => done()));
      await rm(temp, { force: true });
      const code = (err as NodeJS.ErrnoException).code;
      // A full disk or a read-only directory is ours to name; anything else came from reading the body.
      if (code === 'ENOSPC' || code === 'EACCES' || code === 'EROFS' || code === 'EDQUOT' || code === 'ENOTDIR') {
        throw new EngineError('STORAGE', `could not write ${this.where(key)}: ${code}`);
      }
      throw bodyFailure(err, this.where(key));
    }
  }

  private async writeSidecar(key: string, sidecar: Sidecar): Promise<void> {
    const path = this.sidecarPath(key);
    await mkdir(dirname(path), { recursive: true });
    const temp = `${path}${TEMP_MARK}${randomBytes(6).toString('hex')}`;
    await writeFile(temp, JSON.stringify(sidecar));
    await rename(temp, path);
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    // Walk only the deepest directory the prefix names, then filter by the full prefix.
    const dirPart = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
    const start = dirPart ? join(this.root, ...dirPart.split('/')) : this.root;
    if (!(await stat(this.root).then((s) => s.isDirectory(), () => false))) throw new EngineError('NOT_FOUND', `storage directory does not exist: ${this.root}`);
    for await (const path of walk(start)) {
      const key = relative(this.root, path).split(sep).join('/');
      if (!key.startsWith(prefix) || key.split('/')[0] === META_DIR || basename(key).includes(TEMP_MARK)) continue;
      const head = await this.head(key);
      if (head) yield { key, size: head.size, etag: head.etag };
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.path(key), { force: true });
    await rm(this.sidecarPath(key), { force: true });
  }
}

async function* walk(dir: string): AsyncGenerator<string> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(path);
    else if (entry.isFile()) yield path;
  }
}
