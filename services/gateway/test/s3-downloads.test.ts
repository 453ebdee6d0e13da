/**
 * Pre-signed download URLs for a plan's output in S3, against a real s3rver: every file of the
 * published output, downloadable without credentials and matching its sha256; only for the plan's
 * tenant; null for unfinished plans and file:// outputs; the expiry bounded.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publishOutputs } from '../../engine/src/storage/output-publisher.js';
import { S3_SECRET_KEY, startS3Server, type S3Server } from '@streamline/testing/s3-server';
import { StreamlineClient } from '../../../sdk/src/index.js';
import type { RunningGateway } from '../src/server.js';
import { data, failure, useGateways } from './fixtures/gateway.js';
import { runWithShared, STORIES_URI, TINYSTORIES_URI } from './fixtures/shared.js';
import { claimAsWorker, completeAsWorker } from './fixtures/claim.js';

const gateways = useGateways();
const CLI = join(import.meta.dirname, '../../../sdk/bin/streamline.js');
/** The CLI as a child process (asynchronously: the gateway it talks to runs in this process). */
async function streamline(gateway: RunningGateway, ...args: string[]): Promise<{ status: number; stdout: string }> {
  try {
    const { stdout } = await promisify(execFile)(process.execPath, [CLI, '--url', gateway.url, '--token', gateway.adminToken!, ...args], { encoding: 'utf8' });
    return { status: 0, stdout };
  } catch (error) {
    return { status: (error as { code?: number }).code ?? 1, stdout: (error as { stdout?: string }).stdout ?? '' };
  }
}
const BUCKET = 'streamline';
const DOWNLOADS = 'query ($id: ID!, $seconds: Int) { plan(id: $id) { downloads(expiresInSeconds: $seconds) { name size sha256 url expiresAt } } }';
const scratch = mkdtempSync(join(tmpdir(), 'streamline-s3-downloads-'));
let s3: S3Server;

beforeAll(async () => {
  if (runWithShared) s3 = await startS3Server([BUCKET]);
});
afterAll(async () => {
  await s3?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

/** A queued plan of stories260K, in the tenant of the gateway's admin token. */
async function queuedPlan(gateway: RunningGateway): Promise<string> {
  const { registerModel } = await data(gateway.url, 'mutation ($input: RegisterModelInput!) { registerModel(input: $input) { id } }', { input: { name: 's', source: STORIES_URI } });
  const { createPruningPlan } = await data(gateway.url, 'mutation ($input: CreatePruningPlanInput!) { createPruningPlan(input: $input) { id } }', {
    input: { modelId: registerModel.id, layersToPrune: 2, calibration: { source: TINYSTORIES_URI } },
  });
  return createPruningPlan.id;
}

describe.runIf(runWithShared)('pre-signed output downloads', () => {
  it("lists every file of an output in S3 with a URL that downloads it without credentials, for the plan's tenant only", async () => {
    const gateway = await gateways.start({ storage: `s3://${BUCKET}/sl`, storageEnv: { ...s3.env } });
    const planId = await queuedPlan(gateway);
    expect((await data(gateway.url, DOWNLOADS, { id: planId })).plan.downloads).toBeNull(); // nothing yet

    // What a worker publishes at the end of a plan.
    const staged = join(scratch, planId);
    mkdirSync(staged);
    const files = { 'config.json': '{"model_type":"llama"}\n', 'model.safetensors': 'weights'.repeat(1000), 'streamline.json': '{"removed":[2,3]}\n' };
    for (const [name, content] of Object.entries(files)) writeFileSync(join(staged, name), content);
    const outputUri = await publishOutputs(s3.store(BUCKET, 'sl'), `outputs/${planId}/`, staged);
    await claimAsWorker(gateway.services, planId);
    await completeAsWorker(gateway.services, planId, { outputUri });

    const before = Date.now();
    const { plan } = await data(gateway.url, DOWNLOADS, { id: planId, seconds: 600 });
    expect(plan.downloads.map((d: { name: string }) => d.name).sort()).toEqual(Object.keys(files).sort());
    for (const download of plan.downloads) {
      const expected = Buffer.from(files[download.name as keyof typeof files]);
      expect(download.size).toBe(expected.length);
      expect(download.sha256).toBe(createHash('sha256').update(expected).digest('hex'));
      expect(Date.parse(download.expiresAt) - before).toBeGreaterThan(590_000);
      expect(download.url).toContain('X-Amz-Expires=600');
      const response = await fetch(download.url); // no Authorization: the signature is the permission
      expect(response.status).toBe(200);
      expect(Buffer.from(await response.arrayBuffer()).equals(expected)).toBe(true);
    }
    // s3rver does not check signatures, so their validity on real S3 rests on the SDK's presigner; here,
    // that the URL is a SigV4 query-signed one for the object's key.
    const url = new URL(plan.downloads[0].url);
    expect(url.pathname).toBe(`/${BUCKET}/sl/outputs/${planId}/${plan.downloads[0].name}`);
    expect(url.searchParams.get('X-Amz-Algorithm')).toBe('AWS4-HMAC-SHA256');
    expect(url.searchParams.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(plan)).not.toContain(S3_SECRET_KEY);

    // The same through the SDK and the CLI.
    const client = new StreamlineClient({ url: gateway.url, token: gateway.adminToken! });
    try {
      const viaSdk = await client.downloads(planId, 120);
      expect(viaSdk?.map((d) => d.name).sort()).toEqual(Object.keys(files).sort());
      expect(viaSdk?.[0].url).toContain('X-Amz-Expires=120');
    } finally {
      await client.close();
    }
    const cli = await streamline(gateway, 'plans', 'downloads', planId, '--expires', '300', '--json');
    expect(cli.status).toBe(0);
    const printed = JSON.parse(cli.stdout) as { name: string; url: string }[];
    expect(printed.map((d) => d.name).sort()).toEqual(Object.keys(files).sort());
    expect(printed[0].url).toContain('X-Amz-Expires=300');
    const table = await streamline(gateway, 'plans', 'downloads', planId);
    expect(table.stdout).toMatch(/^FILE\s+SIZE\s+URL$/m);
    expect(table.stdout).toMatch(/^model\.safetensors\s+7,000\s+http:\/\/127\.0\.0\.1:\d+\/streamline\/sl\/outputs\//m);

    // Another tenant does not see the plan at all.
    const { createTenant } = await data(gateway.url, 'mutation { createTenant(name: "other") { id } }');
    const { createApiToken } = await data(gateway.url, 'mutation ($tenantId: ID!) { createApiToken(tenantId: $tenantId, role: MEMBER) { token } }', { tenantId: createTenant.id });
    expect(await data(gateway.url, DOWNLOADS, { id: planId }, { token: createApiToken.token })).toEqual({ plan: null });

    // The expiry is bounded by what SigV4 allows.
    for (const seconds of [0, 604_801]) {
      const error = await failure(gateway.url, DOWNLOADS, { id: planId, seconds });
      expect(error).toMatchObject({ code: 'BAD_USER_INPUT' });
      expect(error.message).toMatch(/expiresInSeconds/);
    }
  });

  it('answers null for an output on the local disk', async () => {
    const gateway = await gateways.start();
    const planId = await queuedPlan(gateway);
    await claimAsWorker(gateway.services, planId);
    await completeAsWorker(gateway.services, planId, { outputUri: `file://${scratch}/outputs/${planId}` });
    expect((await data(gateway.url, DOWNLOADS, { id: planId })).plan.downloads).toBeNull();
    const cli = await streamline(gateway, 'plans', 'downloads', planId);
    expect(cli.status).toBe(0);
    expect(cli.stdout).toContain(`plan ${planId} has no downloadable output (its output is at file://`);
  });
});
