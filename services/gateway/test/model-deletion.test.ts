/**
 * deleteModel: refused while the model has plans (CONFLICT with their count); with force, its running
 * plan is cancelled first, and the model goes with every plan, their work folders and outputs, except an
 * output registered as a model of its own.
 */
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { claimAsWorker, completeAsWorker } from './fixtures/claim.js';
import { data, failure, useGateways } from './fixtures/gateway.js';
import { runWithShared, STORIES_TOKENIZER_URI, STORIES_URI, TINYSTORIES_URI } from './fixtures/shared.js';

const REGISTER = 'mutation ($input: RegisterModelInput!) { registerModel(input: $input) { id } }';
const CREATE = 'mutation ($input: CreatePruningPlanInput!) { createPruningPlan(input: $input) { id } }';
const DELETE = 'mutation ($id: ID!, $force: Boolean) { deleteModel(id: $id, force: $force) }';
const PLAN = 'query ($id: ID!) { plan(id: $id) { id status } }';

describe.skipIf(!runWithShared)('deleteModel', () => {
  const gateways = useGateways();

  it('refuses a model with plans, naming how many; with force cancels, deletes and removes their files', async () => {
    const dataDir = gateways.tempDir();
    const gateway = await gateways.start({ dataDir });
    const register = async (input: Record<string, unknown>) => (await data(gateway.url, REGISTER, { input })).registerModel.id as string;
    const modelId = await register({ name: 'stories260K', source: STORIES_URI, tokenizer: STORIES_TOKENIZER_URI });
    const create = async () => (await data(gateway.url, CREATE, { input: { modelId, layersToPrune: 2, calibration: { source: TINYSTORIES_URI } } })).createPruningPlan.id as string;

    // Two SUCCEEDED plans with outputs in the data directory (one of them registered as a model), one RUNNING, one QUEUED.
    const outputs: Record<string, string> = {};
    for (const name of ['kept', 'removed']) {
      const planId = await create();
      await claimAsWorker(gateway.services, planId);
      const dir = join(dataDir, 'outputs', planId);
      mkdirSync(dir, { recursive: true });
      copyFileSync(new URL(STORIES_URI).pathname, join(dir, 'model.bin'));
      mkdirSync(join(dataDir, 'work', planId), { recursive: true });
      writeFileSync(join(dataDir, 'work', planId, 'pairs.bin'), 'x');
      await completeAsWorker(gateway.services, planId, { outputUri: pathToFileURL(join(dir, 'model.bin')).href });
      outputs[name] = planId;
    }
    const derived = await register({ name: 'pruned', fromPlan: outputs.kept });
    const running = await create();
    await claimAsWorker(gateway.services, running, 'worker-1');
    const queued = await create();

    const refused = await failure(gateway.url, DELETE, { id: modelId });
    expect(refused.code).toBe('CONFLICT');
    expect(refused.message).toContain('has 4 plan(s) (2 SUCCEEDED, 1 RUNNING, 1 QUEUED)');
    expect(refused.message).toContain('force: true');
    expect((await data(gateway.url, PLAN, { id: queued })).plan.status).toBe('QUEUED');

    expect(await data(gateway.url, DELETE, { id: modelId, force: true })).toEqual({ deleteModel: true });
    for (const planId of [...Object.values(outputs), running, queued]) {
      expect((await data(gateway.url, PLAN, { id: planId })).plan).toBeNull();
    }
    // The running plan's worker learns at its next heartbeat that its plan is gone, and stops.
    expect(await gateway.services.workers.heartbeat(running, 'worker-1')).toEqual({ cancelled: true, ended: true, cancelledCandidates: [] });
    expect(existsSync(join(dataDir, 'outputs', outputs.removed))).toBe(false);
    expect(existsSync(join(dataDir, 'work', outputs.removed))).toBe(false);
    expect(existsSync(join(dataDir, 'work', outputs.kept))).toBe(false);
    // The output registered as a model stays, and so does that model.
    expect(existsSync(join(dataDir, 'outputs', outputs.kept, 'model.bin'))).toBe(true);
    expect((await data(gateway.url, 'query ($id: ID!) { model(id: $id) { id } }', { id: derived })).model).toEqual({ id: derived });
    // A model without plans needs no force.
    const bare = await register({ name: 'bare', source: STORIES_URI, tokenizer: STORIES_TOKENIZER_URI });
    expect(await data(gateway.url, DELETE, { id: bare })).toEqual({ deleteModel: true });
    expect((await failure(gateway.url, DELETE, { id: bare })).code).toBe('NOT_FOUND');
  });
});
