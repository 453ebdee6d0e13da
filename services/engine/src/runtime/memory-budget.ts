/**
 * The memory budget of the engine's forward passes: an operator's setting (STREAMLINE_MEMORY_BUDGET, the
 * CLI's --memory-budget), never a plan field. It sizes what a layer-streamed pass keeps in memory —
 * activations of the calibration set, every hidden state for the importance matrix, the next layer read
 * ahead — and what goes to the work directory instead.
 *
 * Default: half of the memory available to this process: the cgroup's limit less its usage when the
 * process runs in one with a limit (a pod: cgroup v2 memory.max, or v1 memory.limit_in_bytes), else the
 * host's available memory (MemAvailable, what os.freemem() reads), whichever is smaller.
 */
import { existsSync, readFileSync } from 'node:fs';
import { freemem } from 'node:os';
import { EngineError } from '../errors.js';

export const MEMORY_BUDGET_ENV = 'STREAMLINE_MEMORY_BUDGET';
/** The share of the available memory the default budget takes. */
export const DEFAULT_BUDGET_FRACTION = 0.5;

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  m: 1e6,
  mb: 1e6,
  g: 1e9,
  gb: 1e9,
  t: 1e12,
  tb: 1e12,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

/** "6GiB", "512MiB", "8GB", "4e9", "1073741824" → bytes. */
export function parseMemorySize(value: string, what = MEMORY_BUDGET_ENV): number {
  const match = /^\s*(\d+(?:\.\d+)?(?:e\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value);
  const unit = match ? UNITS[match[2].toLowerCase()] : undefined;
  const bytes = match && unit !== undefined ? Math.floor(Number(match[1]) * unit) : NaN;
  if (!(Number.isFinite(bytes) && bytes >= 64 * 1024 ** 2)) {
    throw new EngineError('BAD_INPUT', `${what} ${JSON.stringify(value)} must be a size of at least 64MiB: a number of bytes with an optional unit (KiB, MiB, GiB, TiB, or KB, MB, GB, TB), e.g. 6GiB`);
  }
  return bytes;
}

/** Memory this process may still use: the cgroup's remaining allowance or the host's available memory, the smaller. */
export function availableMemory(root = '/sys/fs/cgroup'): { bytes: number; source: string } {
  const host = { bytes: freemem(), source: 'host available memory' };
  const cgroup = cgroupRemaining(root);
  return cgroup && cgroup.bytes < host.bytes ? cgroup : host;
}

function readNumber(path: string): number | null {
  if (!existsSync(path)) return null;
  const text = readFileSync(path, 'utf8').trim();
  if (text === 'max') return null;
  const value = Number(text);
  return Number.isFinite(value) ? value : null;
}

function cgroupRemaining(root: string): { bytes: number; source: string } | null {
  // v2: the process's own cgroup is mounted at the root inside a container.
  const v2Limit = readNumber(`${root}/memory.max`);
  if (v2Limit !== null) return { bytes: Math.max(0, v2Limit - (readNumber(`${root}/memory.current`) ?? 0)), source: 'cgroup v2 memory.max' };
  const v1Limit = readNumber(`${root}/memory/memory.limit_in_bytes`);
  // v1 reports "no limit" as a huge number (2^63 rounded to pages).
  if (v1Limit !== null && v1Limit < 2 ** 60) return { bytes: Math.max(0, v1Limit - (readNumber(`${root}/memory/memory.usage_in_bytes`) ?? 0)), source: 'cgroup v1 memory.limit_in_bytes' };
  return null;
}

/** The budget in bytes: the explicit setting, else STREAMLINE_MEMORY_BUDGET, else the default fraction. */
export function memoryBudget(explicit?: string | number): number {
  if (typeof explicit === 'number') return explicit;
  const setting = explicit ?? process.env[MEMORY_BUDGET_ENV];
  if (setting !== undefined && setting !== '') return parseMemorySize(setting, explicit !== undefined ? '--memory-budget' : MEMORY_BUDGET_ENV);
  return Math.max(512 * 1024 ** 2, Math.floor(availableMemory().bytes * DEFAULT_BUDGET_FRACTION));
}
