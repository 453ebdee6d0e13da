/**
 * Attacks on where sources may come from, against a real gateway process (`npm start`'s binary), as a
 * MEMBER of a second tenant: files outside STREAMLINE_FILE_ROOTS (directly, through `..`, `%2e%2e`, a
 * symlink, a symlinked directory), an existence oracle (missing and existing files outside the roots get
 * one answer), the gateway's data directory and another tenant's outputs, files whose contents would end
 * up in an error message, `fromPlan` with another tenant's plan, s3:// outside STREAMLINE_S3_SOURCES and
 * hf:// without STREAMLINE_HF=on. After each attack the gateway still answers /healthz within 1 s.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readLlama2cCheckpoint, writeHfFolder } from '@streamline/engine';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertHealthy, processGraphql, useGatewayProcess, type GatewayProcess } from './fixtures/gateway-process.js';
import { runWithShared, SHARED, STORIES_TOKENIZER_URI, STORIES_URI, TINYSTORIES_URI } from './fixtures/shared.js';

const REGISTER = `mutation ($input: RegisterModelInput!) { registerModel(input: $input) { id source status numLayers fromPlan } }`;
const CREATE = `mutation ($input: CreatePruningPlanInput!) { createPruningPlan(input: $input) { id status } }`;
const PLAN = `query ($id: ID!) { plan(id: $id) { id status error outputUri } }`;

/** Tenant files live under `root` (a file root); the gateway's data directory is inside it too, as a careless operator might set it. */
const scratch = mkdtempSync(join(tmpdir(), 'streamline-security-sources-'));
const root = join(scratch, 'root');
const outside = join(scratch, 'outside');
const dataDir = join(root, 'gateway-data');
mkdirSync(root);
mkdirSync(outside);
/** A secret beside the roots, as text and as a would-be model. */
const SECRET = 'TOP-SECRET-7731-do-not-echo';
writeFileSync(join(outside, 'secret.txt'), `${SECRET}\n`);
writeFileSync(join(outside, 'secret.jsonl'), `{"text": "${SECRET}"}\n`);
// a symlink inside the root to a file outside, to a directory outside, and one dangling
symlinkSync('/etc/passwd', join(root, 'passwd.bin'));
symlinkSync(join(outside, 'secret.txt'), join(root, 'secret-link.txt'));
symlinkSync(outside, join(root, 'outside-dir'));
symlinkSync(join(outside, 'no-such-file.txt'), join(root, 'dangling.txt'));
// files under the root whose contents must never come back in a message
writeFileSync(join(root, 'header.bin'), `root:x:0:0:root:/root:/bin/bash ${SECRET}\n`); // its first int32 is 1953460082
mkdirSync(join(root, 'garbage-json'));
writeFileSync(join(root, 'garbage-json', 'config.json'), `{"model_type": "llama", ${SECRET} }`);
// the operator's default calibration set lives outside the roots: not confined (STREAMLINE_DEFAULT_CALIBRATION)
const operatorCalibration = join(outside, 'operator-calibration.txt');
if (runWithShared) copyFileSync(join(SHARED, 'data/text/tinystories_val_excerpt.txt'), operatorCalibration);
// a real Hugging Face folder (stories260K converted) whose config.json then gets a value of the wrong type
if (runWithShared) {
  const { config, weights } = readLlama2cCheckpoint(join(SHARED, 'models/stories260K/stories260K.bin'));
  writeHfFolder(join(root, 'garbage-value'), { config, weights, dtype: 'F32' });
  writeFileSync(join(root, 'garbage-value', 'config.json'), JSON.stringify({ ...config, hidden_size: SECRET }));
}
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const fileUri = (path: string) => `file://${path}`;

function errorOf(response: { body: any }): { code: string; message: string } {
  const error = response.body.errors?.[0];
  expect(error, `expected an error, got ${JSON.stringify(response.body)}`).toBeDefined();
  return { code: error.extensions?.code, message: error.message };
}

/** The answer with the URI taken out, to compare answers for two different URIs. */
const shape = (message: string, uri: string) => message.split(JSON.stringify(uri)).join('<uri>').split(uri).join('<uri>');

function expectNothingRead(message: string): void {
  expect(message).not.toContain(SECRET);
  expect(message).not.toMatch(/root:x|1953460082|"dim"|\{"/);
}

describe.runIf(runWithShared)('security: sources a tenant may name', () => {
  const gw = useGatewayProcess(() => ({
    STREAMLINE_DATA_DIR: dataDir,
    STREAMLINE_FILE_ROOTS: `${root}:${SHARED}`,
    STREAMLINE_S3_SOURCES: 's3://tenant-models/models/',
    STREAMLINE_HF: '',
    STREAMLINE_STORAGE: '',
    STREAMLINE_WORKERS: '1',
    STREAMLINE_DEFAULT_CALIBRATION: fileUri(operatorCalibration),
  }));
  let member: string;

  beforeAll(async () => {
    const tenant = await processGraphql(gw.current, `mutation { createTenant(name: "second") { id } }`);
    const tenantId = tenant.body.data.createTenant.id;
    const token = await processGraphql(gw.current, `mutation ($t: ID!) { createApiToken(tenantId: $t, role: MEMBER) { token } }`, { t: tenantId });
    member = token.body.data.createApiToken.token;
  });

  const register = (input: Record<string, unknown>, token = member) => processGraphql(gw.current, REGISTER, { input: { name: 'x', ...input } }, token);
  const refusedSource = async (source: string, extra: Record<string, unknown> = {}) => {
    const error = errorOf(await register({ source, ...extra }));
    await assertHealthy(gw.current);
    return error;
  };

  it('refuses /etc/shadow and /etc/passwd without a byte of them, as it refuses a missing file there', async () => {
    const answers = [];
    for (const path of ['/etc/shadow', '/etc/passwd', '/etc/no-such-file-here.bin']) {
      const error = await refusedSource(fileUri(path));
      expect(error.code).toBe('BAD_USER_INPUT');
      expect(error.message).toContain('STREAMLINE_FILE_ROOTS');
      expectNothingRead(error.message);
      answers.push(shape(error.message, fileUri(path)));
    }
    expect(new Set(answers).size).toBe(1);
  });

  it('refuses ../ and %2e%2e escapes from a root, with the answer an outside path gets', async () => {
    const direct = await refusedSource(fileUri(join(outside, 'secret.txt')));
    for (const uri of [`file://${root}/../outside/secret.txt`, `file://${root}/%2e%2e/outside/secret.txt`, `file://${root}/%2E%2E/%2e%2e/${'x'.repeat(3)}/../../etc/passwd`]) {
      const error = await refusedSource(uri);
      expect(error.code).toBe('BAD_USER_INPUT');
      expect(shape(error.message, uri)).toBe(shape(direct.message, fileUri(join(outside, 'secret.txt'))));
      expectNothingRead(error.message);
    }
  });

  it('refuses a symlink inside a root that points outside (to a file, to a directory, dangling): one answer, no oracle', async () => {
    const answers = new Set<string>();
    for (const path of [join(root, 'passwd.bin'), join(root, 'secret-link.txt'), join(root, 'outside-dir', 'secret.txt'), join(root, 'outside-dir', 'missing.txt'), join(root, 'dangling.txt')]) {
      const error = await refusedSource(fileUri(path));
      expect(error.code).toBe('BAD_USER_INPUT');
      expectNothingRead(error.message);
      answers.add(shape(error.message, fileUri(path)));
    }
    expect(answers.size).toBe(1);
  });

  it('answers a tokenizer, a calibration set and evaluation files outside the roots alike whether they exist or not', async () => {
    for (const [existing, missing] of [
      ['/etc/passwd', '/etc/no-such-tokenizer.bin'],
      [join(outside, 'secret.txt'), join(outside, 'missing.txt')],
    ]) {
      const a = await refusedSource(STORIES_URI, { tokenizer: fileUri(existing) });
      const b = await refusedSource(STORIES_URI, { tokenizer: fileUri(missing) });
      expect([a.code, b.code]).toEqual(['BAD_USER_INPUT', 'BAD_USER_INPUT']);
      expect(shape(a.message, fileUri(existing))).toBe(shape(b.message, fileUri(missing)));
    }
    const { body } = await register({ source: STORIES_URI, tokenizer: STORIES_TOKENIZER_URI });
    const modelId = body.data.registerModel.id;
    const plan = async (input: Record<string, unknown>) => {
      const error = errorOf(await processGraphql(gw.current, CREATE, { input: { modelId, layersToPrune: 1, calibration: { source: TINYSTORIES_URI, samples: 4, seqLen: 32 }, ...input } }, member));
      await assertHealthy(gw.current);
      return error;
    };
    for (const field of ['calibration', 'perplexity', 'tasks'] as const) {
      const answers = [];
      for (const path of [join(outside, field === 'tasks' ? 'secret.jsonl' : 'secret.txt'), join(outside, field === 'tasks' ? 'missing.jsonl' : 'missing.txt')]) {
        const uri = fileUri(path);
        const input =
          field === 'calibration' ? { calibration: { source: uri, samples: 4, seqLen: 32 } } : field === 'perplexity' ? { evaluation: { perplexity: [{ source: uri }] } } : { evaluation: { tasks: [uri] } };
        const error = await plan(input);
        expect(error.code).toBe('BAD_USER_INPUT');
        expect(error.message).toContain('STREAMLINE_FILE_ROOTS');
        expectNothingRead(error.message);
        answers.push(shape(error.message, uri));
      }
      expect(answers[0]).toBe(answers[1]);
    }
  });

  it('never reads file contents into an error: a bad llama2.c header, JSON that does not parse, a config value of the wrong type', async () => {
    const header = await refusedSource(fileUri(join(root, 'header.bin')));
    expect(header.code).toBe('BAD_USER_INPUT');
    expect(header.message).toContain('is not a model this gateway can read');
    expectNothingRead(header.message);
    const json = await refusedSource(fileUri(join(root, 'garbage-json')));
    expect(json.message).toContain('does not parse');
    expectNothingRead(json.message);
    const value = await refusedSource(fileUri(join(root, 'garbage-value')));
    expect(value.message).toContain('hidden_size');
    expectNothingRead(value.message);
  });

  let ownPlan: string;
  it('refuses the data directory and another tenant’s outputs folder; fromPlan with another tenant’s plan is NOT_FOUND', async () => {
    // the default tenant (admin token) prunes stories260K; its output lands in <data dir>/outputs/<plan id>
    const model = await register({ source: STORIES_URI, tokenizer: STORIES_TOKENIZER_URI }, gw.current.adminToken);
    const created = await processGraphql(gw.current, CREATE, {
      input: { modelId: model.body.data.registerModel.id, layersToPrune: 1, replacement: 'NONE', calibration: { source: TINYSTORIES_URI, samples: 4, seqLen: 32 } },
    });
    ownPlan = created.body.data.createPruningPlan.id;
    let plan: any;
    for (const deadline = Date.now() + 120_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 250))) {
      plan = (await processGraphql(gw.current, PLAN, { id: ownPlan })).body.data.plan;
      if (plan.status === 'SUCCEEDED' || plan.status === 'FAILED') break;
    }
    expect(plan).toMatchObject({ status: 'SUCCEEDED', error: null });
    expect(plan.outputUri).toContain(`outputs/${ownPlan}`);

    for (const path of [join(dataDir, 'outputs', ownPlan), join(dataDir, 'outputs', ownPlan, 'config.json'), join(dataDir, 'streamline.db'), dataDir]) {
      const error = await refusedSource(fileUri(path));
      expect(error.code).toBe('BAD_USER_INPUT');
      expect(error.message).toContain('STREAMLINE_FILE_ROOTS');
    }
    const theirs = errorOf(await register({ fromPlan: ownPlan }));
    const missing = errorOf(await register({ fromPlan: '00000000-0000-4000-8000-000000000000' }));
    expect([theirs.code, missing.code]).toEqual(['NOT_FOUND', 'NOT_FOUND']);
    expect(theirs.message.replace(ownPlan, '<id>')).toBe(missing.message.replace('00000000-0000-4000-8000-000000000000', '<id>'));
    await assertHealthy(gw.current);
  });

  it('registers one’s own plan output with fromPlan (not by path), and plans on it run', async () => {
    const both = errorOf(await register({ fromPlan: ownPlan, source: STORIES_URI }, gw.current.adminToken));
    expect(both).toMatchObject({ code: 'BAD_USER_INPUT', message: expect.stringContaining('exactly one of source') });
    const { body } = await register({ name: 'pruned', fromPlan: ownPlan }, gw.current.adminToken);
    expect(body.errors).toBeUndefined();
    expect(body.data.registerModel).toMatchObject({ status: 'READY', numLayers: 4, fromPlan: ownPlan });
    expect(body.data.registerModel.source).toContain(`outputs/${ownPlan}`);
    // a plan on it passes the gateway's checks and the worker's: the output is in the data directory (vouched for by
    // fromPlan), and with no calibration set given, the operator's default outside the roots is used (not confined)
    const created = await processGraphql(gw.current, CREATE, { input: { modelId: body.data.registerModel.id, layersToPrune: 1, dryRun: true } });
    expect(created.body.errors).toBeUndefined();
    let plan: any;
    for (const deadline = Date.now() + 120_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 250))) {
      plan = (await processGraphql(gw.current, PLAN, { id: created.body.data.createPruningPlan.id })).body.data.plan;
      if (plan.status === 'SUCCEEDED' || plan.status === 'FAILED') break;
    }
    expect(plan).toMatchObject({ status: 'SUCCEEDED', error: null });
    await assertHealthy(gw.current);
  });

  it('fails a plan whose input was swapped for a symlink after the gateway checked it (the worker re-checks), and the worker keeps serving', async () => {
    const waitFor = async (id: string, statuses: string[]) => {
      for (const deadline = Date.now() + 120_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
        const plan = (await processGraphql(gw.current, PLAN, { id }, member)).body.data.plan;
        if (statuses.includes(plan.status)) return plan;
      }
      throw new Error(`plan ${id} never reached ${statuses.join(' or ')}`);
    };
    const { body } = await register({ source: STORIES_URI, tokenizer: STORIES_TOKENIZER_URI });
    const modelId = body.data.registerModel.id;
    const create = async (input: Record<string, unknown>) => {
      const created = await processGraphql(gw.current, CREATE, { input: { modelId, layersToPrune: 1, ...input } }, member);
      expect(created.body.errors).toBeUndefined();
      return created.body.data.createPruningPlan.id as string;
    };
    // the only worker is kept busy, so the next plan waits in the queue while its file is swapped
    const busy = await create({ replacement: 'LAYER', calibration: { source: TINYSTORIES_URI, samples: 32, seqLen: 64 }, training: { epochs: 50 } });
    await waitFor(busy, ['RUNNING']);
    const victimFile = join(root, 'victim.txt');
    copyFileSync(join(SHARED, 'data/text/tinystories_val_excerpt.txt'), victimFile);
    const victim = await create({ dryRun: true, calibration: { source: fileUri(victimFile), samples: 4, seqLen: 32 } });
    rmSync(victimFile);
    symlinkSync(join(outside, 'secret.txt'), victimFile);
    await processGraphql(gw.current, `mutation ($id: ID!) { cancelPlan(id: $id) { id } }`, { id: busy }, member);
    const failed = await waitFor(victim, ['FAILED', 'SUCCEEDED']);
    expect(failed.status).toBe('FAILED');
    expect(failed.error).toContain('STREAMLINE_FILE_ROOTS');
    expect(failed.error).toContain('refused when the worker opened it');
    expectNothingRead(failed.error);
    await assertHealthy(gw.current);
    // the worker goes on: the next plan runs
    const next = await create({ dryRun: true, calibration: { source: TINYSTORIES_URI, samples: 4, seqLen: 32 } });
    expect(await waitFor(next, ['SUCCEEDED', 'FAILED'])).toMatchObject({ status: 'SUCCEEDED', error: null });
  });

  it('refuses s3:// outside STREAMLINE_S3_SOURCES and hf:// without STREAMLINE_HF=on, naming the setting', async () => {
    for (const uri of ['s3://other-bucket/models/x/', 's3://tenant-models/private/x/', 's3://tenant-models/models/../private/x/', 's3://tenant-models/models-old/x/']) {
      const error = await refusedSource(uri);
      expect(error).toMatchObject({ code: 'BAD_USER_INPUT', message: expect.stringContaining('STREAMLINE_S3_SOURCES') });
    }
    const hf = await refusedSource('hf://karpathy/tinyllamas');
    expect(hf).toMatchObject({ code: 'BAD_USER_INPUT', message: expect.stringContaining('STREAMLINE_HF=on') });
  });
});

describe.runIf(runWithShared)('security: file:// with STREAMLINE_FILE_ROOTS unset', () => {
  const gw = useGatewayProcess({ STREAMLINE_FILE_ROOTS: '', STREAMLINE_S3_SOURCES: '', STREAMLINE_HF: '' });

  it('refuses every file:// source, naming the setting, existing or not', async () => {
    const gateway: GatewayProcess = gw.current;
    for (const uri of [STORIES_URI, 'file:///etc/passwd', 'file:///no/such/file.bin']) {
      const error = errorOf(await processGraphql(gateway, REGISTER, { input: { name: 'x', source: uri } }));
      expect(error.code).toBe('BAD_USER_INPUT');
      expect(error.message).toContain('file:// sources are disabled');
      expect(error.message).toContain('STREAMLINE_FILE_ROOTS');
      await assertHealthy(gateway);
    }
  });
});
