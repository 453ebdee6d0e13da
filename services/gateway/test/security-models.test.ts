/**
 * Hostile models against a real gateway process (bin/streamline-gateway.js, as `npm start` runs it), one
 * process for the file, attacks in sequence, /healthz answering within 1 s after each:
 * - config sizes out of bounds (1e9 layers once ran the gateway out of memory, 1e6 blocked it for 34 s
 *   and registered 45 G "parameters") are refused with BAD_USER_INPUT naming the field, value and bound;
 * - an inspection that takes seconds runs in a worker thread: /healthz answers meanwhile;
 * - a model whose weights hold NaN registers (headers only), but its plan FAILS with INVALID_WEIGHTS
 *   naming the tensor, the model becomes FAILED, a new plan is refused with INVALID_WEIGHTS, and no
 *   query about the model or its plans answers INTERNAL.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { TINY_CONFIGS, writeTinyModel } from '../../engine/test/fixtures/tiny-models.js';
import { assertHealthy, processGraphql, useGatewayProcess } from './fixtures/gateway-process.js';
import { modelWithHugeHeader } from './fixtures/hostile-models.js';

const attacks = mkdtempSync(join(tmpdir(), 'streamline-security-models-'));
afterAll(() => rmSync(attacks, { recursive: true, force: true }));

const REGISTER = 'mutation ($input: RegisterModelInput!) { registerModel(input: $input) { id status error errorCode numLayers numParameters } }';
const CREATE_PLAN = 'mutation ($input: CreatePruningPlanInput!) { createPruningPlan(input: $input) { id status } }';

/** A tiny llama folder whose config.json is replaced by `config` (its weights stay those of the tiny model). */
function modelWithConfig(changes: Record<string, unknown>): string {
  const dir = writeTinyModel('llama');
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...TINY_CONFIGS.llama, ...changes }));
  return dir;
}

/**
 * A tiny llama's config.json beside a model.safetensors whose header lists `entries` one-element tensors
 * (tens of MB of JSON): seconds to parse, no weights needed — inspection reads only headers.
 */

describe('hostile models against a gateway process', () => {
  const gw = useGatewayProcess({ STREAMLINE_WORKERS: '1' });

  async function register(name: string, dir: string) {
    return processGraphql(gw.current, REGISTER, { input: { name, source: pathToFileURL(dir).href } });
  }

  // The message names the field and the engine's bound, never the value read from the file.
  it.each([
    ['num_hidden_layers', 1e9, 'num_hidden_layers (accepted: an integer from 1 to 1024)'],
    ['num_hidden_layers', 1e6, 'num_hidden_layers (accepted: an integer from 1 to 1024)'],
    ['num_hidden_layers', -1, 'num_hidden_layers (accepted: an integer from 1 to 1024)'],
    ['num_hidden_layers', '12', 'num_hidden_layers (accepted: an integer from 1 to 1024)'],
    ['num_hidden_layers', 3.5, 'num_hidden_layers (accepted: an integer from 1 to 1024)'],
    ['vocab_size', 2 ** 40, 'vocab_size (accepted: an integer from 1 to 1048576)'],
    ['hidden_size', 1e7, 'hidden_size (accepted: an integer from 1 to 65536)'],
    ['intermediate_size', 1e15, 'intermediate_size (accepted: an integer from 1 to 1048576)'],
    ['num_attention_heads', 1e6, 'num_attention_heads (accepted: an integer from 1 to 32)'],
  ])('refuses %s = %j with BAD_USER_INPUT naming the field and the bound, not the value', async (field, value, named) => {
    const dir = modelWithConfig({ [field]: value });
    const { body } = await register(`bounds-${field}`, dir);
    expect(body.data?.registerModel ?? null).toBeNull();
    expect(body.errors[0].extensions.code).toBe('BAD_USER_INPUT');
    expect(body.errors[0].message).toContain(`is not a model this gateway can read: config.json has an invalid ${named}`);
    // The source URI is the caller's own (a random temp path may hold "-1"); the rest must not quote the value.
    expect(body.errors[0].message.replace(pathToFileURL(dir).href, '<source>')).not.toContain(String(value));
    await assertHealthy(gw.current);
  });

  it('answers /healthz while a slow inspection (a safetensors header of 600 000 entries) runs', async () => {
    const dir = modelWithHugeHeader(600_000);
    let inFlight = true;
    const registering = register('huge-header', dir).finally(() => (inFlight = false));
    await new Promise((resolve) => setTimeout(resolve, 300));
    await assertHealthy(gw.current);
    expect(inFlight).toBe(true); // the inspection was still running when /healthz answered
    const { body } = await registering;
    expect(body.errors?.[0]?.extensions?.code ?? 'none').not.toBe('INTERNAL');
    await assertHealthy(gw.current);
  });

  it('fails a plan on NaN weights with INVALID_WEIGHTS naming the tensor, marks the model FAILED, refuses new plans, and never answers INTERNAL', async () => {
    const tensor = 'model.layers.1.mlp.down_proj.weight';
    const dir = writeTinyModel('llama', { edit: (weights) => void weights.get(tensor)!.data.fill(Number.NaN) });
    const { body: registered } = await register('nan-weights', dir);
    expect(registered.errors).toBeUndefined();
    const model = registered.data.registerModel;
    expect(model.status).toBe('READY'); // headers carry no values: registration cannot know

    const calibration = join(attacks, 'ids.jsonl');
    writeFileSync(calibration, Array.from({ length: 6 }, (_, i) => JSON.stringify({ input_ids: [1, 2 + i, 7, 9, 11, 3, 5, 8] })).join('\n'));
    const planInput = { modelId: model.id, layersToPrune: 1, replacement: 'NONE', calibration: { source: pathToFileURL(calibration).href, samples: 4, seqLen: 8 } };
    const { body: created } = await processGraphql(gw.current, CREATE_PLAN, { input: planInput });
    expect(created.errors).toBeUndefined();
    const planId = created.data.createPruningPlan.id;

    const PLAN = `query ($id: ID!) { plan(id: $id) { id status stage progress error errorCode removedLayers startLayer outputUri prunedParameters originalParameters
      importance { blockSize best { score } scores { startLayer score } } profiles { blockSize scores { score } } stability { stability parameterReduction perplexity { dataset } tasks { task } }
      events(limit: 100) { seq stage progress message } model { id status error errorCode } } }`;
    let plan: any = null;
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline) {
      const { body } = await processGraphql(gw.current, PLAN, { id: planId });
      expect(body.errors).toBeUndefined();
      plan = body.data.plan;
      if (plan.status === 'FAILED' || plan.status === 'SUCCEEDED') break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(plan.status).toBe('FAILED');
    expect(plan.errorCode).toBe('INVALID_WEIGHTS');
    expect(plan.error).toBe(`tensor ${tensor} holds NaN/infinite values`);
    expect(plan.stability).toBeNull();
    expect(plan.importance).toBeNull();
    expect(plan.model).toEqual({ id: model.id, status: 'FAILED', error: plan.error, errorCode: 'INVALID_WEIGHTS' });
    await assertHealthy(gw.current);

    const { body: refused } = await processGraphql(gw.current, CREATE_PLAN, { input: planInput });
    expect(refused.data?.createPruningPlan ?? null).toBeNull();
    expect(refused.errors[0].extensions.code).toBe('INVALID_WEIGHTS');
    expect(refused.errors[0].message).toContain(tensor);

    // Everything that reads the model, its plans, importance and stability answers without an error.
    const { body: models } = await processGraphql(
      gw.current,
      `{ models { id status error errorCode numParameters importance { blockSize } plans { id status errorCode stability { stability } importance { blockSize } profiles { blockSize } } }
         plans { id status error errorCode model { status } stability { stability hiddenStateCosine } } }`,
    );
    expect(models.errors).toBeUndefined();
    expect(models.data.models.find((m: { id: string }) => m.id === model.id)).toMatchObject({ status: 'FAILED', errorCode: 'INVALID_WEIGHTS', importance: [] });
    expect(models.data.plans.filter((p: { status: string }) => p.status !== 'FAILED')).toEqual([]);
    await assertHealthy(gw.current);
  });

  it('fails a plan on finite weights that overflow float32 in the forward pass with INVALID_WEIGHTS, never storing NaN scores', async () => {
    const dir = writeTinyModel('llama', { edit: (weights) => void weights.get('model.layers.0.mlp.down_proj.weight')!.data.fill(3e38) });
    const { body: registered } = await register('overflowing-weights', dir);
    const model = registered.data.registerModel;
    const calibration = join(attacks, 'ids-overflow.jsonl');
    writeFileSync(calibration, Array.from({ length: 6 }, (_, i) => JSON.stringify({ input_ids: [1, 2 + i, 7, 9, 11, 3, 5, 8] })).join('\n'));
    const { body: created } = await processGraphql(gw.current, CREATE_PLAN, {
      input: { modelId: model.id, layersToPrune: 1, replacement: 'NONE', dryRun: true, calibration: { source: pathToFileURL(calibration).href, samples: 4, seqLen: 8 } },
    });
    expect(created.errors).toBeUndefined();
    const PLAN = 'query ($id: ID!) { plan(id: $id) { status error errorCode importance { scores { score } } profiles { blockSize scores { score } } model { status errorCode importance { scores { score } } } } }';
    let plan: any = null;
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline) {
      const { body } = await processGraphql(gw.current, PLAN, { id: created.data.createPruningPlan.id });
      expect(body.errors).toBeUndefined();
      plan = body.data.plan;
      if (plan.status === 'FAILED' || plan.status === 'SUCCEEDED') break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(plan).toMatchObject({ status: 'FAILED', errorCode: 'INVALID_WEIGHTS', profiles: [], model: { status: 'FAILED', errorCode: 'INVALID_WEIGHTS', importance: [] } });
    expect(plan.error).toBe("the model's forward pass produced NaN/infinite values (importance scores of block size 1); its weights overflow float32");
    await assertHealthy(gw.current);
  });
});
