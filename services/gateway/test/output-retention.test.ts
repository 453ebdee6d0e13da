/**
 * STREAMLINE_OUTPUT_RETENTION_DAYS: a gateway started with it removes the outputs of plans that
 * SUCCEEDED longer ago than that, keeps the plans and their figures, and keeps newer outputs and
 * outputs registered as models.
 */
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { settingsFromEnv } from '../src/settings.js';
import { claimAsWorker, completeAsWorker } from './fixtures/claim.js';
import { data, useGateways } from './fixtures/gateway.js';
import { runWithShared, STORIES_TOKENIZER_URI, STORIES_URI, TINYSTORIES_URI } from './fixtures/shared.js';

const DAY_MS = 24 * 60 * 60 * 1000;

describe('STREAMLINE_OUTPUT_RETENTION_DAYS', () => {
  it('is read as whole days; unset or 0 keeps outputs', () => {
    expect(settingsFromEnv({ STREAMLINE_OUTPUT_RETENTION_DAYS: '30' }).outputRetentionDays).toBe(30);
    expect(settingsFromEnv({}).outputRetentionDays).toBeUndefined();
    expect(settingsFromEnv({ STREAMLINE_OUTPUT_RETENTION_DAYS: '0' }).outputRetentionDays).toBeUndefined();
    expect(() => settingsFromEnv({ STREAMLINE_OUTPUT_RETENTION_DAYS: '2 weeks' })).toThrow('STREAMLINE_OUTPUT_RETENTION_DAYS="2 weeks" is not a non-negative integer');
  });

  const gateways = useGateways();

  it.runIf(runWithShared)('removes expired outputs at start, and keeps the plans, newer outputs and outputs registered as models', async () => {
    const dataDir = gateways.tempDir();
    const first = await gateways.start({ dataDir });
    const { registerModel } = await data(first.url, 'mutation ($input: RegisterModelInput!) { registerModel(input: $input) { id } }', {
      input: { name: 'stories260K', source: STORIES_URI, tokenizer: STORIES_TOKENIZER_URI },
    });
    const plans: Record<'old' | 'registered' | 'recent', string> = { old: '', registered: '', recent: '' };
    for (const name of Object.keys(plans) as (keyof typeof plans)[]) {
      const { createPruningPlan } = await data(first.url, 'mutation ($input: CreatePruningPlanInput!) { createPruningPlan(input: $input) { id } }', {
        input: { modelId: registerModel.id, layersToPrune: 2, calibration: { source: TINYSTORIES_URI } },
      });
      await claimAsWorker(first.services, createPruningPlan.id);
      const dir = join(dataDir, 'outputs', createPruningPlan.id);
      mkdirSync(dir, { recursive: true });
      copyFileSync(new URL(STORIES_URI).pathname, join(dir, 'model.bin'));
      await completeAsWorker(first.services, createPruningPlan.id, { outputUri: pathToFileURL(join(dir, 'model.bin')).href });
      plans[name] = createPruningPlan.id;
    }
    await data(first.url, 'mutation ($input: RegisterModelInput!) { registerModel(input: $input) { id } }', { input: { name: 'pruned', fromPlan: plans.registered } });
    const longAgo = new Date(Date.now() - 10 * DAY_MS).toISOString();
    await first.database.db.updateTable('plans').set({ finished_at: longAgo }).where('id', 'in', [plans.old, plans.registered]).execute();
    await first.close();

    const second = await gateways.start({ dataDir, outputRetentionDays: 7 });
    const outputOf = (planId: string) => join(dataDir, 'outputs', planId);
    for (let i = 0; i < 100 && existsSync(outputOf(plans.old)); i++) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(existsSync(outputOf(plans.old))).toBe(false);
    expect(existsSync(join(outputOf(plans.registered), 'model.bin'))).toBe(true);
    expect(existsSync(join(outputOf(plans.recent), 'model.bin'))).toBe(true);
    const { plan } = await data(second.url, 'query ($id: ID!) { plan(id: $id) { status removedLayers prunedParameters } }', { id: plans.old });
    expect(plan).toEqual({ status: 'SUCCEEDED', removedLayers: [2, 3], prunedParameters: 214592 });
  });
});
