/**
 * Peak RSS per prune stage, sampled every 250 ms and at each progress event: which stage sets a bench
 * child process's peak. `event` is the prune's onProgress (it logs the event with the seconds since start).
 */
import type { PruneEvent } from '../src/pruning/prune.js';

export function stagePeaks() {
  const started = performance.now();
  const peaks: Record<string, number> = {};
  let stage = 'start';
  const sample = () => void (peaks[stage] = Math.max(peaks[stage] ?? 0, process.memoryUsage.rss()));
  const sampler = setInterval(sample, 250);
  return {
    started,
    event(event: PruneEvent): void {
      sample();
      stage = event.stage;
      process.stderr.write(`${((performance.now() - started) / 1000).toFixed(1)}s ${event.stage.toLowerCase()}: ${event.message}\n`);
    },
    /** From now on, samples count towards `name` (a step after the prune: reloading, say). */
    enter(name: string): void {
      sample();
      stage = name;
    },
    /** Stops sampling; the peaks in GiB, two decimals. */
    stop(): Record<string, number> {
      sample();
      clearInterval(sampler);
      return Object.fromEntries(Object.entries(peaks).map(([k, v]) => [k, +(v / 1024 ** 3).toFixed(2)]));
    },
  };
}
