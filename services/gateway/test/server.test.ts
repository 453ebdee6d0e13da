/** The HTTP server: probes, ports, settings, and a restart on the same SQLite file losing nothing. */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PlanStage } from '../src/plans/plan.type.js';
import { readConfigFile } from '../src/config-file.js';
import { settingsFromEnv } from '../src/settings.js';
import { SQLITE_FILE } from '../src/store/database.js';
import { data, failure, graphql, useGateways } from './fixtures/gateway.js';
import { runWithShared, STORIES_URI, TINYSTORIES_URI } from './fixtures/shared.js';
import { createTestSchema, hasPostgres } from './fixtures/postgres.js';
import { connect, subscribe } from './fixtures/subscriptions.js';
import { claimAsWorker, completeAsWorker } from './fixtures/claim.js';

describe('gateway server', () => {
  const gateways = useGateways();

  it('serves on a free port with /healthz and /readyz, and /readyz fails when the database does', async () => {
    const gateway = await gateways.start();
    expect(gateway.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/graphql$/);
    expect(gateway.wsUrl).toBe(gateway.url.replace('http:', 'ws:'));
    const base = gateway.url.replace('/graphql', '');
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', database: 'sqlite' });

    await gateway.database.close();
    const down = await fetch(`${base}/readyz`);
    expect(down.status).toBe(503);
    // fixed words for anyone who asks; the driver's own message goes to the log
    expect(await down.json()).toEqual({ status: 'unavailable', database: 'sqlite', error: 'the database does not answer' });
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  });

  it.runIf(hasPostgres('server on PostgreSQL'))('serves from PostgreSQL when given DATABASE_URL, and restarts on the migrated database', async () => {
    const schema = await createTestSchema();
    try {
      const first = await gateways.start({ databaseUrl: schema.url });
      const base = first.url.replace('/graphql', '');
      expect(await (await fetch(`${base}/readyz`)).json()).toEqual({ status: 'ready', database: 'postgres' });
      expect(await data(first.url, '{ models { id } plans { id } }')).toEqual({ models: [], plans: [] });
      await first.close();
      const second = await gateways.start({ databaseUrl: schema.url }); // migrations already applied: a no-op
      expect((await fetch(`${second.url.replace('/graphql', '')}/readyz`)).status).toBe(200);
      await second.close();
    } finally {
      await schema.drop();
    }
  });

  it('keeps its SQLite file in the data directory', async () => {
    const dataDir = join(gateways.tempDir(), 'nested', 'data');
    await gateways.start({ dataDir });
    expect(existsSync(join(dataDir, SQLITE_FILE))).toBe(true);
  });

  it('answers GraphQL’s own refusals with BAD_USER_INPUT', async () => {
    const { url } = await gateways.start();
    expect((await failure(url, '{ models { nope } }')).code).toBe('BAD_USER_INPUT');
    expect((await failure(url, '{ models { id }')).code).toBe('BAD_USER_INPUT');
    const plans = await failure(url, '{ plans(status: DONE) { id } }');
    expect(plans.code).toBe('BAD_USER_INPUT');
    expect(plans.message).toContain('QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED');
    const variable = await failure(url, 'query ($s: PlanStatus) { plans(status: $s) { id } }', { s: 'DONE' });
    expect(variable.code).toBe('BAD_USER_INPUT');
    expect(variable.message).toContain('QUEUED, RUNNING');
  });

  it('reads its settings from the environment', () => {
    expect(settingsFromEnv({})).toMatchObject({ port: 4000, host: '127.0.0.1', databaseUrl: undefined, defaultCalibrationSource: null });
    expect(settingsFromEnv({}).dataDir).toBe(join(process.cwd(), '.streamline'));
    expect(settingsFromEnv({ PORT: '0', STREAMLINE_DATA_DIR: '/tmp/x', DATABASE_URL: 'postgres://db/x' })).toMatchObject({ port: 0, dataDir: '/tmp/x', databaseUrl: 'postgres://db/x' });
    expect(settingsFromEnv({ INIT_CWD: '/work/repo' }).dataDir).toBe('/work/repo/.streamline');
    expect(settingsFromEnv({ INIT_CWD: '/work/repo', STREAMLINE_DATA_DIR: 'data' }).dataDir).toBe('/work/repo/data');
    expect(() => settingsFromEnv({ PORT: 'http' })).toThrow(/PORT="http"/);
    expect(settingsFromEnv({ STREAMLINE_STORAGE: 's3://bucket/prefix' }).storage).toBe('s3://bucket/prefix');
    expect(settingsFromEnv({ INIT_CWD: '/work/repo', STREAMLINE_STORAGE: 'objects' }).storage).toBe('/work/repo/objects');
    expect(() => settingsFromEnv({ STREAMLINE_STORAGE: 's3://Bad_Bucket/x' })).toThrow(/STREAMLINE_STORAGE="s3:\/\/Bad_Bucket\/x": 'Bad_Bucket' .* not a valid S3 bucket name/);
    expect(() => settingsFromEnv({ STREAMLINE_STORAGE: 'ftp://host/dir' })).toThrow(/STREAMLINE_STORAGE="ftp:\/\/host\/dir": unsupported URI scheme/);
  });

  it('reads an optional JSON settings file (STREAMLINE_CONFIG) under the environment, and names what is wrong in it', () => {
    const dir = gateways.tempDir();
    const write = (name: string, text: string) => {
      const path = join(dir, name);
      writeFileSync(path, text);
      return path;
    };
    const good = write('gateway.json', JSON.stringify({ PORT: 4100, STREAMLINE_WORKERS: 2, DATABASE_URL: 'postgres://db/file', STREAMLINE_S3_FORCE_PATH_STYLE: true }));
    const fromFile = readConfigFile({ STREAMLINE_CONFIG: good, DATABASE_URL: 'postgres://db/env' });
    expect(fromFile).toEqual({ PORT: '4100', STREAMLINE_WORKERS: '2', STREAMLINE_S3_FORCE_PATH_STYLE: 'true' }); // the environment's DATABASE_URL wins
    expect(settingsFromEnv({ ...fromFile, DATABASE_URL: 'postgres://db/env' })).toMatchObject({ port: 4100, workers: 2, databaseUrl: 'postgres://db/env' });
    expect(readConfigFile({})).toEqual({});
    expect(() => readConfigFile({ STREAMLINE_CONFIG: join(dir, 'absent.json') })).toThrow(/absent\.json: cannot read it \(ENOENT\)/);
    expect(() => readConfigFile({ STREAMLINE_CONFIG: write('broken.json', '{"PORT": ') })).toThrow(/broken\.json: not valid JSON/);
    expect(() => readConfigFile({ STREAMLINE_CONFIG: write('list.json', '[]') })).toThrow(/expected a JSON object of settings/);
    expect(() => readConfigFile({ STREAMLINE_CONFIG: write('typo.json', '{"STREAMLNE_WORKERS": 2}') })).toThrow(/"STREAMLNE_WORKERS" is not a setting/);
    expect(() => readConfigFile({ STREAMLINE_CONFIG: write('nested.json', '{"PORT": {"value": 1}}') })).toThrow(/PORT must be a string, number or boolean/);
  });

  it.skipIf(!runWithShared)('loses nothing across a restart on the same SQLite file', async () => {
    const dataDir = gateways.tempDir();
    const first = await gateways.start({ dataDir });
    const { registerModel } = await data(first.url, 'mutation ($input: RegisterModelInput!) { registerModel(input: $input) { id } }', { input: { name: 's', source: STORIES_URI } });
    const { createPruningPlan } = await data(first.url, 'mutation ($input: CreatePruningPlanInput!) { createPruningPlan(input: $input) { id config } }', {
      input: { modelId: registerModel.id, layersToPrune: 2, calibration: { source: TINYSTORIES_URI } },
    });
    const planId = createPruningPlan.id;
    await claimAsWorker(first.services, planId);
    for (let step = 1; step <= 3; step++) await first.services.progress.appendProgress(planId, { stage: PlanStage.COLLECTING, progress: step / 10, step });
    const query = 'query ($id: ID!) { plan(id: $id) { id status stage progress config startedAt events { seq step } model { id name numParameters } } models { id } }';
    const before = await data(first.url, query, { id: planId });
    await first.close();

    const second = await gateways.start({ dataDir });
    expect(await data(second.url, query, { id: planId })).toEqual(before);
    expect(before.plan).toMatchObject({ status: 'RUNNING', stage: 'COLLECTING', progress: 0.3, events: [{ seq: 1, step: 1 }, { seq: 2, step: 2 }, { seq: 3, step: 3 }] });

    // the stream resumes where the client left off, and numbering continues after the restart
    const client = connect(second.wsUrl);
    try {
      const stream = subscribe(client, 'subscription ($id: ID!) { planProgress(planId: $id, afterSeq: 2) { seq } }', { id: planId }, (d) => d.planProgress.seq);
      await stream.waitFor(1);
      await second.services.progress.appendProgress(planId, { stage: PlanStage.TRAINING, progress: 0.5 });
      await stream.waitFor(2);
      await completeAsWorker(second.services, planId);
      expect(await stream.completed).toEqual([3, 4]);
    } finally {
      await client.dispose();
    }
    const after = await graphql(second.url, '{ plans(status: SUCCEEDED) { id progress } }');
    expect(after.data.plans).toEqual([{ id: planId, progress: 1 }]);
  });
});
