/**
 * Checksums verified while bytes stream past, so that integrity costs no second read. A stream that
 * fails verification errors at its end with CORRUPT_FILE; consumers must treat a stream error as "the
 * data is unusable" (the model cache downloads into a temporary directory for exactly this reason).
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { EngineError } from '../errors.js';

export interface ExpectedDigest {
  readonly algorithm: 'sha256' | 'md5' | 'git-sha1';
  readonly hex: string;
}

/**
 * The digest an object's metadata lets us check, strongest first: a recorded sha256; else an S3 ETag
 * when it is the content's MD5 — true for single PUTs without SSE-KMS/SSE-C. A multipart ETag
 * ("…-N") or an encrypted object's ETag is not an MD5 of the content, and is not checked.
 */
export function expectedDigest(sha256: string | undefined, etag: string | undefined, etagIsMd5: boolean): ExpectedDigest | null {
  if (sha256 && /^[0-9a-f]{64}$/i.test(sha256)) return { algorithm: 'sha256', hex: sha256.toLowerCase() };
  const bare = etag?.replace(/^W\//, '').replace(/"/g, '');
  if (etagIsMd5 && bare && /^[0-9a-f]{32}$/i.test(bare)) return { algorithm: 'md5', hex: bare.toLowerCase() };
  return null;
}

/** Passes bytes through; at the end compares size and digest, erroring with CORRUPT_FILE naming `what`. */
export class VerifyingStream extends Transform {
  private readonly hash: Hash | null;
  private bytes = 0;

  constructor(
    private readonly what: string,
    private readonly expected: { size?: number; digest?: ExpectedDigest | null },
  ) {
    super();
    const digest = expected.digest;
    this.hash = digest ? createHash(digest.algorithm === 'git-sha1' ? 'sha1' : digest.algorithm) : null;
    // Git hashes blobs as sha1("blob <size>\0" + content): the Hugging Face Hub's ETag for small files.
    if (digest?.algorithm === 'git-sha1') this.hash?.update(`blob ${expected.size ?? 0}\0`);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    this.hash?.update(chunk);
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    const { size, digest } = this.expected;
    if (size !== undefined && this.bytes !== size) {
      done(new EngineError('CORRUPT_FILE', `${this.what}: expected ${size} bytes, read ${this.bytes}`));
      return;
    }
    if (digest && this.hash) {
      const actual = this.hash.digest('hex');
      if (actual !== digest.hex) {
        done(new EngineError('CORRUPT_FILE', `${this.what}: ${digest.algorithm} checksum mismatch (expected ${digest.hex}, got ${actual}); the stored object is corrupted`));
        return;
      }
    }
    done();
  }
}

/** Hex sha256 of a local file, streamed (never read whole). */
export async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Streams `source` into a new file at `path`, counting and hashing the bytes on the way. */
export async function writeMeasured(source: Readable, path: string): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  let size = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      size += chunk.length;
      hash.update(chunk);
      done(null, chunk);
    },
  });
  await pipeline(source, tap, createWriteStream(path));
  return { size, sha256: hash.digest('hex') };
}
