/**
 * Opening a weights file and reading byte ranges of it, shared by the safetensors, GGUF and llama2.c readers.
 *
 * A model path comes from a tenant: a FIFO or a device there would block the open (or never end), so only
 * regular files are opened. Reads are positioned and loop until the range is filled, because one `readSync`
 * may return fewer bytes than asked (and never more than 2 GiB).
 */
import { openSync, readSync, statSync } from 'node:fs';
import { EngineError } from '../errors.js';

/** Opens `path` for reading; NOT_FOUND (`<what> not found: path`) when it is missing, CORRUPT_FILE when it is not a regular file. */
export function openRegularFile(path: string, what: string): number {
  try {
    if (!statSync(path).isFile()) throw new EngineError('CORRUPT_FILE', `${path} is not a regular file`);
    return openSync(path, 'r');
  } catch (error) {
    if (error instanceof EngineError) throw error;
    throw new EngineError('NOT_FOUND', `${what} not found: ${path}`);
  }
}

const MAX_READ = 1 << 30;

/**
 * Fills `into` from byte `position` of the file; a file that ends first is CORRUPT_FILE with
 * `${path} is truncated: ${what}`.
 */
export function readFully(fd: number, into: Uint8Array, position: number, path: string, what: string): Uint8Array {
  let done = 0;
  while (done < into.length) {
    const n = readSync(fd, into, done, Math.min(into.length - done, MAX_READ), position + done);
    if (n === 0) throw new EngineError('CORRUPT_FILE', `${path} is truncated: ${what}`);
    done += n;
  }
  return into;
}
