/**
 * The engine's side of plan hardening: bounds on a plan's settings checked before anything runs, empty
 * or blank data refused instead of "calibrating" on BOS tokens alone, each perplexity text's own
 * samples and seq-len honoured, and a cancelled or failed plan's work (directory and stored
 * checkpoints) removed — but not that of a plan another worker now holds.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCalibrationSamples } from '../src/data/calibration.js';
import { PLAN_DEFAULTS, type PlanEvent, type TrainingSpec } from '../src/contract/index.js';
import { runPlan } from '../src/plan-runner.js';
import { LocalObjectStore } from '../src/storage/local-store.js';
import { loadTokenizer } from '../src/tokenizers/tokenizer.js';
import { runWorker } from '../src/worker/worker.js';
import { testAssignment, testLocalPlan, type TestPlan } from './fixtures/plan-spec.js';
import { QueueTransport } from './fixtures/queue-transport.js';
import { STORIES_BIN, STORIES_TOKENIZER, runWithShared, sharedPath } from '@streamline/testing/shared-data';
import { writeTinyModel } from './fixtures/tiny-models.js';

const work = mkdtempSync(join(tmpdir(), 'streamline-plan-security-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const TINYSTORIES = sharedPath('data/text/tinystories_val_excerpt.txt');

const training: Partial<TrainingSpec> = {
  batchSize: 1,
  learningRate: 1e-2,
  minLearningRate: 1e-3,
  weightDecay: 1e-3,
  gradientAccumulation: 1,
  maxGradNorm: 5,
  validationFraction: 0.2,
  seed: 0,
  minSteps: 40,
  checkpointEvery: 1000,
};

function idsFile(): string {
  const path = join(work, `ids-${Math.random()}.jsonl`);
  writeFileSync(path, Array.from({ length: 6 }, (_, i) => JSON.stringify({ input_ids: [1, 2 + i, 7, 9, 11, 3, 5, 8] })).join('\n'));
  return path;
}

function tinyPlan(overrides: Partial<TestPlan> = {}): TestPlan {
  return { model: writeTinyModel('llama'), layersToPrune: 1, replacement: 'LAYER', dryRun: false, calibration: { source: idsFile(), samples: 6, seqLen: 8 }, training, ...overrides };
}

const run = async (plan: TestPlan, name: string) => runPlan(await testLocalPlan(plan), { workDir: join(work, `w-${name}`), outDir: join(work, `o-${name}`), onEvent: () => {} });

describe('plan bounds in the engine', () => {
  const refused: [string, (p: TestPlan) => TestPlan, RegExp][] = [
    ['calibration samples', (p) => ({ ...p, calibration: { ...p.calibration, samples: 10_000_000 } }), /calibration\.samples 10000000 is out of range; expected an integer from 1 to 4096/],
    ['epochs', (p) => ({ ...p, training: { ...p.training, epochs: 2147483647 } }), /training\.epochs 2147483647 is out of range; expected an integer from 1 to 1000/],
    ['min steps', (p) => ({ ...p, training: { ...p.training, minSteps: 10_000_000 } }), /training\.minSteps 10000000 is out of range/],
    ['batch size', (p) => ({ ...p, training: { ...p.training, batchSize: 100_000 } }), /training\.batchSize 100000 is out of range; expected an integer from 1 to 1024/],
    ['gradient accumulation', (p) => ({ ...p, training: { ...p.training, gradientAccumulation: 100_000 } }), /training\.gradientAccumulation 100000 is out of range/],
    ['learning rate 0', (p) => ({ ...p, training: { ...p.training, learningRate: 0 } }), /training\.learningRate 0 is out of range; expected a number in \(0, 1\]/],
    ['learning rate NaN', (p) => ({ ...p, training: { ...p.training, learningRate: NaN } }), /training\.learningRate NaN is out of range/],
    ['learning rate 1e6', (p) => ({ ...p, training: { ...p.training, learningRate: 1e6 } }), /training\.learningRate 1000000 is out of range/],
    ['weight decay', (p) => ({ ...p, training: { ...p.training, weightDecay: 50 } }), /training\.weightDecay 50 is out of range/],
    ['validation fraction', (p) => ({ ...p, training: { ...p.training, validationFraction: 1 } }), /training\.validationFraction 1 is out of range; expected a number in \[0, 1\)/],
    ['grad clip', (p) => ({ ...p, training: { ...p.training, maxGradNorm: Infinity } }), /training\.maxGradNorm Infinity is out of range/],
    [
      'evaluation texts',
      (p) => ({ ...p, evaluation: { perplexity: Array.from({ length: 17 }, () => ({ source: p.calibration.source, ...PLAN_DEFAULTS.evaluationText })) } }),
      /evaluation\.perplexity \(count\) 17 is out of range; expected an integer from 0 to 16/,
    ],
    ['evaluation windows', (p) => ({ ...p, evaluation: { perplexity: [{ source: p.calibration.source, samples: 1_000_000, seqLen: 8 }] } }), /evaluation\.perplexity\[0\]\.samples 1000000 is out of range/],
    ['evaluation tasks', (p) => ({ ...p, evaluation: { tasks: Array.from({ length: 17 }, () => p.calibration.source) } }), /evaluation\.tasks \(count\) 17 is out of range/],
    ['evaluation items', (p) => ({ ...p, evaluation: { tasks: [p.calibration.source], limit: 1_000_000 } }), /evaluation\.limit 1000000 is out of range/],
  ];
  it.each(refused)('refuses %s before reading anything', async (name, change, message) => {
    const workDir = join(work, `bound-${name.replace(/\W/g, '-')}`);
    await expect(runPlan(await testLocalPlan(change(tinyPlan())), { workDir, outDir: join(workDir, 'out'), onEvent: () => {} })).rejects.toMatchObject({ code: 'BAD_INPUT', message: expect.stringMatching(message) });
    expect(existsSync(workDir)).toBe(false);
  });

  it('takes operator bounds from STREAMLINE_PLAN_MAX_* settings', async () => {
    const { planBoundsFromEnv } = await import('../src/plan-bounds.js');
    expect(planBoundsFromEnv({ STREAMLINE_PLAN_MAX_SAMPLES: '8192' }).maxSamples).toBe(8192);
    expect(() => planBoundsFromEnv({ STREAMLINE_PLAN_MAX_EPOCHS: 'lots' })).toThrow(/STREAMLINE_PLAN_MAX_EPOCHS="lots" is not a positive integer/);
  });
});

describe.runIf(runWithShared)('data files with no text', () => {
  const stories = (calibrationPath: string): TestPlan => ({
    model: STORIES_BIN,
    tokenizer: STORIES_TOKENIZER,
    layersToPrune: 1,
    replacement: 'NONE',
    dryRun: false,
    calibration: { source: calibrationPath, samples: 4, seqLen: 32 },
    training,
  });

  it('refuses a .jsonl of blank records instead of calibrating on BOS tokens alone', async () => {
    const blank = join(work, 'blank.jsonl');
    writeFileSync(blank, `${JSON.stringify({ text: '' })}\n${JSON.stringify({ text: '   ' })}\n\n`);
    const tokenizer = await loadTokenizer(STORIES_TOKENIZER);
    await expect(loadCalibrationSamples(blank, tokenizer, { samples: 4, seqLen: 32, vocabSize: 512 })).rejects.toThrow(/blank\.jsonl has no text samples/);
    await expect(run(stories(blank), 'blank-jsonl')).rejects.toMatchObject({ code: 'BAD_INPUT', message: expect.stringMatching(/has no text samples/) });
  });

  it('refuses an empty .jsonl and an all-blank .txt', async () => {
    const empty = join(work, 'empty.jsonl');
    writeFileSync(empty, '');
    await expect(run(stories(empty), 'empty-jsonl')).rejects.toThrow(/empty\.jsonl has no text samples/);
    const spaces = join(work, 'spaces.txt');
    writeFileSync(spaces, ' \n\n   \n');
    await expect(run(stories(spaces), 'blank-txt')).rejects.toThrow(/spaces\.txt has no text samples/);
  });

  it("honours each perplexity text's own samples and seq-len", async () => {
    const outcome = await run(
      {
        ...stories(TINYSTORIES),
        evaluation: {
          perplexity: [
            { source: TINYSTORIES, samples: 3, seqLen: 32 },
            { source: TINYSTORIES, samples: 2, seqLen: 48 },
          ],
        },
      },
      'perplexity',
    );
    expect(outcome.dryRun).toBe(false);
    if (!('pruned' in outcome)) return;
    expect(outcome.pruned.stability.perplexity.map((p) => ({ dataset: p.dataset, tokens: p.tokens }))).toEqual([
      { dataset: TINYSTORIES, tokens: 3 * 31 },
      { dataset: TINYSTORIES, tokens: 2 * 47 },
    ]);
    // Windows and seq-len per text are in the engine's full report (streamline.json).
    const manifest = JSON.parse(readFileSync(join(work, 'o-perplexity', 'streamline.json'), 'utf8'));
    const report: { windows: number; seqLen: number; tokens: number }[] = manifest.evaluation.report.perplexity;
    expect(report.map((p) => ({ windows: p.windows, seqLen: p.seqLen, tokens: p.tokens }))).toEqual([
      { windows: 3, seqLen: 32, tokens: 3 * 31 },
      { windows: 2, seqLen: 48, tokens: 2 * 47 },
    ]);
  });
});

describe('a cancelled or failed plan’s work is removed', () => {
  /** Runs a worker until `until` holds, then stops it. */
  async function workUntil(transport: QueueTransport, dataDir: string, until: () => boolean, onEvent?: (planId: string, e: PlanEvent) => void, storeDir?: string) {
    const controller = new AbortController();
    transport.onEvent = (planId, e) => onEvent?.(planId, e);
    const worker = runWorker({ transport, dataDir, signal: controller.signal, pollMs: 20, heartbeatMs: 20, log: process.env.DEBUG_WORKER ? console.log : undefined, ...(storeDir && { store: new LocalObjectStore(storeDir) }) });
    // A worker that stopped early (a plan that failed unexpectedly) shows up as the condition never holding.
    for (const deadline = Date.now() + 60_000; !until() && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 20));
    controller.abort();
    await worker;
  }
  const cancelOnStep = (transport: QueueTransport, step: number, onCancel: () => void) => (planId: string, e: PlanEvent) => {
    if (e.step !== undefined && e.step >= step && !transport.cancelled.has(planId)) {
      transport.cancelled.add(planId);
      onCancel();
    }
  };
  /** The files (not folders) under `dir`. */
  const files = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir, { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).map((d) => d.name) : []);

  it('removes a cancelled plan’s work directory and its checkpoints in the store', async () => {
    const transport = new QueueTransport();
    const dataDir = join(work, 'cancel-data');
    const storeDir = join(work, 'cancel-store');
    mkdirSync(storeDir, { recursive: true });
    transport.queue.push({ planId: 'c1', config: testAssignment(tinyPlan({ training: { ...training, minSteps: 5000, checkpointEvery: 2 } })) });
    let claimsWhenCancelled = Infinity;
    let checkpointed: string[] = [];
    await workUntil(
      transport,
      dataDir,
      () => transport.claims > claimsWhenCancelled, // the worker has moved on
      // Cancelled once a checkpoint has reached the store (uploads lag behind the steps on a loaded machine).
      (planId, e) => {
        if (files(join(storeDir, 'plans', 'c1')).length === 0) return;
        cancelOnStep(transport, 8, () => {
          checkpointed = files(join(storeDir, 'plans', 'c1'));
          claimsWhenCancelled = transport.claims;
        })(planId, e);
      },
      storeDir,
    );
    expect(checkpointed.length).toBeGreaterThan(0); // there was something to remove
    expect(existsSync(join(dataDir, 'work', 'c1'))).toBe(false);
    expect(files(join(storeDir, 'plans', 'c1'))).toEqual([]);
  });

  it('removes a failed plan’s work directory', async () => {
    const transport = new QueueTransport();
    const dataDir = join(work, 'fail-data');
    transport.queue.push({ planId: 'f1', config: testAssignment(tinyPlan({ layersToPrune: 3 })) });
    await workUntil(transport, dataDir, () => transport.finished.has('f1'));
    expect(transport.finished.get('f1')!.error).toMatch(/a block must remove/);
    await new Promise((r) => setTimeout(r, 100));
    expect(existsSync(join(dataDir, 'work', 'f1'))).toBe(false);
  });

  it('keeps a failed plan’s work when the gateway refuses the failure (the plan is another worker’s now)', async () => {
    class Refusing extends QueueTransport {
      override async fail(): Promise<void> {
        throw new Error('gateway: CONFLICT: plan f2 is RUNNING and leased to another worker');
      }
    }
    const transport = new Refusing();
    const dataDir = join(work, 'refused-data');
    transport.queue.push({ planId: 'f2', config: testAssignment(tinyPlan({ layersToPrune: 3 })) });
    await workUntil(transport, dataDir, () => transport.claims > 1);
    expect(existsSync(join(dataDir, 'work', 'f2'))).toBe(true);
  });

  it('removes a succeeded plan’s work directory once its outputs are published', async () => {
    const transport = new QueueTransport();
    const dataDir = join(work, 'done-data');
    transport.queue.push({ planId: 's1', config: testAssignment(tinyPlan()) });
    await workUntil(transport, dataDir, () => transport.finished.has('s1'));
    expect(transport.finished.get('s1')!.result!.outputUri).toMatch(/outputs\/s1$/);
    await new Promise((r) => setTimeout(r, 100));
    expect(existsSync(join(dataDir, 'work', 's1'))).toBe(false);
    expect(existsSync(join(dataDir, 'outputs', 's1', 'streamline.json'))).toBe(true);
  });

  it('keeps the work of a plan whose lease went to another worker (not ended: it resumes there)', async () => {
    class LostLease extends QueueTransport {
      override async heartbeat(planId: string) {
        return { cancelled: this.cancelled.has(planId), ended: false };
      }
    }
    const transport = new LostLease();
    const dataDir = join(work, 'lost-data');
    transport.queue.push({ planId: 'l1', config: testAssignment(tinyPlan({ training: { ...training, minSteps: 5000, checkpointEvery: 2 } })) });
    let claimsWhenLost = Infinity;
    await workUntil(transport, dataDir, () => transport.claims > claimsWhenLost, cancelOnStep(transport, 8, () => (claimsWhenLost = transport.claims)));
    expect(existsSync(join(dataDir, 'work', 'l1'))).toBe(true);
  });
});
