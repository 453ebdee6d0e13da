/**
 * The whole flow with S3 configured, against a real s3rver on loopback and real worker processes:
 * stories260K registered from s3:// (inspected from its headers), calibration data from s3://, a SWIGLU
 * prune whose output is read back from the bucket and loaded by the engine; a worker killed between
 * checkpoints and the plan finished on a fresh disk from the checkpoint in S3 (a half-written newer one
 * ignored) to the same weights as the uninterrupted run; a sweep's worker killed after its first
 * candidate and the sweep finished on a fresh disk with that candidate restored from S3, not trained
 * again; precise errors for missing or denied sources;
 * and the fake credentials in no API answer and no gateway or worker log line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchModel, loadModel, readLlama2cCheckpoint, readObject, writeHfFolder, type ObjectStore, type OutputManifest } from '@streamline/engine';
import { S3_SECRETS, startS3Server, uploadFolder, type S3Server } from '@streamline/testing/s3-server';
import { graphql, TEST_SOURCES, useGateways, type GraphQLResponse } from './fixtures/gateway.js';
import { runWithShared, SHARED } from './fixtures/shared.js';
import { connect, subscribe } from './fixtures/subscriptions.js';
import { CREATE, PLAN, PROGRESS, REGISTER } from './fixtures/workers.js';

const gateways = useGateways();
const WORKER_BIN = join(dirname(createRequire(import.meta.url).resolve('@streamline/engine/package.json')), 'bin', 'streamline-worker.js');
const BUCKET = 'streamline';
const STORAGE = `s3://${BUCKET}/sl`;
const MODEL_URI = `s3://${BUCKET}/models/stories260K/`;
const DATA_URI = `s3://${BUCKET}/data/tinystories_val_excerpt.txt`;
/** Tenants may name models and data under these prefixes (STREAMLINE_S3_SOURCES); the storage prefix sl/ is not among them. */
const S3_TEST_SOURCES = { ...TEST_SOURCES, s3Sources: [`s3://${BUCKET}/models/`, `s3://${BUCKET}/data/`, 's3://no-such-bucket/models/'] };

let s3: S3Server;
let store: ObjectStore; // the gateway's storage prefix, for reading outputs and checkpoints back
const scratch = mkdtempSync(join(tmpdir(), 'streamline-s3-flow-'));
/** Every API answer and every gateway and worker log line of these tests. */
const answers: string[] = [];
const logs: string[] = [];

beforeAll(async () => {
  if (!runWithShared) return;
  s3 = await startS3Server([BUCKET]);
  // stories260K as a Hugging Face folder (what object storage holds), and the calibration text
  const folder = join(scratch, 'stories260K-hf');
  const { config, weights } = readLlama2cCheckpoint(join(SHARED, 'models/stories260K/stories260K.bin'));
  writeHfFolder(folder, { config, weights, dtype: 'F32' });
  copyFileSync(join(SHARED, 'models/stories260K/tok512.bin'), join(folder, 'tokenizer.bin'));
  const root = s3.store(BUCKET);
  await uploadFolder(root, 'models/stories260K', folder);
  await root.put('data/tinystories_val_excerpt.txt', { path: join(SHARED, 'data/text/tinystories_val_excerpt.txt') });
  store = s3.store(BUCKET, 'sl');
});

afterAll(async () => {
  await s3?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

/** A GraphQL request whose answer is kept for the credentials check. */
async function ask<T = any>(url: string, query: string, variables: Record<string, unknown> = {}): Promise<GraphQLResponse<T>> {
  const response = await graphql<T>(url, query, variables);
  answers.push(JSON.stringify(response));
  return response;
}
async function ok<T = any>(url: string, query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const response = await ask<T>(url, query, variables);
  if (response.errors?.length) throw new Error(`unexpected errors: ${JSON.stringify(response.errors)}`);
  return response.data!;
}
async function refused(url: string, query: string, variables: Record<string, unknown>) {
  const response = await ask(url, query, variables);
  if (!response.errors?.length) throw new Error(`expected an error, got ${JSON.stringify(response.data)}`);
  return { message: response.errors[0].message, code: response.errors[0].extensions?.code };
}

async function waitFor(url: string, id: string, statuses: string[], timeoutMs = 240_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { plan } = await ok(url, PLAN, { id });
    if (statuses.includes(plan.status)) return plan;
    if (Date.now() > deadline) throw new Error(`plan ${id} still ${plan.status} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** A worker process on its own disk, storage and credentials from its environment, its log captured. */
function startWorker(url: string, token: string, id: string): ChildProcess {
  const dataDir = mkdtempSync(join(scratch, `${id}-`));
  const child = spawn(process.execPath, [WORKER_BIN], {
    env: { ...process.env, ...s3.env, STREAMLINE_STORAGE: STORAGE, STREAMLINE_GATEWAY_URL: url, STREAMLINE_WORKER_TOKEN: token, STREAMLINE_DATA_DIR: dataDir, STREAMLINE_WORKER_ID: id },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  for (const stream of [child.stdout!, child.stderr!]) stream.setEncoding('utf8').on('data', (chunk: string) => logs.push(...chunk.split('\n').filter(Boolean)));
  return child;
}
async function stop(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM') {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill(signal);
  await exited;
}

async function startGateway(leaseMs?: number) {
  return gateways.start({ storage: STORAGE, storageEnv: { ...s3.env }, sources: S3_TEST_SOURCES, leaseMs, log: (line) => void logs.push(line) });
}

const plan = (modelId: string) => ({
  modelId,
  layersToPrune: 2,
  replacement: 'SWIGLU',
  calibration: { source: DATA_URI, samples: 8, seqLen: 64 },
  training: { epochs: 200, batchSize: 4, seed: 7 }, // long enough to kill the worker between checkpoints (the ONNX trainer is fast)
});

async function outputListing(planId: string): Promise<OutputManifest> {
  return JSON.parse((await readObject(store, `outputs/${planId}/streamline-output.json`)).toString());
}
const weightsSha = (listing: OutputManifest) => listing.files.find((f) => f.name === 'model.safetensors')!.sha256;

let reference: OutputManifest | null = null;

describe.runIf(runWithShared)('plans with S3 storage (s3rver)', () => {
  it('registers stories260K from s3://, prunes it with a real worker, and the output in S3 loads in the engine', async () => {
    const gateway = await startGateway();
    const before = s3.requests.length;
    const { registerModel: model } = await ok(gateway.url, `mutation R($input: RegisterModelInput!) { registerModel(input: $input) { id source architecture numLayers hiddenSize numParameters status } }`, {
      input: { name: 'stories260K', source: MODEL_URI },
    });
    expect(model).toMatchObject({ source: MODEL_URI, architecture: 'llama', numLayers: 5, hiddenSize: 64, numParameters: 260032, status: 'READY' });
    // inspected from config.json and the safetensors header: no whole-object read of the weights
    const weightReads = s3.requests.slice(before).filter((r) => r.startsWith('GET ') && r.includes('model.safetensors'));
    expect(weightReads.length).toBeGreaterThan(0);
    expect(weightReads.length).toBeLessThanOrEqual(4); // ranged: the length, then the header (per inspection)

    const { createPruningPlan } = await ok(gateway.url, CREATE, { input: plan(model.id) });
    const client = connect(gateway.wsUrl);
    const progress = subscribe(client, PROGRESS, { planId: createPruningPlan.id }, (d) => d.planProgress);
    const worker = startWorker(gateway.url, gateway.workerToken, 'w-flow');
    try {
      const events = await progress.completed;
      answers.push(JSON.stringify(events));
      const done = await waitFor(gateway.url, createPruningPlan.id, ['SUCCEEDED', 'FAILED']);
      expect(done.error).toBeNull();
      expect(done).toMatchObject({ status: 'SUCCEEDED', removedLayers: [2, 3], outputUri: `${STORAGE}/outputs/${createPruningPlan.id}` });
      expect(events.some((e) => e.message.includes(`fetching the model from ${MODEL_URI}`))).toBe(true);

      reference = await outputListing(createPruningPlan.id);
      expect(reference.files.map((f) => f.name)).toEqual(expect.arrayContaining(['config.json', 'model.safetensors', 'streamline.json', 'tokenizer.bin', 'importance.json', 'stability.json']));
      expect(JSON.parse((await readObject(store, `outputs/${createPruningPlan.id}/stability.json`)).toString()).hiddenStateCosine).toBeGreaterThan(0);
      const fetched = await fetchModel(done.outputUri, join(scratch, 'read-back'), undefined, { settings: { env: s3.env } });
      const pruned = loadModel(fetched.path);
      expect(pruned.config.numLayers).toBe(4); // 2 removed, 1 SWIGLU layer in
      expect(pruned.numParameters).toBe(done.prunedParameters);
      // the plan's checkpoints are removed once its output is out
      const left: string[] = [];
      for await (const item of store.list(`plans/${createPruningPlan.id}/`)) left.push(item.key);
      expect(left).toEqual([]);

      // the output is re-used by plan id: its s3:// location is the gateway's storage, not an allowed source prefix
      expect(await refused(gateway.url, REGISTER, { input: { name: 'by-path', source: `${done.outputUri}/` } })).toMatchObject({ code: 'BAD_USER_INPUT', message: expect.stringContaining('STREAMLINE_S3_SOURCES') });
      const { registerModel: reused } = await ok(gateway.url, `mutation R($input: RegisterModelInput!) { registerModel(input: $input) { source numLayers status } }`, {
        input: { name: 'pruned', fromPlan: createPruningPlan.id },
      });
      expect(reused).toMatchObject({ source: done.outputUri, numLayers: 4, status: 'READY' });
    } finally {
      client.dispose();
      await stop(worker);
    }
  });

  it('finishes a plan whose worker was killed between checkpoints on a fresh disk, from the newest complete checkpoint in S3, to the same weights', { timeout: 300_000 }, async () => {
    expect(reference).not.toBeNull(); // the uninterrupted run of the same plan, above
    const gateway = await startGateway(1500);
    const { registerModel: model } = await ok(gateway.url, REGISTER, { input: { name: 'stories260K', source: MODEL_URI } });
    const { createPruningPlan: created } = await ok(gateway.url, CREATE, { input: plan(model.id) });
    const client = connect(gateway.wsUrl);
    const progress = subscribe(client, PROGRESS, { planId: created.id }, (d) => d.planProgress);
    const prefix = `plans/${created.id}/checkpoints/`;
    const first = startWorker(gateway.url, gateway.workerToken, 'w-first');
    let second: ChildProcess | null = null;
    try {
      // Kill it once a checkpoint is complete in S3 and training has gone past it.
      let storedStep = 0;
      for (;;) {
        await new Promise((r) => setTimeout(r, 50));
        for await (const item of store.list(prefix)) if (item.key.endsWith('/manifest.json')) storedStep = Math.max(storedStep, Number(item.key.slice(prefix.length).split('-')[0]));
        const lastStep = Math.max(0, ...progress.received.map((e) => e.step ?? 0));
        if (storedStep >= 2 && lastStep > storedStep) break;
        if (progress.received.some((e) => e.stage !== 'TRAINING' && e.stage !== 'LOADING' && e.stage !== 'PROFILING' && e.stage !== 'COLLECTING')) {
          throw new Error('training ended before the worker could be killed between checkpoints (machine too slow to observe it?)');
        }
      }
      first.kill('SIGKILL');
      await new Promise((r) => first.once('exit', r));
      // A newer checkpoint whose upload never finished: its manifest is missing.
      await store.put(`${prefix}9999999999-1-halfwr/state.json`, Buffer.from('{"step": 9999999999}'));

      second = startWorker(gateway.url, gateway.workerToken, 'w-second');
      const events = await progress.completed;
      answers.push(JSON.stringify(events));
      const done = await waitFor(gateway.url, created.id, ['SUCCEEDED', 'FAILED']);
      expect(done.error).toBeNull();
      expect(done.status).toBe('SUCCEEDED');
      const resumed = events.find((e) => e.message.startsWith('resuming from the checkpoint of step'));
      expect(resumed?.message).toMatch(new RegExp(`step (\\d+) \\(${STORAGE}/${prefix}`));
      expect(Number(/step (\d+)/.exec(resumed!.message)![1])).toBeGreaterThanOrEqual(storedStep);
      expect(logs.some((line) => line.includes('[worker w-second]') && line.includes('restored step'))).toBe(true);
      expect(weightsSha(await outputListing(created.id))).toBe(weightsSha(reference!));
    } finally {
      client.dispose();
      await stop(first, 'SIGKILL');
      if (second) await stop(second);
    }
  });

  it('finishes a sweep whose worker was killed after its first candidate on a fresh disk, restoring that candidate from S3 instead of training it again', { timeout: 300_000 }, async () => {
    const gateway = await startGateway(1500);
    const { registerModel: model } = await ok(gateway.url, REGISTER, { input: { name: 'stories260K', source: MODEL_URI } });
    const { createPruningPlan: created } = await ok(gateway.url, CREATE, {
      // minSteps: the second candidate trains long enough (seconds) for the worker to be killed during it.
      input: { modelId: model.id, calibration: { source: DATA_URI, samples: 8, seqLen: 64 }, training: { minSteps: 300, batchSize: 4, seed: 3, validationFraction: 0.25 }, sweep: { blockSizes: [1], topStarts: 2, replacements: ['LAYER'] } },
    });
    const CANDIDATES = `query C($id: ID!) { plan(id: $id) { candidates { id status trainingLoss validationLoss perplexity } } }`;
    const EVENTS = `query E($id: ID!, $after: Int) { plan(id: $id) { events(after: $after, limit: 500) { seq stage step message candidateId } } }`;
    type Event = { seq: number; stage: string; step: number | null; message: string; candidateId: string | null };
    const allEvents = async (): Promise<Event[]> => {
      const events: Event[] = [];
      for (;;) {
        const page: Event[] = (await ok(gateway.url, EVENTS, { id: created.id, after: events.at(-1)?.seq ?? 0 })).plan.events;
        if (page.length === 0) return events;
        events.push(...page);
      }
    };
    const prefix = `plans/${created.id}/candidates/`;
    const first = startWorker(gateway.url, gateway.workerToken, 'w-sweep-first');
    let second: ChildProcess | null = null;
    try {
      // Kill it once a finished candidate is complete in S3 (its manifest is up).
      let stored: string | null = null;
      const killBy = Date.now() + 60_000; // queued and claimed by then
      while (!stored) {
        await new Promise((r) => setTimeout(r, 50));
        for await (const item of store.list(prefix)) if (item.key.endsWith('/manifest.json')) stored = item.key;
        if (!stored && (await ok(gateway.url, PLAN, { id: created.id })).plan.status !== 'RUNNING' && Date.now() > killBy) {
          throw new Error('the sweep ended before its worker could be killed (machine too slow to observe it?)');
        }
      }
      first.kill('SIGKILL');
      await new Promise((r) => first.once('exit', r));
      const firstId = stored.slice(prefix.length).split('/')[0];
      const storedFigures = JSON.parse((await readObject(store, stored.replace(/manifest\.json$/, 'candidate.json'))).toString()).result;

      second = startWorker(gateway.url, gateway.workerToken, 'w-sweep-second');
      expect((await waitFor(gateway.url, created.id, ['SUCCEEDED', 'FAILED'])).error).toBeNull();
      const { plan } = await ok(gateway.url, CANDIDATES, { id: created.id });
      const events = await allEvents();
      const restore = events.find((e) => e.message.startsWith(`candidate ${firstId} finished before: restored from ${STORAGE}/${prefix}${firstId}/`));
      expect(restore).toBeDefined();
      // Nothing of that candidate after the restore: not trained, assembled or evaluated again.
      expect(events.filter((e) => e.seq > restore!.seq && e.candidateId === firstId)).toEqual([]);
      expect(plan.candidates).toHaveLength(2);
      expect(plan.candidates.find((c: { id: string }) => c.id === firstId)).toMatchObject({ status: 'DONE', trainingLoss: storedFigures.trainingLoss, perplexity: storedFigures.perplexity });
      expect(plan.candidates.every((c: { status: string }) => c.status === 'DONE')).toBe(true);
      const left: string[] = [];
      for await (const item of store.list(`plans/${created.id}/`)) left.push(item.key);
      expect(left).toEqual([]); // the stored candidates go with the checkpoints once the output is out
    } finally {
      await stop(first, 'SIGKILL');
      if (second) await stop(second);
    }
  });

  it('names missing buckets, keys and datasets, and denied access, by field, without the credentials', async () => {
    const gateway = await startGateway();
    const register = (source: string) => refused(gateway.url, REGISTER, { input: { name: 'x', source } });
    expect(await register(`s3://${BUCKET}/models/nothing-here/`)).toMatchObject({ code: 'NOT_FOUND', message: expect.stringMatching(/^input\.source: .*config\.json not found/) });
    expect(await register('s3://no-such-bucket/models/x/')).toMatchObject({ code: 'NOT_FOUND', message: expect.stringContaining("S3 bucket 'no-such-bucket' does not exist") });
    expect(await register(`s3://${BUCKET}/models/stories260K.bin`)).toMatchObject({ code: 'BAD_USER_INPUT', message: expect.stringContaining('Hugging Face folders') });
    // outside STREAMLINE_S3_SOURCES: another bucket, the storage prefix (own outputs go through fromPlan), a '..' escape
    for (const outside of ['s3://other-bucket/models/x/', `s3://${BUCKET}/sl/outputs/x/`, `s3://${BUCKET}/models/../sl/outputs/x/`, `s3://${BUCKET}/models-old/x/`]) {
      expect(await register(outside)).toMatchObject({ code: 'BAD_USER_INPUT', message: expect.stringContaining('STREAMLINE_S3_SOURCES') });
    }
    const { registerModel: model } = await ok(gateway.url, REGISTER, { input: { name: 's', source: MODEL_URI } });
    const missingData = await refused(gateway.url, CREATE, { input: { ...plan(model.id), calibration: { source: `s3://${BUCKET}/data/missing.txt` } } });
    expect(missingData).toMatchObject({ code: 'BAD_USER_INPUT', message: expect.stringMatching(/^input\.calibration\.source: .*missing\.txt/) });

    const denied = await gateways.start({ storage: STORAGE, storageEnv: { ...s3.env, AWS_ACCESS_KEY_ID: 'AKIASTREAMLINEDENIED' }, sources: S3_TEST_SOURCES, log: (line) => void logs.push(line) });
    const answer = await refused(denied.url, REGISTER, { input: { name: 'x', source: MODEL_URI } });
    expect(answer).toMatchObject({ code: 'BAD_USER_INPUT', message: expect.stringMatching(/^input\.source: access denied to s3:\/\/streamline\/models\/stories260K/) });
    expect(answer.message).not.toContain('AKIASTREAMLINEDENIED');
  });

  it('never shows the credentials in an API answer or a gateway or worker log line', () => {
    expect(answers.length).toBeGreaterThan(5);
    expect(logs.some((line) => line.includes('[worker w-flow]'))).toBe(true);
    for (const text of [...answers, ...logs]) for (const secret of [...S3_SECRETS, 'AKIASTREAMLINEDENIED']) expect(text).not.toContain(secret);
  });
});
