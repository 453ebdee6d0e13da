/**
 * An engine worker: claims queued plans from the gateway, runs them, streams their progress, and
 * finishes or fails them — through a `WorkerTransport`, so the loop is the same whether the gateway is
 * on loopback (local workers) or across a cluster (GPU pods).
 *
 * While a plan runs, a heartbeat renews its lease and learns whether it was cancelled. Stopping the
 * worker (SIGTERM) aborts the plan at the next step boundary; training (or healing) saves a checkpoint on
 * the way out; the lease is released so another worker resumes the plan from that checkpoint (its work
 * directory is keyed by plan id). With an object store other than the data directory, the checkpoints,
 * healing's too, and a sweep's finished candidates are kept there (StoredCheckpoints), so the plan
 * resumes on any machine.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { EngineError, type EngineErrorCode } from '../errors.js';
import { parsePlanAssignment } from '../contract/plan-assignment.js';
import type { PlanEvent } from '../contract/plan-event.js';
import type { PlanResult, PrunedResult } from '../contract/plan-result.js';
import { PLAN_CONTRACT_VERSION } from '../plan-contract-version.js';
import { runPlan, stageProgress, sweepOutputFiles } from '../plan-runner.js';
import { readObject } from '../storage/object-store.js';
import { StoredCheckpoints } from '../storage/checkpoint-store.js';
import { checkpointPrefix, outputPrefix, planWorkPrefix } from '../storage/plan-keys.js';
import { withConfinedReads } from '../formats/file-reads.js';
import { LocalObjectStore } from '../storage/local-store.js';
import type { ObjectStore } from '../storage/object-store.js';
import { outputUri, publishOutputs } from '../storage/output-publisher.js';
import { localizePlanInputs } from './plan-inputs.js';

/** A run of a plan (one claim by one worker) and the 1-based index of a batch's first event in it. */
export interface EventBatch {
  readonly run: string;
  readonly firstIndex: number;
}

export interface ClaimedPlan {
  readonly planId: string;
  /** A PlanAssignment in the contract version below: parsed only once that version is this worker's. */
  readonly config: unknown;
  /** The plan contract version `config` is written in; this worker runs only PLAN_CONTRACT_VERSION. */
  readonly contractVersion: number;
}

/**
 * A claimed plan written in another plan contract version than this worker's: the worker released it
 * (it may misread such a config) and stops. Stopping, rather than polling on, is deliberate: the next
 * claim would most likely be the same plan again, so a polling worker would only claim and release it in
 * a loop while newer workers wait; an exited worker is visible (CrashLoopBackOff on Kubernetes, a
 * non-zero exit locally) and its image can be upgraded.
 */
export class PlanContractMismatch extends Error {
  /**
   * `planId`: the plan claimed and released (null: none was claimed); `gatewayVersion`: the version the
   * gateway sent (null: a gateway older than contract versions, whose schema has no contractVersion).
   */
  constructor(
    readonly planId: string | null,
    readonly gatewayVersion: number | null,
  ) {
    const released = planId === null ? '' : ` (plan ${planId}, released)`;
    const advice =
      gatewayVersion !== null && gatewayVersion > PLAN_CONTRACT_VERSION
        ? 'upgrade the worker image'
        : 'the gateway is older than this worker: deploy a worker image matching the gateway';
    super(`this worker speaks plan contract ${PLAN_CONTRACT_VERSION}, the gateway sends ${gatewayVersion ?? 'none'}${released}: ${advice}`);
    this.name = 'PlanContractMismatch';
  }
}

export interface WorkerTransport {
  /** The oldest queued plan, now leased to this worker; null when the queue is empty. */
  claim(): Promise<ClaimedPlan | null>;
  /**
   * Renews the lease; answers whether the plan was cancelled meanwhile (or is no longer this worker's),
   * and whether it has ended for good (absent: cancelled means ended) — only then is its work removed.
   */
  heartbeat(planId: string): Promise<{ cancelled: boolean; ended?: boolean; cancelledCandidates?: readonly string[] }>;
  /** Progress events in order. */
  /**
   * Progress events in order. `batch` numbers them within this run of the plan (one claim), so that a
   * batch sent again after a lost answer is stored once.
   */
  report(planId: string, events: readonly PlanEvent[], batch: EventBatch): Promise<void>;
  complete(planId: string, result: PlanResult): Promise<void>;
  /** `code`: the engine's code when the plan failed on an EngineError (INVALID_WEIGHTS marks the model too). */
  fail(planId: string, message: string, code?: EngineErrorCode): Promise<void>;
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
  /**
   * Where checkpoints and outputs are kept (STREAMLINE_STORAGE): default, the data directory as a local
   * store. With any other store, checkpoints are also kept there and a plan resumes on any machine.
   */
  readonly store?: ObjectStore;
  /** AWS_* / HF_* settings for fetching s3:// and hf:// inputs; default process.env. */
  readonly storageEnv?: NodeJS.ProcessEnv;
}


/** The plan's result beside the checkpoint (streamline.json holds the engine's full report). */
function writeReports(outDir: string, pruned: PrunedResult): void {
  const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;
  writeFileSync(join(outDir, 'importance.json'), json({ block: pruned.block, removedLayers: pruned.removedLayers, importance: pruned.importance }));
  writeFileSync(join(outDir, 'stability.json'), json({ ...pruned.stability, numParameters: pruned.numParameters }));
}

async function deletePrefix(store: ObjectStore, prefix: string): Promise<void> {
  const keys: string[] = [];
  for await (const item of store.list(prefix)) keys.push(item.key);
  // Manifests first, so that nothing half-deleted ever looks complete.
  keys.sort((a, b) => Number(b.endsWith('manifest.json')) - Number(a.endsWith('manifest.json')));
  for (const key of keys) await store.delete(key);
}

function rmWorkDir(planId: string, workDir: string, log: (line: string) => void): void {
  try {
    rmSync(workDir, { recursive: true, force: true });
  } catch (error) {
    log(`could not remove the work directory of ${planId}: ${(error as Error).message}`);
  }
}

/**
 * A cancelled or failed plan will not resume: its work directory (hidden-state pairs, checkpoints, an
 * unpublished export) and its checkpoints in the store are removed.
 */
async function discardPlanWork(planId: string, workDir: string, store: ObjectStore, log: (line: string) => void): Promise<void> {
  rmWorkDir(planId, workDir, log);
  await deletePrefix(store, planWorkPrefix(planId)).catch((e) => log(`could not delete the checkpoints of ${planId}: ${(e as Error).message}`));
}

/**
 * Claims and runs plans until `signal` fires. Rejects with PlanContractMismatch, after releasing the
 * plan, when a claim carries another plan contract version than PLAN_CONTRACT_VERSION.
 */
export async function runWorker(options: WorkerOptions): Promise<void> {
  const { transport, signal } = options;
  const log = options.log ?? (() => {});
  while (!signal.aborted) {
    let claimed: ClaimedPlan | null = null;
    try {
      claimed = await transport.claim();
    } catch (error) {
      if (error instanceof PlanContractMismatch) {
        log(error.message);
        throw error;
      }
      log(`claim failed: ${(error as Error).message}`);
    }
    if (!claimed) {
      await sleep(options.pollMs ?? 1000, signal);
      continue;
    }
    if (claimed.contractVersion !== PLAN_CONTRACT_VERSION) {
      const mismatch = new PlanContractMismatch(claimed.planId, claimed.contractVersion);
      log(mismatch.message);
      // Before anything reads the config; released as soon as possible, so another worker can take it.
      await transport.release(claimed.planId).catch((e) => log(`release failed for ${claimed.planId}: ${(e as Error).message}`));
      throw mismatch;
    }
    await runClaimedPlan(claimed, options, log);
  }
}

async function runClaimedPlan({ planId, config }: ClaimedPlan, options: WorkerOptions, log: (line: string) => void): Promise<void> {
  const { transport, signal } = options;
  const plan = new AbortController();
  let cancelled = false;
  let ended = false;
  const stop = () => plan.abort();
  signal.addEventListener('abort', stop);
  // Sweeps: each candidate's own cancellation, learnt from the heartbeat.
  const candidates = new Map<string, AbortController>();
  const candidateController = (id: string) => {
    if (!candidates.has(id)) candidates.set(id, new AbortController());
    return candidates.get(id)!;
  };

  // Events are sent in order, one request at a time; those produced meanwhile go in the next batch.
  let pending: PlanEvent[] = [];
  const run = randomUUID();
  let sent = 0;
  let sending: Promise<void> = Promise.resolve();
  const flush = () => {
    sending = sending.then(async () => {
      const batch = pending;
      pending = [];
      if (batch.length === 0) return;
      const firstIndex = sent + 1;
      sent += batch.length;
      await transport.report(planId, batch, { run, firstIndex }).catch((error) => log(`report failed for ${planId}: ${(error as Error).message}`));
    });
    return sending;
  };
  // One heartbeat at a time: while the gateway is unreachable the transport keeps retrying the last one.
  let beating = false;
  const beat = async () => {
    if (beating) return;
    beating = true;
    try {
      const beat = await transport.heartbeat(planId);
      for (const id of beat.cancelledCandidates ?? []) candidateController(id).abort();
      if (beat.cancelled) {
        cancelled = true;
        ended = beat.ended ?? true;
        plan.abort();
      }
    } catch (error) {
      log(`heartbeat failed for ${planId}: ${(error as Error).message}`);
    } finally {
      beating = false;
    }
  };
  const heartbeat = setInterval(beat, options.heartbeatMs ?? 2000);

  const workDir = join(options.dataDir, 'work', planId);
  // The export is written here, then published to the store under outputs/<planId>/ as a whole.
  const outDir = join(workDir, 'output');
  rmSync(outDir, { recursive: true, force: true }); // an earlier attempt's unpublished export
  mkdirSync(workDir, { recursive: true });
  const store = options.store ?? new LocalObjectStore(resolve(options.dataDir));
  // When the store is the data directory itself, the work directory's checkpoints are already in it.
  const storeIsDataDir = store instanceof LocalObjectStore && resolve(store.root) === resolve(options.dataDir);
  log(`running plan ${planId}`);
  let checkpoints: StoredCheckpoints | undefined;
  try {
    let lastFlush = 0;
    const onEvent = (event: PlanEvent) => {
      // The trainer and its threads, as the engine names them (`training: onnxruntime cpu, 2 threads`).
      if (event.stage === 'TRAINING' && event.message.startsWith('training: ')) log(`plan ${planId} ${event.message}`);
      pending.push(event);
      const stageChanged = pending.length > 1 && pending[pending.length - 2].stage !== event.stage;
      if (stageChanged || Date.now() - lastFlush > 500) {
        lastFlush = Date.now();
        void flush();
      }
    };
    const assignment = parsePlanAssignment(config);
    const inputs = await localizePlanInputs(assignment, {
      cacheDir: join(options.dataDir, 'cache'),
      denied: [resolve(options.dataDir)],
      settings: { env: options.storageEnv, log },
      onFetch: (message) => onEvent({ stage: 'LOADING', progress: 0, message }),
    });
    // A sweep's candidates may have been cancelled while it was queued: learn of them before it starts.
    if (assignment.spec.sweep) await beat();
    const from = assignment.spec.fromCandidate;
    const candidateDir = from ? await fetchCandidate(store, from.planId, from.candidateId, join(workDir, 'candidate')) : undefined;
    checkpoints = assignment.spec.dryRun || storeIsDataDir ? undefined : new StoredCheckpoints(store, { prefix: checkpointPrefix(planId), log });
    const run = () =>
      runPlan({ ...inputs.plan, candidateDir }, {
        workDir,
        outDir,
        signal: plan.signal,
        onEvent,
        checkpoints,
        modelFingerprint: inputs.modelFingerprint,
        modelUri: inputs.modelUri,
        candidateSignal: (id) => candidateController(id).signal,
      });
    // every file the plan opens under a checked local input is checked again by descriptor
    const outcome = await (inputs.confinement ? withConfinedReads(inputs.confinement, run) : run());
    let published: string | null = null;
    if (!outcome.dryRun) {
      if ('pruned' in outcome) writeReports(outDir, outcome.pruned);
      onEvent({ stage: 'UPLOADING', progress: stageProgress('UPLOADING', 0.5), message: `publishing the outputs to ${outputUri(store, outputPrefix(planId))}` });
      published = await publishOutputs(store, outputPrefix(planId), outDir, log);
      if (checkpoints) await deletePrefix(store, planWorkPrefix(planId)).catch((e) => log(`could not delete the checkpoints of ${planId}: ${(e as Error).message}`));
    }
    await flush();
    const result: PlanResult = { outputUri: published, outcome };
    await transport.complete(planId, result);
    log(`plan ${planId} done`);
    // The outputs are published; the hidden-state pairs and checkpoints are of no further use.
    rmWorkDir(planId, workDir, log);
  } catch (error) {
    await flush();
    const isCancel = error instanceof EngineError && error.code === 'CANCELLED';
    if (isCancel && cancelled) {
      log(`plan ${planId} was cancelled${ended ? '' : ' here (another worker holds it now)'}`);
      if (ended) await discardPlanWork(planId, workDir, store, log);
    } else if (isCancel && signal.aborted) {
      // Released, not ended: the work directory and the checkpoints stay, for the worker that resumes it;
      // every checkpoint and finished candidate saved so far is in the store before another may claim it.
      await checkpoints?.flush();
      await transport.release(planId).catch((e) => log(`release failed for ${planId}: ${(e as Error).message}`));
      log(`plan ${planId} released for another worker`);
    } else {
      const message = error instanceof EngineError ? error.message : `internal error: ${(error as Error).message}`;
      const code = error instanceof EngineError ? error.code : undefined;
      const recorded = await transport.fail(planId, message, code).then(
        () => true,
        (e) => log(`fail failed for ${planId}: ${(e as Error).message}`),
      );
      log(`plan ${planId} failed: ${message}`);
      // Only once the gateway took the failure from this worker: a plan whose lease went to another
      // worker meanwhile (the gateway refuses this one's word) resumes there from this work.
      if (recorded === true) await discardPlanWork(planId, workDir, store, log);
    }
  } finally {
    clearInterval(heartbeat);
    signal.removeEventListener('abort', stop);
  }
}

/**
 * A sweep candidate's published files (see sweepOutputFiles) in a local folder, as loadTrainedCandidate
 * reads them. NOT_FOUND when the sweep published no such candidate.
 */
async function fetchCandidate(store: ObjectStore, planId: string, candidateId: string, dir: string): Promise<string> {
  const names = sweepOutputFiles(candidateId);
  mkdirSync(dir, { recursive: true });
  let record: Buffer;
  try {
    record = await readObject(store, `${outputPrefix(planId)}${names.record}`);
  } catch {
    throw new EngineError('NOT_FOUND', `candidate ${candidateId} of plan ${planId} has no published replacement`);
  }
  writeFileSync(join(dir, 'candidate.json'), record);
  const { result } = JSON.parse(record.toString('utf8')) as { result: { replacement: string } };
  if (result.replacement !== 'NONE') writeFileSync(join(dir, 'replacement.safetensors'), await readObject(store, `${outputPrefix(planId)}${names.weights}`));
  return dir;
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
