/**
 * An engine worker: claims queued plans from the gateway, runs them, streams their progress, and
 * finishes or fails them — through a `WorkerTransport`, so the loop is the same whether the gateway is
 * on loopback (local workers) or across a cluster (GPU pods).
 *
 * While a plan runs, a heartbeat renews its lease and learns whether it was cancelled. Stopping the
 * worker (SIGTERM) aborts the plan at the next step boundary; training saves a checkpoint on the way
 * out; the lease is released so another worker resumes the plan from that checkpoint (its work
 * directory is keyed by plan id).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { EngineError } from '../errors.js';
import { runPlan, type PlanConfig, type PlanEvent, type PlanOutcome } from '../plan-runner.js';

export interface ClaimedPlan {
  readonly planId: string;
  readonly config: PlanConfig;
}

export interface PlanResult {
  readonly outputUri: string | null;
  readonly outcome: PlanOutcome;
}

export interface WorkerTransport {
  /** The oldest queued plan, now leased to this worker; null when the queue is empty. */
  claim(): Promise<ClaimedPlan | null>;
  /** Renews the lease; answers whether the plan was cancelled meanwhile. */
  heartbeat(planId: string): Promise<{ cancelled: boolean }>;
  /** Progress events in order. */
  report(planId: string, events: readonly PlanEvent[]): Promise<void>;
  complete(planId: string, result: PlanResult): Promise<void>;
  fail(planId: string, message: string): Promise<void>;
  /** Gives the plan back to the queue (the worker is stopping); it resumes from its checkpoint. */
  release(planId: string): Promise<void>;
}

export interface WorkerOptions {
  readonly transport: WorkerTransport;
  /** Work directories (hidden-state pairs, checkpoints) and outputs live under here. */
  readonly dataDir: string;
  readonly pollMs?: number;
  readonly heartbeatMs?: number;
  /** Stops the worker: the running plan is checkpointed and released. */
  readonly signal: AbortSignal;
  readonly log?: (line: string) => void;
}

export async function runWorker(options: WorkerOptions): Promise<void> {
  const { transport, signal } = options;
  const log = options.log ?? (() => {});
  while (!signal.aborted) {
    let claimed: ClaimedPlan | null = null;
    try {
      claimed = await transport.claim();
    } catch (error) {
      log(`claim failed: ${(error as Error).message}`);
    }
    if (!claimed) {
      await sleep(options.pollMs ?? 1000, signal);
      continue;
    }
    await runClaimedPlan(claimed, options, log);
  }
}

async function runClaimedPlan({ planId, config }: ClaimedPlan, options: WorkerOptions, log: (line: string) => void): Promise<void> {
  const { transport, signal } = options;
  const plan = new AbortController();
  let cancelled = false;
  const stop = () => plan.abort();
  signal.addEventListener('abort', stop);

  // Events are sent in order, one request at a time; those produced meanwhile go in the next batch.
  let pending: PlanEvent[] = [];
  let sending: Promise<void> = Promise.resolve();
  const flush = () => {
    sending = sending.then(async () => {
      const batch = pending;
      pending = [];
      if (batch.length > 0) await transport.report(planId, batch).catch((error) => log(`report failed for ${planId}: ${(error as Error).message}`));
    });
    return sending;
  };
  // One heartbeat at a time: while the gateway is unreachable the transport keeps retrying the last one.
  let beating = false;
  const heartbeat = setInterval(async () => {
    if (beating) return;
    beating = true;
    try {
      if ((await transport.heartbeat(planId)).cancelled) {
        cancelled = true;
        plan.abort();
      }
    } catch (error) {
      log(`heartbeat failed for ${planId}: ${(error as Error).message}`);
    } finally {
      beating = false;
    }
  }, options.heartbeatMs ?? 2000);

  const workDir = join(options.dataDir, 'work', planId);
  const outDir = join(options.dataDir, 'outputs', planId);
  mkdirSync(workDir, { recursive: true });
  log(`running plan ${planId}`);
  try {
    let lastFlush = 0;
    const outcome = await runPlan(config, {
      workDir,
      outDir,
      signal: plan.signal,
      onEvent: (event) => {
        pending.push(event);
        const stageChanged = pending.length > 1 && pending[pending.length - 2].stage !== event.stage;
        if (stageChanged || Date.now() - lastFlush > 500) {
          lastFlush = Date.now();
          void flush();
        }
      },
    });
    await flush();
    await transport.complete(planId, { outputUri: outcome.dryRun ? null : pathToFileURL(outDir).href, outcome });
    log(`plan ${planId} done`);
  } catch (error) {
    await flush();
    const isCancel = error instanceof EngineError && error.code === 'CANCELLED';
    if (isCancel && cancelled) {
      log(`plan ${planId} was cancelled`);
    } else if (isCancel && signal.aborted) {
      await transport.release(planId).catch((e) => log(`release failed for ${planId}: ${(e as Error).message}`));
      log(`plan ${planId} released for another worker`);
    } else {
      const message = error instanceof EngineError ? error.message : `internal error: ${(error as Error).message}`;
      await transport.fail(planId, message).catch((e) => log(`fail failed for ${planId}: ${(e as Error).message}`));
      log(`plan ${planId} failed: ${message}`);
    }
  } finally {
    clearInterval(heartbeat);
    signal.removeEventListener('abort', stop);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}
