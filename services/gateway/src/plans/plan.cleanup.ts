/**
 * The work a plan cancelled while QUEUED leaves behind. A running plan's worker removes its own work
 * when the plan is cancelled or fails (services/engine/src/worker/worker.ts); a queued plan has no
 * worker, yet may have work from before: one released by a stopping worker (SIGTERM) keeps its work
 * directory and checkpoints to resume from. The gateway removes what it can reach: the work directory
 * under its data directory (where its local workers work) and the checkpoints in its storage.
 * Work directories of workers on other machines are theirs.
 */
import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { openObjectStore } from '../engine.js';

export interface PlanWorkCleanupOptions {
  /** The gateway's data directory (its local workers' too). */
  readonly dataDir?: string;
  /** STREAMLINE_STORAGE; default the data directory. */
  readonly storage?: string;
  readonly storageEnv?: NodeJS.ProcessEnv;
  readonly log?: (message: string) => void;
}

/** The same keys the worker uses (services/engine/src/worker/worker.ts). */
const checkpointPrefix = (planId: string) => `plans/${planId}/checkpoints/`;

export class PlanWorkCleanup {
  constructor(private readonly options: PlanWorkCleanupOptions) {}

  /** Best effort: failures are logged, never thrown. */
  async discard(planId: string): Promise<void> {
    const log = this.options.log ?? (() => {});
    const dataDir = resolve(this.options.dataDir ?? './.streamline');
    try {
      await rm(join(dataDir, 'work', planId), { recursive: true, force: true });
      const store = await openObjectStore({ storage: this.options.storage ?? dataDir, env: this.options.storageEnv });
      const keys: string[] = [];
      for await (const item of store.list(checkpointPrefix(planId))) keys.push(item.key);
      for (const key of keys) await store.delete(key);
    } catch (error) {
      log(`could not remove the work of cancelled plan ${planId}: ${(error as Error).message}`);
    }
  }
}
