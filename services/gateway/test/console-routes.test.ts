/**
 * The gateway's HTTP routes beside GraphQL: the web console's build at / (its files, index.html for
 * any other GET that accepts HTML, the CSP on both) while API paths and non-HTML clients keep their JSON
 * answers; and /files/<plan id>/<name>, a SUCCEEDED plan's local output for its own tenant only.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RunningGateway } from '../src/server.js';
import { CONSOLE_CSP } from '../src/console/console.routes.js';
import { data, useGateways } from './fixtures/gateway.js';
import { runWithShared, STORIES_TOKENIZER_URI, STORIES_URI, TINYSTORIES_URI } from './fixtures/shared.js';
import { CREATE, REGISTER, waitForStatus } from './fixtures/workers.js';

const INDEX = '<!doctype html><title>console</title><script type="module" src="/assets/app.js"></script>';
/** The first error's code of a JSON error body. */
const errorCode = async (response: Response) => ((await response.json()) as { errors: { extensions: { code: string } }[] }).errors[0].extensions.code;
const HTML = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';

function consoleBuild(dir: string): string {
  mkdirSync(join(dir, 'assets'), { recursive: true });
  writeFileSync(join(dir, 'index.html'), INDEX);
  writeFileSync(join(dir, 'assets/app.js'), 'console.log("app");');
  return dir;
}

describe('the web console at /', () => {
  const gateways = useGateways();

  it('serves its files and, for HTML requests, index.html on any other path, with the CSP', async () => {
    const gateway = await gateways.start({ consoleDir: consoleBuild(gateways.tempDir()) });
    const base = gateway.url.replace(/\/graphql$/, '');
    for (const path of ['/', '/models', '/plans/abc', '/compare?model=x']) {
      const response = await fetch(`${base}${path}`, { headers: { accept: HTML } });
      expect(response.status, path).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^text\/html/);
      expect(response.headers.get('content-security-policy')).toBe(CONSOLE_CSP);
      expect(response.headers.get('cache-control')).toBe('no-cache');
      expect(await response.text()).toBe(INDEX);
    }
    const script = await fetch(`${base}/assets/app.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toMatch(/javascript/);
    expect(script.headers.get('content-security-policy')).toBe(CONSOLE_CSP);
    expect(script.headers.get('cache-control')).toContain('immutable');
  });

  it('leaves the API its JSON answers: /graphql, the probes, unknown paths for non-HTML clients, other methods', async () => {
    const gateway = await gateways.start({ consoleDir: consoleBuild(gateways.tempDir()) });
    const base = gateway.url.replace(/\/graphql$/, '');
    // /graphql is Apollo's, whatever the Accept header (a browser there gets Apollo's landing page or its answer)
    const graphqlGet = await fetch(`${base}/graphql?query=${encodeURIComponent('{ __typename }')}`, { headers: { accept: HTML, 'apollo-require-preflight': 'true' } });
    expect(graphqlGet.headers.get('content-security-policy')).toBeNull();
    expect(await graphqlGet.text()).not.toBe(INDEX);
    expect((await fetch(`${base}/healthz`, { headers: { accept: HTML } })).headers.get('content-type')).toMatch(/json/);
    for (const accept of ['application/json', '*/*']) {
      const missing = await fetch(`${base}/nowhere`, { headers: { accept } });
      expect(missing.status, accept).toBe(404);
      expect(await errorCode(missing)).toBe('NOT_FOUND');
    }
    const posted = await fetch(`${base}/models`, { method: 'POST', headers: { accept: HTML } });
    expect(posted.status).toBe(404);
    expect(posted.headers.get('content-type')).toMatch(/json/);
    // a missing asset is not answered with the app
    expect((await fetch(`${base}/assets/missing.js`, { headers: { accept: '*/*' } })).status).toBe(404);
  });

  it('without a build, serves the API alone', async () => {
    const gateway = await gateways.start({ consoleDir: gateways.tempDir() });
    const response = await fetch(gateway.url.replace(/\/graphql$/, '/'), { headers: { accept: HTML } });
    expect(response.status).toBe(404);
    expect(await errorCode(response)).toBe('NOT_FOUND');
  });
});

describe.runIf(runWithShared)('/files/<plan id>/<name>', () => {
  const gateways = useGateways();
  const get = (base: string, path: string, token: string | null) => fetch(`${base}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });

  it("downloads a SUCCEEDED plan's local output files for its own tenant only", async () => {
    const gateway: RunningGateway = await gateways.start({ workers: 1 });
    const base = gateway.url.replace(/\/graphql$/, '');
    const admin = gateway.adminToken!;
    const modelId = (await data(gateway.url, REGISTER, { input: { name: 'stories260K', source: STORIES_URI, tokenizer: STORIES_TOKENIZER_URI } })).registerModel.id;
    const planId: string = (await data(gateway.url, CREATE, { input: { modelId, layersToPrune: 1, replacement: 'NONE', calibration: { source: TINYSTORIES_URI, samples: 8, seqLen: 64 } } })).createPruningPlan.id;
    await waitForStatus(gateway.url, planId, ['SUCCEEDED']);

    const listing = await get(base, `/files/${planId}/`, admin);
    expect(listing.status).toBe(200);
    const { files } = (await listing.json()) as { files: { name: string; size: number; url: string }[] };
    const config = files.find((file) => file.name === 'config.json')!;
    expect(config.url).toBe(`/files/${planId}/config.json`);
    const download = await get(base, config.url, admin);
    expect(download.status).toBe(200);
    expect(download.headers.get('content-disposition')).toBe('attachment; filename=config.json');
    const body = await download.text();
    expect(body.length).toBe(config.size);
    expect(JSON.parse(body).num_hidden_layers).toBe(4);

    // no token, a wrong one, the worker token, another tenant's token: refused as JSON
    const other = await data(gateway.url, 'mutation ($name: String!) { createTenant(name: $name) { id } }', { name: 'other' });
    const otherToken = (await data(gateway.url, 'mutation ($t: ID!) { createApiToken(tenantId: $t) { token } }', { t: other.createTenant.id })).createApiToken.token;
    for (const [token, status, code] of [
      [null, 401, 'UNAUTHENTICATED'],
      ['not-a-token', 401, 'UNAUTHENTICATED'],
      [gateway.workerToken, 403, 'FORBIDDEN'],
      [otherToken, 404, 'NOT_FOUND'],
    ] as const) {
      const refused = await get(base, config.url, token);
      expect(refused.status, String(token)).toBe(status);
      expect(await errorCode(refused)).toBe(code);
    }
    // names outside the manifest, including paths out of the folder
    for (const path of [`/files/${planId}/nothing.bin`, `/files/${planId}/..%2F..%2Fstreamline.db`, `/files/${planId}/a/b`, `/files/unknown-plan/config.json`]) {
      const refused = await get(base, path, admin);
      expect(refused.status, path).toBe(404);
      expect(await errorCode(refused)).toBe('NOT_FOUND');
    }
  });
});
