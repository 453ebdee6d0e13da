/**
 * Confinement of local files a tenant names (file:// sources): a path is accepted only when its real
 * path — every symlink resolved — lies under the real path of one of the allowed roots, and not under a
 * denied directory (the gateway's data directory, the storage directory). The gateway checks when a
 * source is registered or a plan created; a worker checks again when it opens a plan's inputs, so a file
 * swapped for a symlink in between is refused.
 *
 * The answer never tells an outside path that exists from one that does not: a path is first compared
 * with the roots as written (no file system access for one lexically outside them), and a dangling
 * symlink, or a missing file whose nearest existing ancestor resolves outside, is "outside" too.
 */
import { lstatSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve, sep } from 'node:path';

export interface FileConfinement {
  /** Absolute directories; empty means no local file is accepted. */
  readonly roots: readonly string[];
  /** Directories inside which nothing is accepted, even under a root. */
  readonly denied?: readonly string[];
}

export type ConfinedPath =
  | { readonly status: 'inside'; readonly realPath: string }
  | { readonly status: 'missing' }
  | { readonly status: 'outside' };

/** True when `path` is `dir` or lies beneath it (both absolute, normalised). */
export function isWithin(path: string, dir: string): boolean {
  if (path === dir) return true;
  const base = dir.endsWith(sep) ? dir : `${dir}${sep}`;
  return path.startsWith(base);
}

function realOrNull(path: string): string | null {
  try {
    return realpathSync(path);
  } catch {
    return null;
  }
}

/** Roots and denied directories as written and as real paths (a root that does not exist accepts nothing). */
function resolvedDirs(dirs: readonly string[]): { written: string[]; real: string[] } {
  const written = dirs.filter((d) => isAbsolute(d)).map((d) => resolve(d));
  const real = written.map(realOrNull).filter((d): d is string => d !== null);
  return { written, real };
}

function allowedReal(realPath: string, roots: string[], denied: string[]): boolean {
  return roots.some((root) => isWithin(realPath, root)) && !denied.some((dir) => isWithin(realPath, dir));
}

/**
 * A test of already-resolved real paths against `confinement` (the roots and denied directories resolved
 * once): for a descriptor's real path, read after it was opened.
 */
export function realPathTest(confinement: FileConfinement): (realPath: string) => boolean {
  const roots = resolvedDirs(confinement.roots);
  const denied = resolvedDirs(confinement.denied ?? []);
  const deniedReal = [...denied.real, ...denied.written];
  return (realPath) => allowedReal(realPath, roots.real, deniedReal);
}

/** Where `path` stands against `confinement`; see the file's comment. */
export function checkConfinedPath(path: string, confinement: FileConfinement): ConfinedPath {
  if (!isAbsolute(path)) return { status: 'outside' };
  const target = resolve(path);
  const roots = resolvedDirs(confinement.roots);
  const denied = resolvedDirs(confinement.denied ?? []);
  const deniedReal = [...denied.real, ...denied.written];
  // Lexically outside every root (as written and as real paths): refused without touching the disk.
  if (![...roots.written, ...roots.real].some((root) => isWithin(target, root))) return { status: 'outside' };
  // The deepest part of the path that exists (as a link or a file).
  let existing = target;
  for (;;) {
    let exists = true;
    try {
      lstatSync(existing);
    } catch {
      exists = false;
    }
    if (exists) break;
    const parent = dirname(existing);
    if (parent === existing) return { status: 'outside' };
    existing = parent;
  }
  const real = realOrNull(existing); // null: a dangling symlink, or a loop
  if (real === null || !allowedReal(real, roots.real, deniedReal)) return { status: 'outside' };
  return existing === target ? { status: 'inside', realPath: real } : { status: 'missing' };
}

/**
 * The files the engine reads beside a model source besides the path itself: every entry of a Hugging Face
 * folder (or of the folder of its config.json), and the tokenizer candidates beside a llama2.c .bin.
 */
export function filesBesideModel(realPath: string): string[] {
  let isDirectory: boolean;
  try {
    isDirectory = statSync(realPath).isDirectory();
  } catch {
    return [];
  }
  const dir = isDirectory ? realPath : dirname(realPath);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  if (!isDirectory && basename(realPath) !== 'config.json') names = names.filter((name) => name === 'tokenizer.bin' || /^tok.*\.bin$/.test(name));
  return names.map((name) => join(dir, name));
}

/**
 * A model source checked with everything the engine reads beside it: 'outside' when the source or any
 * of those files resolves outside the roots.
 */
export function checkConfinedModel(path: string, confinement: FileConfinement): ConfinedPath {
  const checked = checkConfinedPath(path, confinement);
  if (checked.status !== 'inside') return checked;
  for (const file of filesBesideModel(checked.realPath)) {
    if (checkConfinedPath(file, confinement).status === 'outside') return { status: 'outside' };
  }
  return checked;
}
