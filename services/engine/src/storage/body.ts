/** Put bodies (Buffer, stream, file) as a stream of Buffers, read back in parts of exact sizes. */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { EngineError } from '../errors.js';
import type { PutBody } from './object-store.js';

export function bodyChunks(body: PutBody): AsyncIterable<Buffer> {
  if (body instanceof Readable) return body as AsyncIterable<Buffer>;
  if (body instanceof Uint8Array) return (async function* () { yield Buffer.from(body.buffer, body.byteOffset, body.byteLength); })();
  return createReadStream(body.path) as AsyncIterable<Buffer>;
}

/**
 * The sha256 of a body when it can be known before uploading it: a buffer, or a file (one extra local
 * read, cheap next to an upload, and it lets even a multipart object carry its checksum). A stream can
 * only be hashed as it is consumed.
 */
export async function sha256Before(body: PutBody): Promise<string | undefined> {
  if (body instanceof Readable) return undefined;
  const hash = createHash('sha256');
  for await (const chunk of bodyChunks(body)) hash.update(chunk);
  return hash.digest('hex');
}

/** Pulls Buffers of exactly `n` bytes (fewer only at the end) out of a chunk stream, without copying more than needed. */
export class ByteReader {
  private readonly iterator: AsyncIterator<Buffer>;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private done = false;

  constructor(source: AsyncIterable<Buffer>) {
    this.iterator = source[Symbol.asyncIterator]();
  }

  async read(n: number): Promise<Buffer> {
    while (this.pendingBytes < n && !this.done) {
      const next = await this.iterator.next();
      if (next.done) this.done = true;
      else if (next.value.length > 0) {
        this.pending.push(next.value);
        this.pendingBytes += next.value.length;
      }
    }
    const all = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.pending = rest.length > 0 ? [rest] : [];
    this.pendingBytes = rest.length;
    return out;
  }

  /** Gives back bytes already read, so that the next read starts with them. */
  unshift(data: Buffer): void {
    this.pending.unshift(data);
    this.pendingBytes += data.length;
  }

  /** Stops the source (closes a file, destroys a stream) when the upload is abandoned. */
  async close(): Promise<void> {
    await this.iterator.return?.();
  }
}

/** A failure reading what was to be uploaded (a missing file, a producer that died), as an EngineError. */
export function bodyFailure(err: unknown, where: string): Error {
  if (err instanceof EngineError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  const path = (err as NodeJS.ErrnoException).path;
  if (code === 'ENOENT' && path) return new EngineError('NOT_FOUND', `file to upload to ${where} not found: ${path}`);
  return new EngineError('STORAGE', `reading the data for ${where} failed, nothing was stored: ${code ?? (err as Error).message ?? String(err)}`);
}
