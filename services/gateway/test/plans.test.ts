/** createPruningPlan (validation and defaults), plan queries, nested fields and cancelPlan. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeEach, describe, expect, it } from 'vitest';
import { ImportanceMetric } from '../src/importance/importance.type.js';
import { PlanStage } from '../src/plans/plan.type.js';
import type { RunningGateway } from '../src/server.js';
import { data, failure, useGateways } from './fixtures/gateway.js';
import { runWithShared, sharedUri, STORIES_TOKENIZER_URI, STORIES_URI, TINYSTORIES_URI } from './fixtures/shared.js';
import { claimAsWorker, completeAsWorker } from './fixtures/claim.js';

const CREATE = /* GraphQL */ `
  mutation ($input: CreatePruningPlanInput!) {
    createPruningPlan(input: $input) {
      id status stage progress layersToPrune startLayer removedLayers replacement config outputUri originalParameters prunedParameters error createdAt startedAt finishedAt
      model { id name }
    }
  }
`;
const CANCEL = 'mutation ($id: ID!) { cancelPlan(id: $id) { id status finishedAt } }';

describe.skipIf(!runWithShared)('pruning plans', () => {
  const gateways = useGateways();
  let gateway: RunningGateway;
  let modelId: string;
  const plan = (input: Record<string, unknown>) => ({ input: { modelId, calibration: { source: TINYSTORIES_URI }, ...input } });
  const refuse = async (input: Record<string, unknown>) => failure(gateway.url, CREATE, plan(input));

  beforeEach(async () => {
    gateway = await gateways.start();
    const registered = await data(gateway.url, 'mutation ($input: RegisterModelInput!) { registerModel(input: $input) { id } }', {
      input: { name: 'stories260K', source: STORIES_URI, tokenizer: STORIES_TOKENIZER_URI },
    });
    modelId = registered.registerModel.id;
  });

  it('stores a QUEUED plan whose config has every default filled in', async () => {
    const { createPruningPlan: created } = await data(gateway.url, CREATE, plan({ layersToPrune: 2 }));
    expect(created).toMatchObject({
      status: 'QUEUED',
      stage: null,
      progress: 0,
      layersToPrune: 2,
      startLayer: null,
      removedLayers: [],
      replacement: 'LAYER',
      outputUri: null,
      originalParameters: 260032,
      prunedParameters: null,
      error: null,
      startedAt: null,
      finishedAt: null,
      model: { id: modelId, name: 'stories260K' },
    });
    expect(created.config).toEqual({
      version: 2,
      layersToPrune: 2,
      targetSparsity: null,
      estimatedSparsity: null,
      startLayer: null,
      replacement: 'LAYER',
      dryRun: false,
      calibration: { source: TINYSTORIES_URI, samples: 32, seqLen: 128 },
      training: {
        epochs: null,
        minSteps: 300,
        batchSize: 8,
        learningRate: 2e-4,
        minLearningRate: 5e-5,
        weightDecay: 1e-3,
        warmupRatio: 0.05,
        gradientAccumulation: 1,
        maxGradNorm: 5,
        validationFraction: 0.1,
        seed: 0,
        checkpointEvery: 50,
      },
      healing: null,
      evaluation: { perplexity: [], tasks: [], limit: null },
    });

    const { plan: fetched } = await data(gateway.url, 'query ($id: ID!) { plan(id: $id) { id status config } }', { id: created.id });
    expect(fetched).toEqual({ id: created.id, status: 'QUEUED', config: created.config });
    expect((await data(gateway.url, '{ plans(status: QUEUED) { id } }')).plans).toEqual([{ id: created.id }]);
    expect((await data(gateway.url, '{ plans(status: RUNNING) { id } }')).plans).toEqual([]);
    expect((await data(gateway.url, '{ plans { id } }')).plans).toEqual([{ id: created.id }]);
    expect((await data(gateway.url, 'query ($id: ID!) { model(id: $id) { plans { id } } }', { id: modelId })).model.plans).toEqual([{ id: created.id }]);
    expect((await data(gateway.url, '{ plan(id: "nope") { id } }')).plan).toBeNull();
  });

  it('keeps what the input gives: pinned start, replacement, dry run, training and evaluation settings', async () => {
    const { createPruningPlan: created } = await data(
      gateway.url,
      CREATE,
      plan({
        layersToPrune: 3,
        startLayer: 2,
        replacement: 'SWIGLU',
        dryRun: true,
        calibration: { source: TINYSTORIES_URI, samples: 16, seqLen: 256 },
        training: { samples: 16, epochs: 4, minSteps: 40, checkpointEvery: 5, batchSize: 4, learningRate: 2e-3, minLearningRate: 2e-4, seed: 7, validationFraction: 0 },
        evaluation: { perplexity: [{ source: TINYSTORIES_URI }], limit: 10 },
      }),
    );
    expect(created).toMatchObject({ layersToPrune: 3, startLayer: 2, replacement: 'SWIGLU' });
    expect(created.config).toMatchObject({
      startLayer: 2,
      dryRun: true,
      calibration: { samples: 16, seqLen: 256 },
      training: { epochs: 4, minSteps: 40, checkpointEvery: 5, batchSize: 4, learningRate: 2e-3, minLearningRate: 2e-4, seed: 7, validationFraction: 0, weightDecay: 1e-3 },
      evaluation: { perplexity: [{ source: TINYSTORIES_URI, samples: 64, seqLen: 256 }], tasks: [], limit: 10 },
    });
  });

  it('chooses the block size from a target sparsity', async () => {
    const { createPruningPlan: created } = await data(gateway.url, CREATE, plan({ targetSparsity: 0.35, replacement: 'NONE' }));
    // stories260K: each layer holds 45,440 of the 260,032 parameters; removing 2 layers (0.3495) is closest to 0.35
    expect(created.layersToPrune).toBe(2);
    expect(created.config.targetSparsity).toBe(0.35);
    expect(created.config.estimatedSparsity).toBeCloseTo((2 * 45440) / 260032, 6);
  });

  it.each([
    ['both layersToPrune and targetSparsity', { layersToPrune: 2, targetSparsity: 0.3 }, 'input.layersToPrune', 'exactly one of layersToPrune'],
    ['neither layersToPrune nor targetSparsity', {}, 'input.layersToPrune', 'got neither'],
    ['a block as large as the model', { layersToPrune: 5 }, 'input.layersToPrune', 'from 1 to 4'],
    ['an empty block', { layersToPrune: 0 }, 'input.layersToPrune', 'from 1 to 4'],
    ['a start that pushes the block past the last layer', { layersToPrune: 2, startLayer: 4 }, 'input.startLayer', 'starts at 0 to 3'],
    ['a negative start', { layersToPrune: 2, startLayer: -1 }, 'input.startLayer', 'starts at 0 to 3'],
    ['a sparsity of 1', { targetSparsity: 1 }, 'input.targetSparsity', '(0, 1)'],
    ['a calibration set with an unknown scheme', { layersToPrune: 2, calibration: { source: 'ftp://x/data.txt' } }, 'input.calibration.source', 'accepted schemes: file://, s3://'],
    ['a relative calibration path', { layersToPrune: 2, calibration: { source: 'data.txt' } }, 'input.calibration.source', 'absolute'],
    ['a calibration set that is not text', { layersToPrune: 2, calibration: { source: 'file:///etc/hostname.bin' } }, 'input.calibration.source', '.txt or .jsonl'],
    ['a missing calibration file (under a file root)', { layersToPrune: 2, calibration: { source: sharedUri('data/text/nonexistent.txt') } }, 'input.calibration.source', 'no file at'],
    ['a calibration file outside the file roots', { layersToPrune: 2, calibration: { source: 'file:///etc/hostname.txt' } }, 'input.calibration.source', 'STREAMLINE_FILE_ROOTS'],
    ['zero calibration samples', { layersToPrune: 2, calibration: { source: TINYSTORIES_URI, samples: 0 } }, 'input.calibration.samples', 'integer from 1 to 4096'],
    ['a sequence beyond the context', { layersToPrune: 2, calibration: { source: TINYSTORIES_URI, seqLen: 4096 } }, 'input.calibration.seqLen', 'from 2 to 512'],
    ['a zero batch size', { layersToPrune: 2, training: { batchSize: 0 } }, 'input.training.batchSize', 'integer from 1 to 1024'],
    ['a negative learning rate', { layersToPrune: 2, training: { learningRate: -1 } }, 'input.training.learningRate', '(0, 1]'],
    ['a floor above the peak learning rate', { layersToPrune: 2, training: { learningRate: 1e-4, minLearningRate: 1e-3 } }, 'input.training.minLearningRate', '[0, 0.0001]'],
    ['a validation fraction of 1', { layersToPrune: 2, training: { validationFraction: 1 } }, 'input.training.validationFraction', '[0, 1)'],
    ['a warm-up ratio above 1', { layersToPrune: 2, training: { warmupRatio: 1.5 } }, 'input.training.warmupRatio', '[0, 1)'],
    ['zero gradient accumulation', { layersToPrune: 2, training: { gradientAccumulation: 0 } }, 'input.training.gradientAccumulation', 'integer from 1 to 1024'],
    ['zero epochs', { layersToPrune: 2, training: { epochs: 0 } }, 'input.training.epochs', 'integer from 1 to 1000'],
    ['a non-positive gradient norm', { layersToPrune: 2, training: { maxGradNorm: 0 } }, 'input.training.maxGradNorm', '(0, 1000000]'],
    ['a negative seed', { layersToPrune: 2, training: { seed: -3 } }, 'input.training.seed', 'integer ≥ 0'],
    ['training samples other than the calibration windows', { layersToPrune: 2, training: { samples: 8 } }, 'input.training.samples', 'differs from input.calibration.samples (32)'],
    ['zero minimum steps', { layersToPrune: 2, training: { minSteps: 0 } }, 'input.training.minSteps', 'integer from 1 to'],
    ['zero steps between checkpoints', { layersToPrune: 2, training: { checkpointEvery: 0 } }, 'input.training.checkpointEvery', 'integer from 1 to'],
    ['a task that is not JSONL', { layersToPrune: 2, evaluation: { tasks: [TINYSTORIES_URI] } }, 'input.evaluation.tasks[0]', '.jsonl'],
    ['a zero evaluation limit', { layersToPrune: 2, evaluation: { limit: 0 } }, 'input.evaluation.limit', 'integer from 1 to 10000'],
  ])('answers %s with BAD_USER_INPUT naming the field', async (_what, input, field, expected) => {
    const error = await refuse(input);
    expect(error.code).toBe('BAD_USER_INPUT');
    expect(error.message).toContain(field);
    expect(error.message).toContain(expected);
    expect((await data(gateway.url, '{ plans { id } }')).plans).toEqual([]);
  });

  it('resolves healing: defaults filled in (validating on the training split), settings kept, a kind with nothing to heal and values out of range refused', async () => {
    const { createPruningPlan: defaults } = await data(gateway.url, CREATE, plan({ layersToPrune: 2, training: { validationFraction: 0.2 }, healing: {} }));
    expect(defaults.config.healing).toEqual({ steps: 200, learningRate: 2e-4, validationFraction: 0.2, patience: 3 });
    const { createPruningPlan: given } = await data(gateway.url, CREATE, plan({ layersToPrune: 2, replacement: 'FFN', healing: { steps: 40, learningRate: 1e-3, validationFraction: 0.25, patience: 2 } }));
    expect(given.config.healing).toEqual({ steps: 40, learningRate: 1e-3, validationFraction: 0.25, patience: 2 });
    const linear = await refuse({ layersToPrune: 2, replacement: 'LINEAR', healing: {} });
    expect(linear.code).toBe('BAD_USER_INPUT');
    expect(linear.message).toContain('input.healing');
    expect(linear.message).toContain('the LINEAR replacement has nothing to heal');
    const steps = await refuse({ layersToPrune: 2, healing: { steps: 0 } });
    expect(steps.code).toBe('BAD_USER_INPUT');
    expect(steps.message).toContain('input.healing.steps');
    const fraction = await refuse({ layersToPrune: 2, healing: { validationFraction: 1 } });
    expect(fraction.message).toContain('input.healing.validationFraction');
  });

  it('answers an unknown replacement kind with BAD_USER_INPUT listing the accepted ones', async () => {
    const error = await refuse({ layersToPrune: 2, replacement: 'CONV' });
    expect(error.code).toBe('BAD_USER_INPUT');
    expect(error.message).toContain('replacement');
    expect(error.message).toContain('NONE, LINEAR, FFN, SWIGLU, LAYER');
  });

  it('requires a calibration set when the gateway has no default, and uses the default when it has one', async () => {
    const error = await failure(gateway.url, CREATE, { input: { modelId, layersToPrune: 2 } });
    expect(error.code).toBe('BAD_USER_INPUT');
    expect(error.message).toContain('input.calibration');

    const withDefault = await gateways.start({ defaultCalibrationSource: TINYSTORIES_URI });
    const { registerModel } = await data(withDefault.url, 'mutation ($input: RegisterModelInput!) { registerModel(input: $input) { id } }', { input: { name: 's', source: STORIES_URI } });
    const { createPruningPlan } = await data(withDefault.url, CREATE, { input: { modelId: registerModel.id, layersToPrune: 1 } });
    expect(createPruningPlan.config.calibration).toEqual({ source: TINYSTORIES_URI, samples: 32, seqLen: 128 });
  });

  it('answers a plan for an unknown model with NOT_FOUND naming input.modelId', async () => {
    const error = await failure(gateway.url, CREATE, plan({ modelId: 'no-such-model', layersToPrune: 2 }));
    expect(error.code).toBe('NOT_FOUND');
    expect(error.message).toContain('input.modelId');
    expect(error.message).toContain('no-such-model');
  });

  it('accepts JSONL calibration data', async () => {
    const file = join(gateways.tempDir(), 'calibration.jsonl');
    writeFileSync(file, '{"text": "Once upon a time"}\n');
    const { createPruningPlan } = await data(gateway.url, CREATE, plan({ layersToPrune: 1, calibration: { source: pathToFileURL(file).href } }));
    expect(createPruningPlan.config.calibration.source).toBe(pathToFileURL(file).href);
  });

  it('reads local task files at creation: a malformed one is BAD_USER_INPUT naming the field, the line and the rule, never the content', async () => {
    const task = (name: string, text: string) => {
      const file = join(gateways.tempDir(), name);
      writeFileSync(file, text);
      return pathToFileURL(file).href;
    };
    const good = '{"query": "The sky is", "choices": [" blue", " green"], "gold": 0}\n';
    const cases: [string, string][] = [
      [task('broken.jsonl', `${good}{"query": "secret-token-9f3a", \n`), 'line 2: not valid JSON'],
      [task('gold.jsonl', `${good}${good}{"query": "q", "choices": ["a", "b"], "gold": "secret-token-9f3a"}\n`), 'line 3: the answer ("gold" or "label") must be an integer index into the choices'],
      [task('shape.jsonl', '{"question": "secret-token-9f3a"}\n'), 'line 1: an item needs {"query", "choices", "gold"} or {"ctx", "endings", "label"}'],
      [task('array.jsonl', `${good}["secret-token-9f3a"]\n`), 'line 2: not a JSON object'],
    ];
    const fine = task('fine.jsonl', good);
    for (const [uri, problem] of cases) {
      const { message, code } = await refuse({ layersToPrune: 2, evaluation: { tasks: [fine, uri] } });
      expect(code).toBe('BAD_USER_INPUT');
      expect(message).toBe(`input.evaluation.tasks[1]: ${JSON.stringify(uri)} is not a multiple-choice task file: ${problem}`);
      expect(message).not.toContain('secret-token');
    }
    // Only the items the plan scores are read: a file whose bad line lies past the limit is accepted.
    const { createPruningPlan } = await data(gateway.url, CREATE, plan({ layersToPrune: 2, evaluation: { tasks: [cases[1][0]], limit: 2 } }));
    expect(createPruningPlan.config.evaluation).toMatchObject({ tasks: [cases[1][0]], limit: 2 });
  });

  it('cancels queued and running plans, and refuses to cancel finished ones with CONFLICT', async () => {
    const queued = (await data(gateway.url, CREATE, plan({ layersToPrune: 2 }))).createPruningPlan;
    const cancelled = (await data(gateway.url, CANCEL, { id: queued.id })).cancelPlan;
    expect(cancelled.status).toBe('CANCELLED');
    expect(Date.parse(cancelled.finishedAt)).not.toBeNaN();
    const again = await failure(gateway.url, CANCEL, { id: queued.id });
    expect(again.code).toBe('CONFLICT');
    expect(again.message).toContain('CANCELLED');

    const running = (await data(gateway.url, CREATE, plan({ layersToPrune: 2 }))).createPruningPlan;
    await claimAsWorker(gateway.services, running.id);
    expect((await data(gateway.url, CANCEL, { id: running.id })).cancelPlan.status).toBe('CANCELLED');

    const succeeded = (await data(gateway.url, CREATE, plan({ layersToPrune: 2 }))).createPruningPlan;
    await claimAsWorker(gateway.services, succeeded.id);
    await completeAsWorker(gateway.services, succeeded.id, { startLayer: 2, removedLayers: [2, 3], outputUri: 'file:///tmp/out' });
    const late = await failure(gateway.url, CANCEL, { id: succeeded.id });
    expect(late.code).toBe('CONFLICT');
    expect(late.message).toContain('SUCCEEDED');

    expect((await failure(gateway.url, CANCEL, { id: 'nope' })).code).toBe('NOT_FOUND');
  });

  it('refuses to delete a model with plans (CONFLICT), even finished ones; force deletes it with them', async () => {
    const queued = (await data(gateway.url, CREATE, plan({ layersToPrune: 2 }))).createPruningPlan;
    const remove = 'mutation ($id: ID!, $force: Boolean) { deleteModel(id: $id, force: $force) }';
    expect((await failure(gateway.url, remove, { id: modelId })).code).toBe('CONFLICT');
    await data(gateway.url, CANCEL, { id: queued.id });
    expect(await failure(gateway.url, remove, { id: modelId })).toMatchObject({ code: 'CONFLICT', message: expect.stringContaining('1 plan(s) (1 CANCELLED)') });
    expect((await data(gateway.url, remove, { id: modelId, force: true })).deleteModel).toBe(true);
    expect((await data(gateway.url, 'query ($id: ID!) { plan(id: $id) { id } }', { id: queued.id })).plan).toBeNull();
  });

  it('resolves a plan’s events, profiles, importance and stability report', async () => {
    const { createPruningPlan: created } = await data(gateway.url, CREATE, plan({ layersToPrune: 2 }));
    const { services } = gateway;
    await claimAsWorker(services, created.id);
    for (let step = 1; step <= 5; step++) await services.progress.appendProgress(created.id, { stage: PlanStage.TRAINING, progress: step / 10, step, totalSteps: 5, loss: 1 / step });
    await services.importance.save({ modelId, planId: created.id, metric: ImportanceMetric.COSINE, blockSize: 2, samples: 32, seqLen: 128, startScores: [0.41, 0.55, 0.7492, 0.48] });
    await services.importance.save({ modelId, planId: created.id, metric: ImportanceMetric.COSINE, blockSize: 1, samples: 32, seqLen: 128, startScores: [0.6, 0.8, 0.882, 0.7, 0.5] });
    await services.stability.save({
      planId: created.id,
      perplexity: [{ dataset: 'tinystories_val_excerpt.txt', tokens: 16320, original: 4.19, pruned: 6.9 }],
      tasks: [{ task: 'copa', samples: 100, accuracyOriginal: 0.56, accuracyPruned: 0.52, agreement: 0.74, stability: 1 }],
      hiddenStateCosine: 0.935,
      parameterReduction: 0.1747,
    });
    const query = /* GraphQL */ `
      query ($id: ID!) {
        plan(id: $id) {
          stage progress
          latest: events(limit: 2) { seq step loss }
          after3: events(after: 3) { seq }
          profiles { blockSize }
          importance { blockSize metric samples seqLen scores { startLayer endLayer score } best { startLayer endLayer score } model { id } }
          stability { stability hiddenStateCosine parameterReduction perplexity { dataset original pruned } tasks { task stability } plan { id } }
        }
      }
    `;
    const { plan: fetched } = await data(gateway.url, query, { id: created.id });
    expect(fetched.stage).toBe('TRAINING');
    expect(fetched.progress).toBe(0.5);
    expect(fetched.latest).toEqual([{ seq: 4, step: 4, loss: 0.25 }, { seq: 5, step: 5, loss: 0.2 }]);
    expect(fetched.after3).toEqual([{ seq: 4 }, { seq: 5 }]);
    expect(fetched.profiles.map((p: { blockSize: number }) => p.blockSize)).toEqual([1, 2]);
    expect(fetched.importance).toMatchObject({ blockSize: 2, metric: 'COSINE', samples: 32, seqLen: 128, model: { id: modelId } });
    expect(fetched.importance.scores).toEqual([
      { startLayer: 0, endLayer: 1, score: 0.41 },
      { startLayer: 1, endLayer: 2, score: 0.55 },
      { startLayer: 2, endLayer: 3, score: 0.7492 },
      { startLayer: 3, endLayer: 4, score: 0.48 },
    ]);
    expect(fetched.importance.best).toEqual({ startLayer: 2, endLayer: 3, score: 0.7492 });
    expect(fetched.stability).toMatchObject({ stability: 1, hiddenStateCosine: 0.935, parameterReduction: 0.1747, tasks: [{ task: 'copa', stability: 1 }], plan: { id: created.id } });
    const { model } = await data(gateway.url, 'query ($id: ID!) { model(id: $id) { importance { blockSize } } }', { id: modelId });
    expect(model.importance).toHaveLength(2);

    const badLimit = await failure(gateway.url, 'query ($id: ID!) { plan(id: $id) { events(limit: 0) { seq } } }', { id: created.id });
    expect(badLimit.code).toBe('BAD_USER_INPUT');
    expect(badLimit.message).toContain('limit');
  });
});
