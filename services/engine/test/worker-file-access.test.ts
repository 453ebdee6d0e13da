/**
 * A worker checks a plan's local inputs again when it opens them (the plan's `fileAccess`, the gateway's
 * STREAMLINE_FILE_ROOTS): a file that passed the gateway's check and was then swapped for a symlink to a
 * file outside the roots is refused, the plan fails with a message that says so, and the worker goes on
 * serving the next plan.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EngineError } from '../src/errors.js';
import type { FileAccess, PlanAssignment } from '../src/contract/index.js';
import { checkConfinedModel, checkConfinedPath } from '../src/storage/file-confinement.js';
import { withConfinedReads } from '../src/formats/file-reads.js';
import { runPlan } from '../src/plan-runner.js';
import { localizePlanInputs } from '../src/worker/plan-inputs.js';
import { runWorker } from '../src/worker/worker.js';
import { testAssignment } from './fixtures/plan-spec.js';
import { loadTokenizer } from '../src/tokenizers/tokenizer.js';
import { readDataSamples } from '../src/data/calibration.js';
import { readMultipleChoiceItems } from '../src/evaluation/multiple-choice.js';
import { QueueTransport } from './fixtures/queue-transport.js';
import { writeTinyModel } from './fixtures/tiny-models.js';

const work = mkdtempSync(join(tmpdir(), 'streamline-file-access-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A root tenants may read from, and a secret outside it. */
const root = join(work, 'root');
mkdirSync(root);
const outside = join(work, 'outside');
mkdirSync(outside);
const secret = join(outside, 'secret.jsonl');
writeFileSync(secret, `${JSON.stringify({ input_ids: [1, 2, 3, 4, 5, 6, 7, 8] })}\n`);

function calibrationFile(name: string): string {
  const path = join(root, name);
  writeFileSync(path, Array.from({ length: 6 }, (_, i) => JSON.stringify({ input_ids: [1, 2 + i, 7, 9, 11, 3, 5, 8] })).join('\n'));
  return path;
}

/** A tiny model folder moved under the root. */
function modelUnderRoot(name: string): string {
  const dir = join(root, name);
  renameSync(writeTinyModel('llama'), dir);
  return dir;
}

function plan(model: string, calibration: string, fileAccess: FileAccess | null): PlanAssignment {
  return testAssignment({
    model,
    layersToPrune: 1,
    replacement: 'LAYER',
    dryRun: false,
    calibration: { source: calibration, samples: 6, seqLen: 8 },
    training: { batchSize: 1, learningRate: 1e-2, minLearningRate: 1e-3, weightDecay: 1e-3, gradientAccumulation: 1, maxGradNorm: 5, validationFraction: 0.2, seed: 0, minSteps: 5, checkpointEvery: 1000 },
    fileAccess,
  });
}

const ACCESS: FileAccess = { roots: [root], denied: [], unconfined: [] };
const localize = (assignment: PlanAssignment, dataDir = join(work, 'worker-data')) => localizePlanInputs(assignment, { cacheDir: join(dataDir, 'cache'), denied: [dataDir] });

async function refused(config: PlanAssignment, dataDir?: string): Promise<EngineError> {
  const error = await localize(config, dataDir).then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(EngineError);
  return error as EngineError;
}

describe('worker: local plan inputs re-checked at open time', () => {
  it('refuses a calibration file swapped for a symlink to a file outside the roots after the gateway checked it', async () => {
    const model = modelUnderRoot('model-a');
    const data = calibrationFile('data-a.jsonl');
    // the gateway's check, when the plan was created
    expect(checkConfinedPath(data, ACCESS).status).toBe('inside');
    expect(checkConfinedModel(model, ACCESS).status).toBe('inside');
    expect((await localize(plan(model, data, ACCESS))).plan.files.get(data)).toBe(data);
    // then the file is swapped for a symlink pointing outside
    rmSync(data);
    symlinkSync(secret, data);
    const error = await refused(plan(model, data, ACCESS));
    expect(error.code).toBe('BAD_INPUT');
    expect(error.message).toContain('STREAMLINE_FILE_ROOTS');
    expect(error.message).toContain('the calibration set');
    expect(error.message).not.toContain('input_ids'); // nothing read from the file
  });

  it('refuses a model folder whose weights were swapped for a symlink outside the roots', async () => {
    const model = modelUnderRoot('model-b');
    const data = calibrationFile('data-b.jsonl');
    const weights = readdirSync(model).find((name) => name.endsWith('.safetensors'))!;
    renameSync(join(model, weights), join(outside, weights));
    symlinkSync(join(outside, weights), join(model, weights));
    const error = await refused(plan(model, data, ACCESS));
    expect(error.message).toMatch(/^the model .* is not under the directories/);
  });

  it("refuses a path into the worker's own data directory, and a symlinked directory on the way", async () => {
    const dataDir = join(root, 'worker-data'); // a careless root that holds the worker's data
    mkdirSync(dataDir, { recursive: true });
    const inData = join(dataDir, 'other-tenant.jsonl');
    writeFileSync(inData, '{"input_ids":[1,2,3,4,5,6,7,8]}\n');
    const model = modelUnderRoot('model-c');
    expect((await refused(plan(model, inData, ACCESS), dataDir)).message).toContain('STREAMLINE_FILE_ROOTS');
    symlinkSync(outside, join(root, 'linked-dir'));
    expect((await refused(plan(model, join(root, 'linked-dir', 'secret.jsonl'), ACCESS))).message).toContain('STREAMLINE_FILE_ROOTS');
  });

  it('lets through what the gateway vouches for (unconfined) and plans without fileAccess (the engine CLI)', async () => {
    const model = modelUnderRoot('model-d');
    expect((await localize(plan(model, secret, { ...ACCESS, unconfined: [secret] }))).plan.files.get(secret)).toBe(secret);
    expect((await localize(plan(model, secret, null))).plan.files.get(secret)).toBe(secret);
  });

  it('fails the plan with a clear message and keeps serving: the next plan succeeds', async () => {
    const model = modelUnderRoot('model-e');
    const swapped = calibrationFile('data-e.jsonl');
    rmSync(swapped);
    symlinkSync(secret, swapped);
    const transport = new QueueTransport();
    transport.queue.push({ planId: 'swapped', config: plan(model, swapped, ACCESS) }, { planId: 'fine', config: plan(model, calibrationFile('data-f.jsonl'), ACCESS) });
    const controller = new AbortController();
    const worker = runWorker({ transport, dataDir: join(work, 'worker-e'), signal: controller.signal, pollMs: 20, heartbeatMs: 50 });
    while (!transport.finished.has('fine')) await new Promise((r) => setTimeout(r, 20));
    controller.abort();
    await worker;
    expect(transport.finished.get('swapped')!.error).toMatch(/the calibration set .*data-e\.jsonl is not under the directories this gateway reads file:\/\/ sources from \(STREAMLINE_FILE_ROOTS\)/);
    expect(transport.finished.get('fine')!.error).toBeUndefined();
    expect(transport.finished.get('fine')!.result!.outputUri).toMatch(/outputs\/fine$/);
  });

  it('checks again what the engine opens after the worker checked it: a shard swapped in between is refused by its descriptor', async () => {
    const model = modelUnderRoot('model-g');
    const data = calibrationFile('data-g.jsonl');
    const inputs = await localize({ ...plan(model, data, ACCESS), spec: { ...plan(model, data, ACCESS).spec, dryRun: true } });
    expect(inputs.confinement?.inputs).toEqual([model, data]);
    // between the worker's check and the engine's open: the weights become a symlink to an identical copy
    // outside the roots (so that, followed, they would load and the plan would succeed)
    const weights = readdirSync(model).find((name) => name.endsWith('.safetensors'))!;
    copyFileSync(join(model, weights), join(outside, `copy-${weights}`));
    rmSync(join(model, weights));
    symlinkSync(join(outside, `copy-${weights}`), join(model, weights));
    const run = () => runPlan(inputs.plan, { workDir: join(work, 'run-g'), outDir: join(work, 'out-g'), onEvent: () => {} });
    await expect(run()).resolves.toMatchObject({ dryRun: true }); // the window the check by name leaves
    const error = await withConfinedReads(inputs.confinement!, run).then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(EngineError);
    expect((error as EngineError).code).toBe('BAD_INPUT');
    expect((error as EngineError).message).toBe(`the file ${join(model, weights)} is not under the directories this gateway reads file:// sources from (STREAMLINE_FILE_ROOTS) — refused when the worker opened it (was it replaced by a symlink after the plan was created?)`);
  });

  it('refuses by descriptor a data file, a task file and a tokenizer swapped for symlinks outside; files outside the checked inputs are not checked', async () => {
    const confinement = (await localize(plan(modelUnderRoot('model-h'), calibrationFile('data-h.jsonl'), ACCESS))).confinement!;
    const swapped = (name: string, target: string) => {
      const path = join(root, name);
      symlinkSync(target, path);
      return path;
    };
    writeFileSync(join(outside, 'task.jsonl'), '{"context":"a","choices":["b","c"],"label":0}\n');
    const data = swapped('swapped-data.jsonl', secret);
    const task = swapped('swapped-task.jsonl', join(outside, 'task.jsonl'));
    const tokenizer = swapped('swapped-tokenizer.json', join(outside, 'tokenizer.json'));
    writeFileSync(join(outside, 'tokenizer.json'), '{}');
    const confined = { ...confinement, inputs: [data, task, tokenizer] };
    const inside = <T>(task: () => Promise<T>) => withConfinedReads(confined, task).then(() => null, (e: unknown) => (e as Error).message);
    expect(await inside(() => readDataSamples(data, null, { samples: 1, seqLen: 4, vocabSize: 32 }))).toMatch(/swapped-data\.jsonl is not under the directories/);
    expect(await inside(async () => { for await (const item of readMultipleChoiceItems(task)) void item; })).toMatch(/swapped-task\.jsonl is not under the directories/);
    expect(await inside(() => loadTokenizer(tokenizer))).toMatch(/swapped-tokenizer\.json is not under the directories/);
    // the same reads outside the worker's scope follow the links (the engine CLI's local use)
    expect((await readDataSamples(data, null, { samples: 1, seqLen: 4, vocabSize: 32 })).samples).toHaveLength(1);
    // a path that is not one of the checked inputs (the worker's own work files) is read as it is
    expect(await withConfinedReads({ ...confinement, inputs: [join(root, 'elsewhere')] }, () => readDataSamples(data, null, { samples: 1, seqLen: 4, vocabSize: 32 })).then((r) => r.samples.length)).toBe(1);
  });
});
