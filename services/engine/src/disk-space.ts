/** Free space on the file system a run writes to, checked before a large write starts (pairs, spilled activations). */
import { mkdirSync, statfsSync } from 'node:fs';
import { EngineError } from './errors.js';

/** Refuses to start writing `bytes` into `dir` when its file system has less free space (plus 1 GiB to spare). */
export function checkFreeSpace(dir: string, bytes: number, what: string): void {
  mkdirSync(dir, { recursive: true });
  const stats = statfsSync(dir);
  const free = stats.bavail * stats.bsize;
  const spare = Math.min(1024 ** 3, bytes);
  if (free < bytes + spare) {
    throw new EngineError('STORAGE', `${what} needs ${bytes} bytes (${(bytes / 1024 ** 3).toFixed(2)} GiB, plus ${(spare / 1024 ** 3).toFixed(2)} GiB to spare) in ${dir}, which has ${free} bytes free; free space or choose another work directory`);
  }
}

