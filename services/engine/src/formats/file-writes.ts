/** Writing a whole buffer: one `writeSync` may write fewer bytes than asked, so it loops until all are out. */
import { writeSync } from 'node:fs';

/** Writes `bytes` at `position`, or at the file's current position when none is given. */
export function writeFully(fd: number, bytes: Uint8Array, position?: number): void {
  let done = 0;
  while (done < bytes.byteLength) done += writeSync(fd, bytes, done, bytes.byteLength - done, position === undefined ? null : position + done);
}
