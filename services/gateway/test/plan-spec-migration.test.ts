/**
 * Migration 0006 brings every stored plan config to PlanSpec version 2 on both databases: a database
 * opened at 0005 with plans in the settings' old shape, then opened by this gateway, reads them back as
 * specs the contract's parser accepts — nothing lost, older rows' gaps filled.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ModelStore } from '../src/models/model.store.js';
import { PlanStore } from '../src/plans/plan.store.js';
import { openDatabase, type Database } from '../src/store/database.js';
import { MIGRATIONS } from '../src/store/migrations.js';
import { storeBackends } from './fixtures/store-backends.js';
import { STORED_MODEL, storedPlanFor } from './fixtures/stored-model.js';

const BEFORE_PLAN_SPEC = Object.fromEntries(Object.entries(MIGRATIONS).filter(([name]) => name < '0006'));

/** A config as the gateway stored it before the plan contract (0005), with every field it then had. */
const FULL_OLD_CONFIG = {
  layersToPrune: 2,
  targetSparsity: 0.3,
  estimatedSparsity: 0.35,
  startLayer: 1,
  replacement: 'SWIGLU',
  dryRun: false,
  calibration: { source: 'file:///data/tiny.txt', samples: 16, seqLen: 64 },
  training: { samples: 16, epochs: 3, minSteps: 300, batchSize: 4, learningRate: 2e-3, minLearningRate: 2e-4, weightDecay: 1e-3, warmupRatio: 0.1, gradientAccumulation: 2, maxGradNorm: 5, validationFraction: 0.2, seed: 7, checkpointEvery: 50 },
  evaluation: { perplexity: [{ source: 'file:///data/held-out.txt', samples: 8, seqLen: 48 }], tasks: ['file:///data/piqa.jsonl'], limit: 10 },
};

/** An older row: no estimatedSparsity, minSteps, checkpointEvery or warmupRatio; a text without its own windows. */
const SPARSE_OLD_CONFIG = {
  layersToPrune: 1,
  targetSparsity: null,
  startLayer: null,
  replacement: 'LAYER',
  dryRun: true,
  calibration: { source: 's3://bucket/calibration.jsonl', samples: 32, seqLen: 128 },
  training: { samples: 32, epochs: null, batchSize: 8, learningRate: 2e-4, minLearningRate: 5e-5, weightDecay: 1e-3, gradientAccumulation: 1, maxGradNorm: 5, validationFraction: 0.1, seed: 0 },
  evaluation: { perplexity: [{ source: 'file:///data/held-out.txt' }], tasks: [], limit: null },
};

describe.each(storeBackends('plan spec migration'))('migration 0006 on $name', (backend) => {
  const open: Database[] = [];
  afterEach(async () => {
    for (const database of open.splice(0)) await database.close();
    await backend.tearDown();
  });

  async function planStoredBefore(options: Awaited<ReturnType<typeof backend.setUp>>, configs: Record<string, unknown>[]): Promise<string[]> {
    const old = await openDatabase(options, BEFORE_PLAN_SPEC);
    open.push(old);
    const model = await new ModelStore(old.db).insert(STORED_MODEL);
    const ids: string[] = [];
    for (const config of configs) {
      const plan = await new PlanStore(old.db).insert(storedPlanFor(model.id));
      await old.db.updateTable('plans').set({ config: JSON.stringify(config) }).where('id', '=', plan.id).execute();
      ids.push(plan.id);
    }
    return ids;
  }

  it('upgrades stored configs to PlanSpec version 2, keeping every setting and filling what older rows lack', async () => {
    const options = await backend.setUp();
    const [full, sparse] = await planStoredBefore(options, [FULL_OLD_CONFIG, SPARSE_OLD_CONFIG]);
    const current = await openDatabase(options);
    open.push(current);
    const plans = new PlanStore(current.db);

    const { samples: _dropped, ...training } = FULL_OLD_CONFIG.training;
    // Read back through the contract, a spec stored before healing existed has it off.
    expect((await plans.get(full))!.config).toEqual({ ...FULL_OLD_CONFIG, version: 2, training, healing: null });
    expect((await plans.get(sparse))!.config).toEqual({
      version: 2,
      layersToPrune: 1,
      targetSparsity: null,
      estimatedSparsity: null,
      startLayer: null,
      replacement: 'LAYER',
      dryRun: true,
      calibration: SPARSE_OLD_CONFIG.calibration,
      training: { epochs: null, minSteps: 300, batchSize: 8, learningRate: 2e-4, minLearningRate: 5e-5, weightDecay: 1e-3, warmupRatio: 0.05, gradientAccumulation: 1, maxGradNorm: 5, validationFraction: 0.1, seed: 0, checkpointEvery: 50 },
      healing: null,
      evaluation: { perplexity: [{ source: 'file:///data/held-out.txt', samples: 64, seqLen: 128 }], tasks: [], limit: null },
    });
  });

  it('stops on a row it cannot upgrade, naming the plan and the field, and leaves the database usable at 0005', async () => {
    const options = await backend.setUp();
    const [bad] = await planStoredBefore(options, [{ ...FULL_OLD_CONFIG, replacement: 'MLP' }]);
    await expect(openDatabase(options)).rejects.toThrow(new RegExp(`0006_plan_spec_v2 failed: the stored config of plan ${bad}, upgraded to PlanSpec version 2, does not fit the plan contract: replacement`));
    const again = await openDatabase(options, BEFORE_PLAN_SPEC);
    open.push(again);
    const row = await again.db.selectFrom('plans').select('config').where('id', '=', bad).executeTakeFirstOrThrow();
    expect(JSON.parse(row.config).replacement).toBe('MLP');
  });
});
