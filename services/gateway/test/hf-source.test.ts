/**
 * Models registered from hf://org/name[@revision], against a local server laid out like the Hub (this
 * machine has no internet): inspected without downloading the weights, run by a real local worker that
 * downloads them, with precise errors for a missing repository and a refused token, and the token in
 * no answer.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportGguf, readLlama2cCheckpoint, writeHfFolder } from '@streamline/engine';
import { startHub, stopHubs, type Hub } from '@streamline/testing/hub-server';
import { data, failure, graphql, TEST_SOURCES, useGateways } from './fixtures/gateway.js';

/** hf:// sources need STREAMLINE_HF=on. */
const HF_ON = { ...TEST_SOURCES, hf: true };
import { runWithShared, SHARED, TINYSTORIES_URI } from './fixtures/shared.js';
import { CREATE, REGISTER, waitForStatus } from './fixtures/workers.js';

const gateways = useGateways();
const HF_TOKEN = 'hf_gatewayTestTokenNeverAnswered';
const COMMIT = 'c0ffee'.padEnd(40, '0');
const scratch = mkdtempSync(join(tmpdir(), 'streamline-hf-source-'));
let hub: Hub;
let ggufHub: Hub;

beforeAll(async () => {
  if (!runWithShared) return;
  const folder = join(scratch, 'stories260K-hf');
  const { config, weights } = readLlama2cCheckpoint(join(SHARED, 'models/stories260K/stories260K.bin'));
  writeHfFolder(folder, { config, weights, dtype: 'F32' });
  copyFileSync(join(SHARED, 'models/stories260K/tok512.bin'), join(folder, 'tokenizer.bin'));
  hub = await startHub('karpathy/stories260K', folder, COMMIT, HF_TOKEN);
  // The same model as one GGUF file (F16, its llama2.c tokenizer as llama metadata) in a repository of its own.
  const ggufFolder = join(scratch, 'stories260K-gguf');
  mkdirSync(ggufFolder);
  exportGguf(join(SHARED, 'models/stories260K/stories260K.bin'), join(ggufFolder, 'stories260K.F16.gguf'), { type: 'F16' });
  ggufHub = await startHub('karpathy/stories260K-gguf', ggufFolder, COMMIT, HF_TOKEN);
});
afterAll(async () => {
  await stopHubs();
  rmSync(scratch, { recursive: true, force: true });
});

describe.runIf(runWithShared)('hf:// model sources', () => {
  it('registers from the Hub reading only config.json and the safetensors header, and a worker runs a dry run from it', async () => {
    const gateway = await gateways.start({ workers: 1, sources: HF_ON, storageEnv: { HF_ENDPOINT: hub.endpoint, HF_TOKEN } });
    const { registerModel: model } = await data(gateway.url, `mutation ($input: RegisterModelInput!) { registerModel(input: $input) { id status architecture numLayers numParameters source } }`, {
      input: { name: 'stories', source: `hf://karpathy/stories260K@${COMMIT}` },
    });
    expect(model).toMatchObject({ status: 'READY', architecture: 'llama', numLayers: 5, numParameters: 260032, source: `hf://karpathy/stories260K@${COMMIT}` });
    // the weights are never downloaded at registration: a ranged read of the safetensors header only
    const weightBytes = 260032 * 4;
    expect(hub.bytesServed.get('model.safetensors')).toBeGreaterThan(0);
    expect(hub.bytesServed.get('model.safetensors')).toBeLessThan(weightBytes / 10);
    expect(hub.bytesServed.get('config.json')).toBeGreaterThan(0);

    const { createPruningPlan: plan } = await data(gateway.url, CREATE, {
      input: { modelId: model.id, layersToPrune: 2, dryRun: true, calibration: { source: TINYSTORIES_URI, samples: 8, seqLen: 64 } },
    });
    const done = await waitForStatus(gateway.url, plan.id, ['SUCCEEDED', 'FAILED']);
    expect(done.error).toBeNull();
    expect(done.status).toBe('SUCCEEDED');
    expect(hub.bytesServed.get('model.safetensors')).toBeGreaterThan(weightBytes); // the worker downloaded them
    expect(done.profiles.find((p: { metric: string; blockSize: number }) => p.metric === 'COSINE' && p.blockSize === 2).best.startLayer).toBe(2);
  });

  it('registers a GGUF file from hf://org/name@revision/file.gguf (tokenizer from the file), and a worker runs a dry run from it', async () => {
    const gateway = await gateways.start({ workers: 1, sources: HF_ON, storageEnv: { HF_ENDPOINT: ggufHub.endpoint, HF_TOKEN } });
    const source = `hf://karpathy/stories260K-gguf@${COMMIT}/stories260K.F16.gguf`;
    const { registerModel: model } = await data(gateway.url, `mutation ($input: RegisterModelInput!) { registerModel(input: $input) { id status architecture numLayers numParameters source } }`, {
      input: { name: 'stories-gguf', source },
    });
    expect(model).toMatchObject({ status: 'READY', architecture: 'llama', numLayers: 5, numParameters: 260032, source });
    const { createPruningPlan: plan } = await data(gateway.url, CREATE, {
      input: { modelId: model.id, layersToPrune: 2, dryRun: true, calibration: { source: TINYSTORIES_URI, samples: 8, seqLen: 64 } },
    });
    const done = await waitForStatus(gateway.url, plan.id, ['SUCCEEDED', 'FAILED']);
    expect(done.error).toBeNull();
    expect(done.status).toBe('SUCCEEDED');
    // each inspection reads the whole file (it is under the first 1 MiB read); the worker downloaded it too
    const size = statSync(join(scratch, 'stories260K-gguf', 'stories260K.F16.gguf')).size;
    expect(ggufHub.bytesServed.get('stories260K.F16.gguf')! % size).toBe(0);
    expect(ggufHub.bytesServed.get('stories260K.F16.gguf')).toBeGreaterThanOrEqual(2 * size);
    expect(done.profiles.find((p: { metric: string; blockSize: number }) => p.metric === 'COSINE' && p.blockSize === 2).best.startLayer).toBe(2);
  });

  it('names a missing repository and a refused token, and never answers with the token', async () => {
    const gateway = await gateways.start({ sources: HF_ON, storageEnv: { HF_ENDPOINT: hub.endpoint, HF_TOKEN } });
    const missing = await failure(gateway.url, REGISTER, { input: { name: 'x', source: 'hf://karpathy/absent' } });
    expect(missing.message).toContain('hf://karpathy/absent');
    expect(missing.message).toMatch(/source/);

    const refused = await gateways.start({ sources: HF_ON, storageEnv: { HF_ENDPOINT: hub.endpoint, HF_TOKEN: 'hf_wrongTokenNeverAnswered' } });
    const denied = await graphql(refused.url, REGISTER, { input: { name: 'x', source: 'hf://karpathy/stories260K' } });
    expect(denied.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
    expect(denied.errors?.[0].message).toMatch(/401|denied/);
    expect(JSON.stringify([missing, denied])).not.toMatch(/hf_gatewayTestTokenNeverAnswered|hf_wrongTokenNeverAnswered/);
  });
});
