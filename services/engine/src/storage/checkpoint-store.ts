/**
 * Training checkpoints kept in the object store, so that a plan resumes on any machine — a GPU pod that
 * replaced a dead one has no access to its predecessor's disk.
 *
 * Layout, under the plan's prefix (`plans/<planId>/checkpoints/`): one folder per checkpoint,
 * `<step, 10 digits>-<time>-<random>/`, holding the files training wrote (state.json,
 * tensors.safetensors) and, written last, `manifest.json` listing every file's size and sha256. A
 * checkpoint without its manifest, or whose files disagree with it, is half-written and is never taken.
 *
 * Saving is asynchronous: `saved()` hard-links the just-written files into a staging folder (cheap, and
 * immune to training replacing its checkpoint directory next), and uploads run one at a time in the
 * background; when training saves again before the previous upload started, only the newer one goes up.
 * `flush()` waits for the uploads (a worker calls it before releasing a plan). After each upload, older
 * checkpoints beyond the newest `keep` are deleted, and so are half-written ones older than the new one.
 *
 * A plan's other resumable work goes the same way, each in its own folder beside the training one
 * (`beside()`): healing's checkpoints under `plans/<planId>/healing/`, and each finished sweep candidate
 * (its saved folder, as one checkpoint) under `plans/<planId>/candidates/<id>/`. They share one upload
 * queue, so one `flush()` waits for all of them.
 */
import { randomBytes } from 'node:crypto';
import { copyFileSync, linkSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { EngineError } from '../errors.js';
import { sha256OfFile, writeMeasured } from './integrity.js';
import { readObject, type ObjectStore } from './object-store.js';

/** What pruning asks of whoever keeps checkpoints beyond the work directory. */
export interface CheckpointSync {
  /** Before training starts: put the newest complete stored checkpoint at `checkpointDir` when it is newer than the local one. */
  restore(checkpointDir: string): Promise<{ step: number; from: string } | null>;
  /** Training has just written a complete checkpoint at `checkpointDir` (called synchronously, before training goes on). */
  saved(step: number, checkpointDir: string): void;
  /** Resolves once every saved checkpoint is stored, this sync's and those beside it (failures are logged, not thrown: the local copy remains). */
  flush(): Promise<void>;
  /**
   * The sync of another resumable piece of the same plan, in the folder `name` beside this one's
   * (`healing`, `candidates/<id>`); it shares this one's upload queue.
   */
  beside(name: string): CheckpointSync;
}

interface CheckpointManifest {
  readonly format: 'streamline-checkpoint/1';
  readonly step: number;
  readonly savedAt: string;
  readonly files: { readonly name: string; readonly size: number; readonly sha256: string }[];
}

export const CHECKPOINT_MANIFEST = 'manifest.json';

export interface StoredCheckpointsOptions {
  /** The plan's prefix in the store, e.g. `plans/<planId>/checkpoints/`. */
  readonly prefix: string;
  /** Complete checkpoints to keep; default 2. */
  readonly keep?: number;
  readonly log?: (line: string) => void;
}

export class StoredCheckpoints implements CheckpointSync {
  private readonly prefix: string;
  private readonly keep: number;
  private readonly log: (line: string) => void;
  /** Uploads run one at a time, across this instance and those made by beside(). */
  private readonly queue: { tail: Promise<void> };
  private pending: { step: number; staging: string } | null = null;
  /** Steps stored so far by this instance, in order (for logs and tests). */
  readonly stored: number[] = [];

  constructor(
    private readonly store: ObjectStore,
    options: StoredCheckpointsOptions,
    queue?: { tail: Promise<void> },
  ) {
    this.prefix = options.prefix.endsWith('/') ? options.prefix : `${options.prefix}/`;
    this.keep = Math.max(1, options.keep ?? 2);
    this.log = options.log ?? (() => {});
    this.queue = queue ?? { tail: Promise.resolve() };
  }

  beside(name: string): StoredCheckpoints {
    const parent = this.prefix.replace(/[^/]+\/$/, '');
    return new StoredCheckpoints(this.store, { prefix: `${parent}${name}/`, keep: this.keep, log: this.log }, this.queue);
  }

  /** Complete checkpoints in the store, newest first. */
  async list(): Promise<{ id: string; manifest: CheckpointManifest }[]> {
    const byId = new Map<string, Map<string, number>>();
    for await (const item of this.store.list(this.prefix)) {
      const [id, name, ...rest] = item.key.slice(this.prefix.length).split('/');
      if (!id || !name || rest.length > 0) continue;
      if (!byId.has(id)) byId.set(id, new Map());
      byId.get(id)!.set(name, item.size);
    }
    const complete: { id: string; manifest: CheckpointManifest }[] = [];
    for (const [id, files] of [...byId].sort(([a], [b]) => b.localeCompare(a))) {
      if (!files.has(CHECKPOINT_MANIFEST)) continue; // half-written: its manifest never went up
      const manifest = await this.readManifest(id);
      if (manifest && manifest.files.every((f) => files.get(f.name) === f.size)) complete.push({ id, manifest });
    }
    return complete.sort((a, b) => b.manifest.step - a.manifest.step || b.id.localeCompare(a.id));
  }

  async restore(checkpointDir: string): Promise<{ step: number; from: string } | null> {
    const localStep = await readLocalStep(checkpointDir);
    for (const { id, manifest } of await this.list()) {
      if (localStep !== null && localStep >= manifest.step) return null; // the local one is as new
      const temp = `${checkpointDir}.restore-${randomBytes(4).toString('hex')}`;
      try {
        mkdirSync(temp, { recursive: true });
        for (const file of manifest.files) await this.download(`${this.prefix}${id}/${file.name}`, join(temp, file.name), file);
        rmSync(`${checkpointDir}.old`, { recursive: true, force: true });
        rmSync(checkpointDir, { recursive: true, force: true });
        await rename(temp, checkpointDir);
        const from = `${this.store.uri.replace(/\/$/, '')}/${this.prefix}${id}`;
        this.log(`checkpoint: restored step ${manifest.step} from ${from}`);
        return { step: manifest.step, from };
      } catch (err) {
        await rm(temp, { recursive: true, force: true });
        // A checkpoint that fails verification is skipped for the next older one; storage failures are not.
        if (!(err instanceof EngineError && err.code === 'CORRUPT_FILE')) throw err;
        this.log(`checkpoint: ${this.prefix}${id} is unusable (${err.message}); trying an older one`);
      }
    }
    return null;
  }

  saved(step: number, checkpointDir: string): void {
    const staging = join(checkpointDir, '..', 'checkpoint-uploads', `${String(step).padStart(10, '0')}-${Date.now()}-${randomBytes(3).toString('hex')}`);
    mkdirSync(staging, { recursive: true });
    for (const name of readdirSync(checkpointDir, { withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name)) {
      try {
        linkSync(join(checkpointDir, name), join(staging, name));
      } catch {
        copyFileSync(join(checkpointDir, name), join(staging, name));
      }
    }
    if (this.pending) rmSync(this.pending.staging, { recursive: true, force: true }); // superseded before it went up
    this.pending = { step, staging };
    this.queue.tail = this.queue.tail.then(() => this.uploadPending());
  }

  async flush(): Promise<void> {
    // Uploads queued while waiting (a candidate saved during the flush) are waited for too.
    let tail: Promise<void>;
    do {
      tail = this.queue.tail;
      await tail;
    } while (tail !== this.queue.tail);
  }

  private async uploadPending(): Promise<void> {
    const next = this.pending;
    this.pending = null;
    if (!next) return;
    const id = next.staging.split(/[\\/]/).pop()!;
    try {
      const files: CheckpointManifest['files'] = [];
      for (const name of readdirSync(next.staging).sort()) {
        const path = join(next.staging, name);
        const stored = await this.store.put(`${this.prefix}${id}/${name}`, { path });
        files.push({ name, size: statSync(path).size, sha256: stored.sha256 ?? (await sha256OfFile(path)) });
      }
      const manifest: CheckpointManifest = { format: 'streamline-checkpoint/1', step: next.step, savedAt: new Date().toISOString(), files };
      await this.store.put(`${this.prefix}${id}/${CHECKPOINT_MANIFEST}`, Buffer.from(JSON.stringify(manifest, null, 2)), { contentType: 'application/json' });
      this.stored.push(next.step);
      this.log(`checkpoint: step ${next.step} stored at ${this.store.uri.replace(/\/$/, '')}/${this.prefix}${id}`);
      await this.prune(id);
    } catch (err) {
      this.log(`checkpoint: storing step ${next.step} failed, the local copy remains: ${(err as Error).message}`);
    } finally {
      rmSync(next.staging, { recursive: true, force: true });
    }
  }

  /** Deletes complete checkpoints beyond the newest `keep`, and half-written ones older than `newest`. */
  private async prune(newest: string): Promise<void> {
    const complete = await this.list();
    const keepIds = new Set(complete.slice(0, this.keep).map((c) => c.id));
    keepIds.add(newest);
    const doomed: string[] = [];
    for await (const item of this.store.list(this.prefix)) {
      const id = item.key.slice(this.prefix.length).split('/')[0];
      if (!keepIds.has(id) && id < newest) doomed.push(item.key);
    }
    // Manifests first: a checkpoint being deleted stops counting as complete before its files go.
    doomed.sort((a, b) => Number(b.endsWith(`/${CHECKPOINT_MANIFEST}`)) - Number(a.endsWith(`/${CHECKPOINT_MANIFEST}`)));
    for (const key of doomed) await this.store.delete(key);
  }

  private async readManifest(id: string): Promise<CheckpointManifest | null> {
    try {
      const manifest = JSON.parse((await readObject(this.store, `${this.prefix}${id}/${CHECKPOINT_MANIFEST}`)).toString('utf8')) as CheckpointManifest;
      return manifest.format === 'streamline-checkpoint/1' && Number.isInteger(manifest.step) && Array.isArray(manifest.files) ? manifest : null;
    } catch (err) {
      if (err instanceof EngineError && (err.code === 'CORRUPT_FILE' || err.code === 'NOT_FOUND')) return null;
      if (err instanceof SyntaxError) return null;
      throw err;
    }
  }

  private async download(key: string, path: string, expected: { size: number; sha256: string }): Promise<void> {
    const { size, sha256 } = await writeMeasured(await this.store.get(key), path);
    if (size !== expected.size || sha256 !== expected.sha256) {
      throw new EngineError('CORRUPT_FILE', `${key}: expected ${expected.size} bytes with sha256 ${expected.sha256}, got ${size} bytes with ${sha256}`);
    }
  }
}

/** The step of the checkpoint training left at `dir` (or in its `.old` twin after a crash mid-swap), if any. */
async function readLocalStep(dir: string): Promise<number | null> {
  for (const candidate of [dir, `${dir}.old`]) {
    try {
      const state = JSON.parse(await readFile(join(candidate, 'state.json'), 'utf8')) as { step?: unknown };
      statSync(join(candidate, 'tensors.safetensors'));
      if (typeof state.step === 'number') return state.step;
    } catch {
      // absent or half-written: look further
    }
  }
  return null;
}
