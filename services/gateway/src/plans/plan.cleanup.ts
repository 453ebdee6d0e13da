/**
 * What a plan leaves on the gateway's side: its work and, for a deleted model's plans, its output.
 *
 * The work a plan cancelled while QUEUED leaves behind. A running plan's worker removes its own work
 * when the plan is cancelled or fails (services/engine/src/worker/worker.ts); a queued plan has no
 * worker, yet may have work from before: one released by a stopping worker (SIGTERM) keeps its work
 * directory and checkpoints to resume from. The gateway removes what it can reach: the work directory
 * under its data directory (where its local workers work) and the checkpoints in its storage.
 * Work directories of workers on other machines are theirs.
 */
import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { openObjectStore, outputPrefix, parseStorageUri, planWorkPrefix } from '../engine.js';

export interface PlanWorkCleanupOptions {
  /** The gateway's data directory (its local workers' too). */
  readonly dataDir?: string;
  /** STREAMLINE_STORAGE; default the data directory. */
  readonly storage?: string;
  readonly storageEnv?: NodeJS.ProcessEnv;
  readonly log?: (message: string) => void;
}


export class PlanWorkCleanup {
  constructor(private readonly options: PlanWorkCleanupOptions) {}

  /** The plan's work directory and checkpoints. Best effort: failures are logged, never thrown. */
  async discard(planId: string): Promise<void> {
    const dataDir = resolve(this.options.dataDir ?? './.streamline');
    try {
      await rm(join(dataDir, 'work', planId), { recursive: true, force: true });
      await this.deletePrefix(planWorkPrefix(planId));
    } catch (error) {
      this.log(`could not remove the work of plan ${planId}: ${(error as Error).message}`);
    }
  }

  /** The plan's pruned model in the storage (outputs/<planId>/). Best effort, as discard. */
  async discardOutput(planId: string): Promise<void> {
    try {
      await this.deletePrefix(outputPrefix(planId));
    } catch (error) {
      this.log(`could not remove the output of plan ${planId}: ${(error as Error).message}`);
    }
  }

  /** Every object under the prefix; in a local storage directory, the emptied folders too. */
  private async deletePrefix(prefix: string): Promise<void> {
    const storage = this.options.storage ?? resolve(this.options.dataDir ?? './.streamline');
    const store = await openObjectStore({ storage, env: this.options.storageEnv });
    const keys: string[] = [];
    for await (const item of store.list(prefix)) keys.push(item.key);
    for (const key of keys) await store.delete(key);
    const location = parseStorageUri(storage);
    if (location.kind === 'local') await rm(join(location.dir, ...prefix.split('/').filter(Boolean)), { recursive: true, force: true });
  }

  private log(message: string): void {
    (this.options.log ?? (() => {}))(message);
  }
}
