/**
 * Plans with their inputs, checkpoints and outputs in S3, against a real s3rver on loopback (the real
 * @aws-sdk/client-s3, no mocked client): remote inspection from headers only, inputs fetched through the
 * caches, checkpoints kept in the bucket and restored on another disk to the same final weights, a
 * half-written or corrupted checkpoint never taken — healing's too, and a sweep's finished candidates,
 * which a sweep resumed on a fresh disk does not train again — outputs that appear only when complete.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EngineError } from '../src/errors.js';
import { inspectModel, loadModel } from '../src/models/model.js';
import type { PlanEvent, PlanOutcome } from '../src/contract/index.js';
import { runPlan } from '../src/plan-runner.js';
import { healReplacement } from '../src/pruning/heal.js';
import { initialParameters } from '../src/pruning/replacement.js';
import { trainReplacement, type TrainingSettings } from '../src/pruning/train.js';
import { CHECKPOINT_MANIFEST, StoredCheckpoints, type CheckpointSync } from '../src/storage/checkpoint-store.js';
import { fetchFile } from '../src/storage/file-cache.js';
import { fetchModel } from '../src/storage/model-cache.js';
import { readObject, type ObjectStore } from '../src/storage/object-store.js';
import { OUTPUT_MANIFEST, publishOutputs, type OutputManifest } from '../src/storage/output-publisher.js';
import { inspectRemoteModel } from '../src/storage/remote-inspect.js';
import { runWorker } from '../src/worker/worker.js';
import { S3_SECRETS, startS3Server, uploadFolder, type S3Server } from '@streamline/testing/s3-server';
import { largestDifference, tinyHealingJob, tinyLlamaPairs } from './fixtures/tiny-pairs.js';
import { seededRandom, writeTinyModel } from './fixtures/tiny-models.js';
import { testAssignment, testLocalPlan, type TestPlan } from './fixtures/plan-spec.js';
import { QueueTransport } from './fixtures/queue-transport.js';
import { engineFailure } from './fixtures/failures.js';

const BUCKET = 'streamline';
const work = mkdtempSync(join(tmpdir(), 'streamline-storage-plans-'));
let counter = 0;
const fresh = (name: string) => join(work, `${name}-${counter++}`);

let s3: S3Server;
/** Every log line and error message of these tests: none may hold a credential. */
const seen: string[] = [];
const log = (line: string) => void seen.push(line);
beforeAll(async () => {
  s3 = await startS3Server([BUCKET]);
});
afterAll(async () => {
  await s3?.stop();
  rmSync(work, { recursive: true, force: true });
  for (const line of seen) for (const secret of S3_SECRETS) expect(line).not.toContain(secret);
});

const failure = (promise: Promise<unknown>) => engineFailure(promise, seen);

async function keys(store: ObjectStore, prefix: string): Promise<string[]> {
  const found: string[] = [];
  for await (const item of store.list(prefix)) found.push(item.key);
  return found.sort();
}

/** A tiny llama folder in the bucket, and a calibration file beside it. */
async function uploadInputs(prefix: string): Promise<{ model: string; data: string }> {
  const store = s3.store(BUCKET);
  await uploadFolder(store, `${prefix}/model`, writeTinyModel('llama', { seed: 7 }));
  const random = seededRandom(11);
  const lines = Array.from({ length: 8 }, () => JSON.stringify({ input_ids: Array.from({ length: 8 }, () => Math.floor((random() + 1) * 32)) }));
  await store.put(`${prefix}/data/calibration.jsonl`, Buffer.from(`${lines.join('\n')}\n`));
  return { model: `s3://${BUCKET}/${prefix}/model`, data: `s3://${BUCKET}/${prefix}/data/calibration.jsonl` };
}

describe('remote inputs', () => {
  it('inspects an s3:// model from config.json and safetensors headers, never reading the weights whole', async () => {
    const { model } = await uploadInputs('inspect');
    const before = s3.requests.length;
    const info = await inspectRemoteModel(model, { settings: { env: s3.env, log } });
    expect(info).toMatchObject({ format: 'huggingface', path: `s3://${BUCKET}/inspect/model/`, numParameters: loadModel(writeTinyModel('llama', { seed: 7 })).numParameters });
    expect(info.family.modelType).toBe('llama');
    expect(info.config.numLayers).toBe(3);
    // config.json whole; model.safetensors only by two ranged GETs (length, then header)
    const gets = s3.requests.slice(before).filter((r) => r.startsWith('GET ') && !r.includes('list-type'));
    expect(gets.filter((r) => r.includes('model.safetensors'))).toHaveLength(2);
    expect(gets.every((r) => r.includes('config.json') || r.includes('model.safetensors'))).toBe(true);
    // the config.json URI means its folder
    expect((await inspectRemoteModel(`${model}/config.json`, { settings: { env: s3.env } })).numParameters).toBe(info.numParameters);
  });

  it('names a missing bucket, a missing folder, denied access and a llama2.c file precisely', async () => {
    const settings = { env: s3.env, retry: { attempts: 1 } };
    expect(await failure(inspectRemoteModel('s3://no-such-bucket/m', { settings }))).toMatchObject({ code: 'NOT_FOUND', message: expect.stringContaining("bucket 'no-such-bucket' does not exist") });
    expect(await failure(inspectRemoteModel(`s3://${BUCKET}/nothing/here`, { settings }))).toMatchObject({ code: 'NOT_FOUND', message: expect.stringContaining('config.json not found') });
    const denied = await failure(inspectRemoteModel(`s3://${BUCKET}/inspect/model`, { settings: { ...settings, env: { ...s3.env, AWS_ACCESS_KEY_ID: 'AKIASTREAMLINEWRONG1' } } }));
    expect(denied).toMatchObject({ code: 'STORAGE', message: expect.stringContaining('access denied') });
    expect(denied.message).not.toContain('AKIASTREAMLINEWRONG1');
    expect(await failure(inspectRemoteModel(`s3://${BUCKET}/models/stories260K.bin`, { settings }))).toMatchObject({ code: 'BAD_INPUT', message: expect.stringContaining('Hugging Face folders') });
  });

  it('bounds a remote config like a local one, refuses an oversized config.json before fetching it, and inspects through the given function', async () => {
    const store = s3.store(BUCKET);
    const settings = { env: s3.env, retry: { attempts: 1 } };
    const dir = writeTinyModel('llama');
    await uploadFolder(store, 'hostile/layers', dir);
    await store.put('hostile/layers/config.json', Buffer.from(JSON.stringify({ ...JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')), num_hidden_layers: 1e9 })));
    expect(await failure(inspectRemoteModel(`s3://${BUCKET}/hostile/layers`, { settings }))).toMatchObject({
      code: 'CORRUPT_FILE',
      message: expect.stringMatching(/num_hidden_layers is 1000000000, outside the accepted range 1 to 1024/),
    });
    await uploadFolder(store, 'hostile/big-config', dir);
    await store.put('hostile/big-config/config.json', Buffer.alloc(17 * 1024 * 1024, 0x20));
    const before = s3.requests.length;
    expect(await failure(inspectRemoteModel(`s3://${BUCKET}/hostile/big-config`, { settings }))).toMatchObject({
      code: 'CORRUPT_FILE',
      message: expect.stringContaining('config.json is 17825792 bytes, more than the 16777216 accepted'),
    });
    expect(s3.requests.slice(before).filter((r) => r.startsWith('GET ') && r.includes('config.json'))).toHaveLength(0);
    const inspected: string[] = [];
    const info = await inspectRemoteModel(`s3://${BUCKET}/inspect/model`, { settings, inspect: (scratch) => (inspected.push(scratch), inspectModel(scratch)) });
    expect(inspected).toHaveLength(1);
    expect(info.config.numLayers).toBe(3);
  });

  it('caches a dataset object and downloads it again only when it changed', async () => {
    const store = s3.store(BUCKET);
    await store.put('files/a.txt', Buffer.from('one'));
    const cache = fresh('cache');
    const first = await fetchFile(`s3://${BUCKET}/files/a.txt`, cache, { settings: { env: s3.env } });
    expect(first.downloaded).toBe(true);
    expect(readFileSync(first.path, 'utf8')).toBe('one');
    expect((await fetchFile(`s3://${BUCKET}/files/a.txt`, cache, { settings: { env: s3.env } })).downloaded).toBe(false);
    await store.put('files/a.txt', Buffer.from('two!'));
    const changed = await fetchFile(`s3://${BUCKET}/files/a.txt`, cache, { settings: { env: s3.env } });
    expect([changed.downloaded, readFileSync(changed.path, 'utf8')]).toEqual([true, 'two!']);
    expect(await failure(fetchFile(`s3://${BUCKET}/files/missing.txt`, cache, { settings: { env: s3.env } }))).toMatchObject({ code: 'NOT_FOUND' });
  });
});

describe('checkpoints in the object store', () => {
  const settings: TrainingSettings = { minSteps: 9, batchSize: 2, gradAccum: 2, learningRate: 1e-2, minLearningRate: 1e-3, weightDecay: 1e-3, gradClip: 1, seed: 3, checkpointEvery: 2 };

  it('resume on another disk from the newest complete stored checkpoint, to the weights of an uninterrupted run', async () => {
    const { model, pairs } = await tinyLlamaPairs(fresh('pairs'), 1);
    const job = (dir: string, checkpoints?: StoredCheckpoints, onStep?: (step: number) => void) =>
      trainReplacement({
        kind: 'SWIGLU',
        model,
        initial: () => initialParameters('SWIGLU', model, 1, 3),
        pairs,
        dir,
        key: 'same',
        settings,
        onCheckpoint: checkpoints && ((step, checkpointDir) => checkpoints.saved(step, checkpointDir)),
        onProgress: (p) => onStep?.(p.step),
      });
    const uninterrupted = await job(fresh('train'));

    const store = s3.store(BUCKET, 'ckpt');
    const prefix = 'plans/p1/checkpoints/';
    const first = new StoredCheckpoints(store, { prefix, log });
    // A crash (not a cancellation) after step 5: nothing is saved beyond the step-4 checkpoint.
    await expect(job(fresh('train'), first, (step) => { if (step === 5) throw new Error('killed'); })).rejects.toThrow('killed');
    await first.flush();
    expect(first.stored.at(-1)).toBe(4);
    const stored = await first.list();
    expect(stored.map((c) => c.manifest.step)).toEqual([4, 2]); // older ones pruned: the newest two are kept

    // Newer, but half-written (its manifest never went up) or corrupted: neither is taken.
    await store.put(`${prefix}0000000009-1-aaaaaa/state.json`, Buffer.from('{"step": 9}'));
    const corrupt = `${prefix}0000000008-1-bbbbbb/`;
    await store.put(`${corrupt}state.json`, Buffer.from('{"step": 8}'));
    await store.put(`${corrupt}tensors.safetensors`, Buffer.from('xx'));
    await store.put(`${corrupt}${CHECKPOINT_MANIFEST}`, Buffer.from(JSON.stringify({ format: 'streamline-checkpoint/1', step: 8, savedAt: '', files: [{ name: 'state.json', size: 11, sha256: '0'.repeat(64) }, { name: 'tensors.safetensors', size: 2, sha256: '0'.repeat(64) }] })));

    const otherDisk = fresh('train');
    const second = new StoredCheckpoints(store, { prefix, log });
    expect(await second.restore(join(otherDisk, 'checkpoint'))).toMatchObject({ step: 4 });
    expect(seen.some((line) => line.includes('0000000008-1-bbbbbb') && line.includes('unusable'))).toBe(true);
    const resumed = await job(otherDisk, second);
    await second.flush();
    expect(resumed.resumedFromStep).toBe(4);
    expect(resumed.epochs).toEqual(uninterrupted.epochs);
    for (const [name, tensor] of uninterrupted.params) expect(Array.from(resumed.params.get(name)!.data)).toEqual(Array.from(tensor.data));
    // A local checkpoint at least as new as the stored one is kept as it is.
    expect(await second.restore(join(otherDisk, 'checkpoint'))).toBeNull();
    pairs.close();
  });
});

describe('healing checkpoints in the object store', () => {
  it('heal on another disk from the newest complete stored healing checkpoint, kept beside training\'s, to the weights of an uninterrupted heal', async () => {
    const { model, pairs } = await tinyLlamaPairs(fresh('pairs'), 1);
    try {
      const heal = (dir: string, stored?: CheckpointSync, onStep?: (step: number) => void) =>
        healReplacement(tinyHealingJob(model, pairs, { checkpoints: { dir, key: 'same', every: 3, onSaved: stored && ((step, at) => stored.saved(step, at)) }, onProgress: (p) => onStep?.(p.step) }));
      const uninterrupted = await heal(fresh('heal'));

      const store = s3.store(BUCKET, 'heal');
      const training = new StoredCheckpoints(store, { prefix: 'plans/h1/checkpoints/', log });
      const first = training.beside('healing');
      // A crash (not a cancellation) during step 8: the periodic checkpoints of steps 3 and 6 are all there is.
      await expect(heal(fresh('heal'), first, (step) => { if (step === 8) throw new Error('killed'); })).rejects.toThrow('killed');
      await training.flush(); // the plan's one flush waits for healing's uploads too
      expect((await first.list()).map((c) => c.manifest.step)).toEqual([6, 3]);
      expect(await keys(store, 'plans/h1/checkpoints/')).toEqual([]);
      expect((await keys(store, 'plans/h1/healing/')).length).toBeGreaterThan(0);
      // Newer, but half-written: its manifest never went up.
      await store.put('plans/h1/healing/0000000009-1-aaaaaa/state.json', Buffer.from('{"step": 9}'));

      const otherDisk = fresh('heal');
      const second = new StoredCheckpoints(store, { prefix: 'plans/h1/checkpoints/', log }).beside('healing');
      expect(await second.restore(join(otherDisk, 'checkpoint'))).toMatchObject({ step: 6, from: expect.stringContaining('/plans/h1/healing/0000000006-') });
      const resumed = await heal(otherDisk, second);
      await second.flush();
      expect(resumed.resumedFromStep).toBe(6);
      expect({ ...resumed, params: null, resumedFromStep: null }).toEqual({ ...uninterrupted, params: null });
      expect(largestDifference(resumed.params, uninterrupted.params)).toBeLessThanOrEqual(1e-6);
    } finally {
      pairs.close();
    }
  });
});

describe('sweeps in the object store', () => {
  it('a sweep stopped after its first candidate resumes on a fresh disk without training that candidate again, to the figures of an uninterrupted sweep', async () => {
    const dataDir = fresh('data');
    mkdirSync(dataDir);
    const random = seededRandom(11);
    const lines = Array.from({ length: 8 }, () => JSON.stringify({ input_ids: Array.from({ length: 8 }, () => Math.floor((random() + 1) * 32)) }));
    writeFileSync(join(dataDir, 'calibration.jsonl'), `${lines.join('\n')}\n`);
    const plan = await testLocalPlan({
      model: writeTinyModel('llama', { seed: 7 }),
      calibration: { source: join(dataDir, 'calibration.jsonl'), samples: 8, seqLen: 8 },
      training: { batchSize: 2, learningRate: 1e-2, minLearningRate: 1e-3, validationFraction: 0.25, seed: 1, minSteps: 6, checkpointEvery: 2 },
      sweep: { blockSizes: [1], topStarts: 2, replacements: ['SWIGLU'], iterative: false },
    });
    const sweepOf = async (outcome: Promise<PlanOutcome>) => {
      const done = await outcome;
      if (!('sweep' in done)) throw new Error('expected a sweep outcome');
      return done.sweep;
    };
    const reference = await sweepOf(runPlan(plan, { workDir: fresh('work'), outDir: fresh('out'), onEvent: () => {} }));
    const [firstId, secondId] = reference.candidates.map((c) => c.id);
    expect(reference.candidates).toHaveLength(2);
    for (const c of reference.candidates) expect(c).toMatchObject({ status: 'DONE', trainingLoss: expect.any(Number), validationLoss: expect.any(Number) }); // no perplexity: the tiny model has no tokenizer

    // Stopped (as a worker told to stop) once the second candidate starts.
    const store = s3.store(BUCKET, 'sweep');
    const prefix = 'plans/s1/checkpoints/';
    const controller = new AbortController();
    const stopped = runPlan(plan, {
      workDir: fresh('work'),
      outDir: fresh('out'),
      signal: controller.signal,
      checkpoints: new StoredCheckpoints(store, { prefix, log }),
      onEvent: (e) => e.candidateId === secondId && controller.abort(),
    });
    expect(await failure(stopped)).toMatchObject({ code: 'CANCELLED' });
    const storedFirst = await new StoredCheckpoints(store, { prefix: `plans/s1/candidates/${firstId}/` }).list();
    expect(storedFirst).toHaveLength(1); // stored as it finished, flushed before the run ended
    expect(storedFirst[0].manifest.files.map((f) => f.name)).toEqual(['candidate.json', 'replacement.safetensors']);
    expect(await keys(store, `plans/s1/candidates/${secondId}/`)).toEqual([]);
    // A half-written second candidate (its manifest never went up) is not taken for a finished one.
    await store.put(`plans/s1/candidates/${secondId}/0000000000-1-aaaaaa/candidate.json`, Buffer.from('{"result": {}}'));

    const events: PlanEvent[] = [];
    const resumed = await sweepOf(runPlan(plan, { workDir: fresh('work'), outDir: fresh('out'), checkpoints: new StoredCheckpoints(store, { prefix, log }), onEvent: (e) => events.push(e) }));
    expect(events.some((e) => e.message === `candidate ${firstId} finished before: restored from s3://${BUCKET}/sweep/plans/s1/candidates/${firstId}/${storedFirst[0].id}`)).toBe(true);
    expect(events.filter((e) => e.candidateId === firstId)).toEqual([]); // not trained, assembled or evaluated again
    expect(events.some((e) => e.candidateId === secondId && e.step !== undefined)).toBe(true);
    expect(resumed.candidates).toEqual(reference.candidates);
  });
});

describe('outputs in the object store', () => {
  it('publishes every file with the entry points and the listing last, and removes what it put when an upload fails', async () => {
    const dir = fresh('out');
    mkdirSync(dir);
    const names = ['model.safetensors', 'config.json', 'streamline.json', 'importance.json', 'stability.json'];
    for (const name of names) writeFileSync(join(dir, name), `content of ${name}`);
    const store = s3.store(BUCKET, 'pub');
    await store.put('outputs/x/model-00002-of-00002.safetensors', Buffer.from('left by an earlier attempt'));

    let puts = 0;
    const failing = new Proxy(store, {
      get(target, prop) {
        if (prop === 'put') return (...args: Parameters<ObjectStore['put']>) => (++puts === 3 ? Promise.reject(new EngineError('STORAGE', 'injected failure')) : target.put(...args));
        const value = Reflect.get(target, prop, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    expect(await failure(publishOutputs(failing, 'outputs/x/', dir))).toMatchObject({ message: 'injected failure' });
    expect(await keys(store, 'outputs/x/')).toEqual(['outputs/x/model-00002-of-00002.safetensors']); // nothing of this attempt

    const before = s3.requests.length;
    expect(await publishOutputs(store, 'outputs/x/', dir, log)).toBe(`s3://${BUCKET}/pub/outputs/x`);
    expect(await keys(store, 'outputs/x/')).toEqual([...names, OUTPUT_MANIFEST].map((n) => `outputs/x/${n}`).sort()); // the stray is gone
    const order = s3.requests.slice(before).filter((r) => r.startsWith('PUT ')).map((r) => r.split('?')[0].split('/').pop());
    expect(order.slice(-3)).toEqual(['streamline.json', 'config.json', OUTPUT_MANIFEST]);
    const listing = JSON.parse((await readObject(store, `outputs/x/${OUTPUT_MANIFEST}`)).toString()) as OutputManifest;
    expect(listing.files.find((f) => f.name === 'config.json')!.sha256).toBe(createHash('sha256').update('content of config.json').digest('hex'));
  });
});

async function work_(transport: QueueTransport, dataDir: string, store: ObjectStore, until: () => boolean, onEvent?: (stop: () => void, e: PlanEvent) => void) {
  const controller = new AbortController();
  transport.onEvent = (_id, e) => onEvent?.(() => controller.abort(), e);
  const worker = runWorker({ transport, dataDir, store, storageEnv: s3.env, signal: controller.signal, pollMs: 20, heartbeatMs: 50, log });
  while (!until() && !controller.signal.aborted) await new Promise((r) => setTimeout(r, 20));
  controller.abort();
  await worker;
}

/** A SWIGLU plan of the uploaded tiny model and data, checkpointing every 4 steps. */
function swigluPlan(inputs: { model: string; data: string }, minSteps: number): TestPlan {
  return {
    model: inputs.model,
    layersToPrune: 1,
    replacement: 'SWIGLU',
    dryRun: false,
    calibration: { source: inputs.data, samples: 8, seqLen: 8 },
    training: { batchSize: 2, learningRate: 1e-2, minLearningRate: 1e-3, weightDecay: 1e-3, gradientAccumulation: 1, maxGradNorm: 5, validationFraction: 0.25, seed: 1, minSteps, checkpointEvery: 4 },
  };
}

describe('engine worker with S3 storage', () => {
  it('runs a plan from s3:// inputs, resumes it on another disk from the stored checkpoint, and publishes the same weights as an uninterrupted run', async () => {
    const inputs = await uploadInputs('plans-in');
    const plan = swigluPlan(inputs, 1500);
    // minSteps: long enough (seconds) that training is still running when the worker's progress batch
    // (sent every 500 ms) shows step 10 and the test stops it; 200 steps ran out before the first batch.
    const store = s3.store(BUCKET, 'run', log);

    const reference = new QueueTransport();
    reference.queue.push({ planId: 'ref', config: testAssignment(plan) });
    const cacheDisk = fresh('disk');
    await work_(reference, cacheDisk, store, () => reference.finished.has('ref'));
    const done = reference.finished.get('ref')!;
    expect(done.error).toBeUndefined();
    expect(done.result!.outputUri).toBe(`s3://${BUCKET}/run/outputs/ref`);
    const listing = JSON.parse((await readObject(store, `outputs/ref/${OUTPUT_MANIFEST}`)).toString()) as OutputManifest;
    expect(listing.files.map((f) => f.name)).toEqual(expect.arrayContaining(['config.json', 'model.safetensors', 'streamline.json', 'importance.json', 'stability.json']));
    expect(listing.files.slice(-2).map((f) => f.name)).toEqual(['streamline.json', 'config.json']);
    expect(await keys(store, 'plans/ref/')).toEqual([]); // checkpoints go once the output is out
    const manifest = JSON.parse((await readObject(store, 'outputs/ref/streamline.json')).toString());
    expect(manifest.source.uri).toBe(`${inputs.model}/`);

    // The output loads back through the model cache.
    const output = await fetchModel(done.result!.outputUri!, fresh('read-back'), undefined, { settings: { env: s3.env } });
    expect(loadModel(output.path).config.numLayers).toBe(3); // SWIGLU: one layer out, one in

    // A second plan of the same model on the same disk reuses the cached inputs.
    const again = new QueueTransport();
    again.queue.push({ planId: 'again', config: testAssignment({ ...plan, replacement: 'NONE' }) });
    await work_(again, cacheDisk, store, () => again.finished.has('again'));
    const messages = again.events.get('again')!.map((e) => e.message);
    expect(messages).toContain(`using the cached copy of ${inputs.model}/`);
    expect(messages).toContain(`using the cached copy of ${inputs.data}`);

    // Stopped mid-training on one disk, resumed on another.
    const transport = new QueueTransport();
    transport.queue.push({ planId: 'p', config: testAssignment(plan) });
    await work_(transport, fresh('disk'), store, () => false, (stop, e) => {
      if (e.step !== undefined && e.step >= 10) stop();
    });
    expect(transport.released).toEqual(['p']);
    const checkpoints = await new StoredCheckpoints(store, { prefix: 'plans/p/checkpoints/' }).list();
    expect(checkpoints[0].manifest.step).toBeGreaterThanOrEqual(10);
    transport.queue.push({ planId: 'p', config: testAssignment(plan) });
    await work_(transport, fresh('disk'), store, () => transport.finished.has('p'));
    const resumed = transport.finished.get('p')!.result!;
    expect('pruned' in resumed.outcome && resumed.outcome.pruned.training!.resumedFromStep).toBe(checkpoints[0].manifest.step);
    const sha = async (planId: string) => (JSON.parse((await readObject(store, `outputs/${planId}/${OUTPUT_MANIFEST}`)).toString()) as OutputManifest).files.find((f) => f.name === 'model.safetensors')!.sha256;
    expect(await sha('p')).toBe(await sha('ref'));
  });

  it('resumes a plan stopped while healing on another disk from its stored healing checkpoint, to the weights of an uninterrupted run', async () => {
    const inputs = await uploadInputs('heal-in');
    const plan: TestPlan = {
      ...swigluPlan(inputs, 12),
      // Long enough (seconds) to be still healing when the progress batch showing step 10 arrives; no
      // validation split, so no early stopping.
      healing: { steps: 1500, learningRate: 1e-4, validationFraction: 0, patience: 1 },
    };
    const store = s3.store(BUCKET, 'heal-run', log);
    const reference = new QueueTransport();
    reference.queue.push({ planId: 'ref', config: testAssignment(plan) });
    await work_(reference, fresh('disk'), store, () => reference.finished.has('ref'));
    expect(reference.finished.get('ref')!.error).toBeUndefined();

    const transport = new QueueTransport();
    transport.queue.push({ planId: 'h', config: testAssignment(plan) });
    await work_(transport, fresh('disk'), store, () => false, (stop, e) => {
      if (e.stage === 'HEALING' && e.step !== undefined && e.step >= 10) stop();
    });
    expect(transport.released).toEqual(['h']);
    const healing = await new StoredCheckpoints(store, { prefix: 'plans/h/healing/' }).list();
    expect(healing[0].manifest.step).toBeGreaterThanOrEqual(10); // saved when stopped, stored before the release
    transport.queue.push({ planId: 'h', config: testAssignment(plan) });
    await work_(transport, fresh('disk'), store, () => transport.finished.has('h'));
    const messages = transport.events.get('h')!.map((e) => e.message);
    expect(messages).toContain(`healing resumed from its checkpoint of step ${healing[0].manifest.step}`);
    const healingSteps = transport.events.get('h')!.filter((e) => e.stage === 'HEALING' && e.step !== undefined).map((e) => e.step!);
    expect(healingSteps.filter((step) => step <= healing[0].manifest.step)).toHaveLength(healing[0].manifest.step); // the first run's steps only, none again
    expect(await keys(store, 'plans/h/')).toEqual([]); // healing's checkpoints go with training's once the output is out
    const sha = async (planId: string) => (JSON.parse((await readObject(store, `outputs/${planId}/${OUTPUT_MANIFEST}`)).toString()) as OutputManifest).files.find((f) => f.name === 'model.safetensors')!.sha256;
    expect(await sha('h')).toBe(await sha('ref'));
  });
});

