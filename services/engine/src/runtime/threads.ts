/**
 * How many threads the native kernels (ONNX Runtime's intra-op pool, training and forward) use:
 * STREAMLINE_THREADS when set, else the container's CPU quota (cgroup v2 cpu.max, rounded up), else
 * every core Node sees. A pod limited to 2 CPUs on a 64-core node must not start 64 threads.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { EngineError } from '../errors.js';

export function defaultThreads(env: NodeJS.ProcessEnv = process.env, cpuMaxPath = '/sys/fs/cgroup/cpu.max'): number {
  const requested = env.STREAMLINE_THREADS;
  if (requested !== undefined && requested !== '') {
    if (!/^[1-9][0-9]{0,3}$/.test(requested)) {
      throw new EngineError('BAD_INPUT', `STREAMLINE_THREADS=${requested} is not a thread count; expected a whole number from 1 to 9999`);
    }
    return Number(requested);
  }
  const cores = availableParallelism();
  const quota = cgroupCpuQuota(cpuMaxPath);
  return quota === null ? cores : Math.max(1, Math.min(cores, Math.ceil(quota)));
}

/** CPUs allowed by cgroup v2 (`max 100000` = unlimited → null); null when the file is absent or unreadable. */
export function cgroupCpuQuota(path = '/sys/fs/cgroup/cpu.max'): number | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return null;
  }
  const [quota, period] = text.trim().split(/\s+/);
  if (quota === 'max' || !quota || !period) return null;
  const value = Number(quota) / Number(period);
  return Number.isFinite(value) && value > 0 ? value : null;
}
