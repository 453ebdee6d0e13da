/** The persistence layer on both databases: the same suite against SQLite and a real PostgreSQL. */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../src/errors.js';
import { ImportanceStore } from '../src/importance/importance.store.js';
import { ImportanceMetric } from '../src/importance/importance.type.js';
import { ModelStore, type NewModel } from '../src/models/model.store.js';
import { ModelStatus } from '../src/models/model.type.js';
import { PlanLifecycle } from '../src/plans/plan.lifecycle.js';
import { PlanStore, type NewPlan } from '../src/plans/plan.store.js';
import { PlanStage, PlanStatus } from '../src/plans/plan.type.js';
import { ProgressStore } from '../src/progress/progress.store.js';
import { StabilityStore } from '../src/stability/stability.store.js';
import { openDatabase, type Database, type DatabaseOptions } from '../src/store/database.js';
import { storeBackends } from './fixtures/store-backends.js';
import { STORED_MODEL, storedPlanFor } from './fixtures/stored-model.js';

// beyond 32 bits: must come back as the same number from both databases
const MODEL: NewModel = { ...STORED_MODEL, numParameters: 2 ** 53 - 1 };

const planFor = (modelId: string): NewPlan => storedPlanFor(modelId);

const backends = storeBackends('store');

describe.each(backends)('store on $name', (backend) => {
  let options: DatabaseOptions;
  let database: Database;
  const open: Database[] = [];
  const reopen = async () => {
    const db = await openDatabase(options);
    open.push(db);
    return db;
  };
  const stores = (db: Database) => ({
    models: new ModelStore(db.db),
    plans: new PlanStore(db.db),
    progress: new ProgressStore(db.db),
    importance: new ImportanceStore(db.db),
    stability: new StabilityStore(db.db),
  });

  beforeAll(async () => {
    options = await backend.setUp();
    database = await reopen();
  });
  afterEach(async () => {
    await database.db.deleteFrom('models').execute(); // cascades to everything else
  });
  afterAll(async () => {
    for (const db of open) await db.close();
    await backend.tearDown();
  });

  it('applies its migrations once and answers a ping', async () => {
    await expect(database.ping()).resolves.toBeUndefined();
    const again = await reopen(); // migrating an up-to-date database is a no-op
    await expect(again.ping()).resolves.toBeUndefined();
    expect(database.dialect).toBe(backend.name === 'SQLite' ? 'sqlite' : 'postgres');
  });

  it('stores and lists models, with parameter counts up to 2^53', async () => {
    const { models } = stores(database);
    const a = await models.insert(MODEL);
    const b = await models.insert({ ...MODEL, name: 'n' });
    expect(await models.get(a.id)).toEqual(a);
    expect(a).toMatchObject({ name: 'm', architecture: 'llama', numLayers: 5, numParameters: 2 ** 53 - 1, status: ModelStatus.READY });
    expect(a.inspection?.maxPositionEmbeddings).toBe(512);
    expect((await models.list()).map((m) => m.id)).toEqual([a.id, b.id]);
    expect(await models.get('missing')).toBeNull();
  });

  it('moves plans between statuses only from the allowed ones', async () => {
    const { models, plans } = stores(database);
    const model = await models.insert(MODEL);
    const plan = await plans.insert(planFor(model.id));
    expect(plan).toMatchObject({ status: PlanStatus.QUEUED, stage: null, progress: 0, removedLayers: [], config: { calibration: { samples: 32 } }, dryRun: false });
    const lifecycle = new PlanLifecycle(database.db);
    const running = await lifecycle.claimNext('w1', 60_000);
    expect(running).toMatchObject({ id: plan.id, status: PlanStatus.RUNNING });
    expect(running?.startedAt).toBeInstanceOf(Date);
    expect(await lifecycle.claimNext('w2', 60_000)).toBeNull();
    const done = await lifecycle.finishByHolder(plan.id, 'w1', PlanStatus.SUCCEEDED, { startLayer: 2, removedLayers: [2, 3], outputUri: 'file:///out', prunedParameters: 214592 });
    expect(done).toMatchObject({ status: PlanStatus.SUCCEEDED, progress: 1, startLayer: 2, removedLayers: [2, 3], outputUri: 'file:///out', prunedParameters: 214592 });
    expect(done?.finishedAt).toBeInstanceOf(Date);
    await plans.insert(planFor(model.id));
    expect((await plans.list({ status: PlanStatus.QUEUED })).map((p) => p.status)).toEqual([PlanStatus.QUEUED]);
    expect((await plans.list({ status: PlanStatus.SUCCEEDED })).map((p) => p.id)).toEqual([plan.id]);
    expect(await plans.list({ modelId: model.id })).toHaveLength(2);
  });

  it('keeps the error code of a failed plan and of a model marked FAILED (INVALID_WEIGHTS)', async () => {
    const { models, plans } = stores(database);
    const model = await models.insert(MODEL);
    expect(model).toMatchObject({ status: ModelStatus.READY, error: null, errorCode: null });
    const plan = await plans.insert(planFor(model.id));
    expect(plan.errorCode).toBeNull();
    const message = 'tensor model.layers.3.mlp.down_proj.weight holds NaN/infinite values';
    const failed = await new PlanLifecycle(database.db).failQueued(plan.id, message, ErrorCode.INVALID_WEIGHTS);
    expect(failed).toMatchObject({ status: PlanStatus.FAILED, error: message, errorCode: 'INVALID_WEIGHTS' });
    expect(await models.markFailed(model.id, ErrorCode.INVALID_WEIGHTS, message)).toMatchObject({ status: ModelStatus.FAILED, error: message, errorCode: 'INVALID_WEIGHTS' });
    expect(await models.get(model.id)).toMatchObject({ status: ModelStatus.FAILED, error: message, errorCode: 'INVALID_WEIGHTS' });
    expect(await models.markFailed('missing', ErrorCode.INVALID_WEIGHTS, message)).toBeNull();
  });

  it('reads stored error codes outside the ErrorCode enum as one of its values: engine codes mapped, others INTERNAL', async () => {
    const { models, plans } = stores(database);
    const model = await models.insert(MODEL);
    const read = async (stored: string | null) => {
      const plan = await plans.insert(planFor(model.id));
      await database.db.updateTable('plans').set({ status: PlanStatus.FAILED, error_code: stored }).where('id', '=', plan.id).execute();
      await database.db.updateTable('models').set({ error_code: stored }).where('id', '=', model.id).execute();
      return [(await plans.get(plan.id))!.errorCode, (await models.get(model.id))!.errorCode];
    };
    expect(await read('QUOTA_EXCEEDED')).toEqual([ErrorCode.QUOTA_EXCEEDED, ErrorCode.QUOTA_EXCEEDED]);
    expect(await read('CORRUPT_FILE')).toEqual([ErrorCode.BAD_USER_INPUT, ErrorCode.BAD_USER_INPUT]);
    expect(await read('STORAGE')).toEqual([ErrorCode.INTERNAL, ErrorCode.INTERNAL]);
    expect(await read('no such code')).toEqual([ErrorCode.INTERNAL, ErrorCode.INTERNAL]);
    expect(await read(null)).toEqual([null, null]);
  });

  it('numbers progress events 1, 2, 3 … per plan, also when appended concurrently', async () => {
    const { models, plans, progress } = stores(database);
    const model = await models.insert(MODEL);
    const [p, q] = await Promise.all([plans.insert(planFor(model.id)), plans.insert(planFor(model.id))]);
    const appends = Array.from({ length: 40 }, (_, i) => progress.append(i % 2 ? p.id : q.id, { stage: PlanStage.TRAINING, progress: i / 40, step: i, loss: 0.5 }));
    const stored = await Promise.all(appends);
    for (const plan of [p, q]) {
      const seqs = stored.flatMap((s) => (s && s !== 'duplicate' && s.event.planId === plan.id ? [s.event.seq] : []));
      expect(seqs.sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      const listed = await progress.listAfter(plan.id, 0);
      expect(listed.map((e) => e.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    }
    expect((await progress.listAfter(p.id, 15)).map((e) => e.seq)).toEqual([16, 17, 18, 19, 20]);
    expect((await progress.listAfter(p.id, 0, 3)).map((e) => e.seq)).toEqual([1, 2, 3]);
    expect((await progress.listLatest(p.id, 3)).map((e) => e.seq)).toEqual([18, 19, 20]);
    const [event] = await progress.listAfter(p.id, 0, 1);
    expect(event).toMatchObject({ planId: p.id, stage: PlanStage.TRAINING, step: expect.any(Number), loss: 0.5, validationLoss: null, message: null });
    expect(event.at).toBeInstanceOf(Date);
    expect(await plans.get(p.id)).toMatchObject({ stage: PlanStage.TRAINING });
  });

  it("stores a worker's event once when its batch is sent again, also with both copies in flight at once", async () => {
    const { models, plans, progress } = stores(database);
    const model = await models.insert(MODEL);
    const plan = await plans.insert(planFor(model.id));
    const event = (step: number) => ({ stage: PlanStage.TRAINING, progress: step / 10, step });
    // A batch's events are stored one after another, in order, as the progress service does (sent at
    // once, PostgreSQL could store step 2 before step 1); the race of two copies is below.
    const send = async (run: string, first: number, steps: number[]) => {
      const results = [];
      for (const [i, step] of steps.entries()) results.push(await progress.append(plan.id, event(step), { run, index: first + i }));
      return results;
    };
    // the first copy of a batch, then the same batch resent with one more event
    expect((await send('run-a', 1, [1, 2])).every((r) => r !== 'duplicate')).toBe(true);
    expect(await send('run-a', 1, [1, 2, 3])).toEqual(['duplicate', 'duplicate', expect.objectContaining({ event: expect.objectContaining({ seq: 3, step: 3 }) })]);
    // two copies of the next event at once: one is stored
    const racing = await Promise.all([progress.append(plan.id, event(4), { run: 'run-a', index: 4 }), progress.append(plan.id, event(4), { run: 'run-a', index: 4 })]);
    expect(racing.filter((r) => r === 'duplicate')).toHaveLength(1);
    // another run of the plan (the next worker) starts its own numbering
    expect(await progress.append(plan.id, event(5), { run: 'run-b', index: 1 })).toMatchObject({ event: { seq: 5 } });
    expect((await progress.listAfter(plan.id, 0)).map((e) => e.step)).toEqual([1, 2, 3, 4, 5]);
  });

  it('refuses events for a finished or missing plan', async () => {
    const { models, plans, progress } = stores(database);
    const model = await models.insert(MODEL);
    const plan = await plans.insert(planFor(model.id));
    await new PlanLifecycle(database.db).cancel(plan.id);
    expect(await progress.append(plan.id, { stage: PlanStage.LOADING, progress: 0 })).toBeNull();
    expect(await progress.append('missing', { stage: PlanStage.LOADING, progress: 0 })).toBeNull();
    expect(await progress.listAfter(plan.id, 0)).toEqual([]);
  });

  it('keeps importance profiles and stability reports, and deletes everything of a model with it', async () => {
    const { models, plans, progress, importance, stability } = stores(database);
    const model = await models.insert(MODEL);
    const plan = await plans.insert(planFor(model.id));
    await progress.append(plan.id, { stage: PlanStage.PROFILING, progress: 0.1 });
    const general = await importance.insert({ modelId: model.id, planId: null, metric: ImportanceMetric.COSINE, blockSize: 1, samples: 32, seqLen: 128, startScores: [0.1, 0.2, 0.88, 0.3, 0.2] });
    const forPlan = await importance.insert({ modelId: model.id, planId: plan.id, metric: ImportanceMetric.COSINE, blockSize: 2, samples: 32, seqLen: 128, startScores: [0.5, 0.6, 0.75, 0.4] });
    expect((await importance.listByModel(model.id)).map((p) => p.id).sort()).toEqual([general.id, forPlan.id].sort());
    expect(await importance.listByPlan(plan.id)).toEqual([forPlan]);
    const report = await stability.insert({
      planId: plan.id,
      perplexity: [{ dataset: 'tinystories', tokens: 16320, original: 4.19, pruned: 6.9 }],
      tasks: [
        { task: 'copa', samples: 100, accuracyOriginal: 0.56, accuracyPruned: 0.52, agreement: 0.74, stability: 1 },
        { task: 'piqa', samples: 100, accuracyOriginal: 0.5, accuracyPruned: 0.5, agreement: 0.7, stability: 0.5 },
      ],
      hiddenStateCosine: 0.935,
      parameterReduction: 0.175,
    });
    expect(report.stability).toBe(0.75);
    expect(await stability.getByPlan(plan.id)).toEqual(report);

    expect(await models.delete(model.id)).toBe(true);
    expect(await plans.get(plan.id)).toBeNull();
    expect(await progress.listAfter(plan.id, 0)).toEqual([]);
    expect(await importance.listByModel(model.id)).toEqual([]);
    expect(await stability.getByPlan(plan.id)).toBeNull();
    expect(await models.delete(model.id)).toBe(false);
  });

  it('loses nothing when the database is closed and opened again', async () => {
    const { models, plans, progress } = stores(database);
    const model = await models.insert(MODEL);
    const plan = await plans.insert(planFor(model.id));
    for (let i = 0; i < 3; i++) await progress.append(plan.id, { stage: PlanStage.LOADING, progress: i / 10, message: `step ${i}` });

    const second = await reopen();
    const again = stores(second);
    expect(await again.models.get(model.id)).toEqual(model);
    expect(await again.plans.get(plan.id)).toMatchObject({ id: plan.id, stage: PlanStage.LOADING, progress: 0.2 });
    expect((await again.progress.listAfter(plan.id, 0)).map((e) => e.message)).toEqual(['step 0', 'step 1', 'step 2']);
    // numbering continues where it stopped
    expect(await again.progress.append(plan.id, { stage: PlanStage.LOADING, progress: 0.3 })).toMatchObject({ event: { seq: 4 } });
  });
});
