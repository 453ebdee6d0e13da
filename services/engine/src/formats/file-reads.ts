/**
 * Opening a file a tenant named and reading it, shared by every reader of models, tokenizers and data.
 *
 * A path comes from a tenant: a FIFO or a device there would block the open (or never end), so only
 * regular files are opened. Reads are positioned and loop until the range is filled, because one `readSync`
 * may return fewer bytes than asked (and never more than 2 GiB).
 *
 * Confinement: the worker checks a plan's local inputs against the gateway's file roots, but the engine
 * opens them a moment later by name, and a file (or a folder's shard) swapped for a symlink in between
 * would be followed. Inside `withConfinedReads`, every file opened here under one of the checked inputs is
 * checked again *after* it is opened, by the real path of the open descriptor (/proc/self/fd): what is read
 * is what was checked, whatever the name points to by then.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { closeSync, createReadStream, existsSync, fstatSync, openSync, readSync, realpathSync, statSync, type ReadStream } from 'node:fs';
import { resolve } from 'node:path';
import { EngineError } from '../errors.js';
import { isWithin } from '../storage/file-confinement.js';

export interface ReadConfinement {
  /** The checked inputs (files or model folders): opens of these paths, or of paths under them, are confined. */
  readonly inputs: readonly string[];
  /** Whether a real path may be read. */
  allowed(realPath: string): boolean;
  /** The error for `path`, opened where it may not be read. */
  refusal(path: string): EngineError;
}

const confinement = new AsyncLocalStorage<ReadConfinement>();

/** Runs `task` with every open of a file under `confined.inputs` checked by the descriptor's real path. */
export function withConfinedReads<T>(confined: ReadConfinement, task: () => T): T {
  return confinement.run(confined, task);
}

/** Linux names an open descriptor's file in /proc; elsewhere the name is resolved again (a narrower window, not none). */
const FD_LINKS = existsSync('/proc/self/fd');

function checkOpened(fd: number, path: string): void {
  const confined = confinement.getStore();
  if (!confined) return;
  const absolute = resolve(path);
  if (!confined.inputs.some((input) => isWithin(absolute, resolve(input)))) return;
  let real: string | null;
  try {
    real = realpathSync(FD_LINKS ? `/proc/self/fd/${fd}` : path);
  } catch {
    real = null;
  }
  if (real === null || !confined.allowed(real)) {
    closeSync(fd);
    throw confined.refusal(path);
  }
}

/** Opens `path` for reading; NOT_FOUND (`<what> not found: path`) when it is missing, CORRUPT_FILE when it is not a regular file. */
export function openRegularFile(path: string, what: string): number {
  let fd: number;
  try {
    if (!statSync(path).isFile()) throw new EngineError('CORRUPT_FILE', `${path} is not a regular file`);
    fd = openSync(path, 'r');
  } catch (error) {
    if (error instanceof EngineError) throw error;
    throw new EngineError('NOT_FOUND', `${what} not found: ${path}`);
  }
  checkOpened(fd, path);
  return fd;
}

const MAX_READ = 1 << 30;

/** A tokenizer file is read whole: tokenizer.json of the largest vocabularies is tens of MB, never this. */
export const MAX_TOKENIZER_BYTES = 256 * 1024 * 1024;

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

/**
 * A whole (small) file: JSON, a tokenizer. `maxBytes` refuses a larger one before reading it (CORRUPT_FILE,
 * naming the size and the limit).
 */
export function readWholeFile(path: string, what: string, maxBytes = Number.MAX_SAFE_INTEGER): Buffer {
  const fd = openRegularFile(path, what);
  try {
    const size = fstatSync(fd).size;
    if (size > maxBytes) throw new EngineError('CORRUPT_FILE', `${path} is ${size} bytes, more than the ${maxBytes} accepted for ${what}`);
    return Buffer.from(readFully(fd, new Uint8Array(size), 0, path, `it ended before byte ${size}`));
  } finally {
    closeSync(fd);
  }
}

/** The file's text as a stream (a JSONL file read line by line), from a descriptor opened and checked here. */
export function openTextStream(path: string, what: string): ReadStream {
  return createReadStream(path, { fd: openRegularFile(path, what), encoding: 'utf8' });
}
