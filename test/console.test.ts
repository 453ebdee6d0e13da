// The web console end to end, as a person uses it: Debian's Chromium (playwright-core) against a real
// gateway process with one real local worker, serving the console's fresh build (npm run build -w web).
// Sign in; register stories260K; run a dry run on the shared TinyStories excerpt (32 × 256) and find
// the best block of size 2 at start 2 on the heat map; plan that block with a LAYER replacement and a
// short schedule and watch the loss chart gain points while it trains — through a cut of every
// connection, after which the page resumes from the last event it has, losing and repeating none —
// and see SUCCEEDED and the report.
// Every page: a screenshot in .streamline/test-artifacts/console/, no serious or critical axe-core
// violations, and no Content-Security-Policy violation in the console.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, runWithChromium } from '@streamline/testing/chromium';
import { runWithShared, sharedUri } from '@streamline/testing/shared-data';
import { processGraphql, startGatewayProcess, stopGatewayProcess, type GatewayProcess } from '../services/gateway/test/fixtures/gateway-process.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ARTIFACTS = join(ROOT, '.streamline/test-artifacts/console');
/** STREAMLINE_CONSOLE_DOCS=1 also writes the README's two screenshots into docs/. */
const DOCS = process.env.STREAMLINE_CONSOLE_DOCS === '1' ? join(ROOT, 'docs') : null;
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

const STORIES = sharedUri('models/stories260K/stories260K.bin');
const STORIES_TOKENIZER = sharedUri('models/stories260K/tok512.bin');
const TINYSTORIES = sharedUri('data/text/tinystories_val_excerpt.txt');

/**
 * A TCP proxy on loopback in front of the gateway, so the test can cut every connection the page
 * holds (its graphql-ws WebSocket included) as a network failure would, and count the WebSocket
 * handshakes that went through.
 */
async function connectionCutter(target: URL) {
  const open = new Set<Socket>();
  let webSockets = 0;
  const server = createServer((client) => {
    const upstream = createConnection({ host: target.hostname, port: Number(target.port) });
    const end = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
    };
    open.add(client);
    client.once('data', (chunk) => {
      if (/\r\nupgrade: websocket\r\n/i.test(chunk.toString('latin1'))) webSockets++;
    });
    client.pipe(upstream).pipe(client);
    for (const socket of [client, upstream]) socket.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get webSockets() {
      return webSockets;
    },
    /** Destroys every open connection; returns how many there were. */
    cut(): number {
      const count = open.size;
      for (const socket of [...open]) socket.destroy();
      return count;
    },
    close: () => new Promise<void>((resolve) => {
      for (const socket of open) socket.destroy();
      server.close(() => resolve());
    }),
  };
}

describe.runIf(runWithChromium && runWithShared)('the web console in Chromium', () => {
  let gateway: GatewayProcess;
  let browser: Browser;
  let page: Page;
  let proxy: Awaited<ReturnType<typeof connectionCutter>>;
  const cspViolations: string[] = [];

  beforeAll(async () => {
    const build = spawnSync('npm', ['run', 'build', '-w', 'web'], { cwd: ROOT, encoding: 'utf8' });
    expect(build.status, `npm run build -w web:\n${build.stdout}\n${build.stderr}`).toBe(0);
    rmSync(ARTIFACTS, { recursive: true, force: true });
    mkdirSync(ARTIFACTS, { recursive: true });
    gateway = await startGatewayProcess({ STREAMLINE_WORKERS: '1' });
    proxy = await connectionCutter(new URL(gateway.base));
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on('console', (message) => {
      if (/Content[- ]Security[- ]Policy/i.test(message.text())) cspViolations.push(message.text());
    });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await proxy?.close();
    if (gateway) {
      await stopGatewayProcess(gateway);
      rmSync(gateway.dataDir, { recursive: true, force: true });
    }
  });

  /** A screenshot of the page, and axe-core's serious and critical findings (none expected). */
  async function check(name: string, docs?: { file: string; top: string; hover?: string }): Promise<void> {
    await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
    if (DOCS && docs) {
      await page.locator(docs.top).evaluate((element) => element.scrollIntoView());
      if (docs.hover) await page.locator(docs.hover).hover();
      await page.screenshot({ path: join(DOCS, docs.file) });
      await page.evaluate(() => window.scrollTo(0, 0));
    }
    if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(AXE_SOURCE);
    const violations = await page.evaluate(async () => {
      const results = await (window as unknown as { axe: { run(context: Document): Promise<{ violations: { id: string; impact: string; help: string; nodes: { target: string[] }[] }[] }> } }).axe.run(document);
      return results.violations.map(({ id, impact, help, nodes }) => ({ id, impact, help, targets: nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
    });
    expect(violations.filter((v) => v.impact === 'serious' || v.impact === 'critical'), `${name}: axe-core`).toEqual([]);
    expect(cspViolations, `${name}: CSP violations`).toEqual([]);
  }

  it('signs in with an API token and shows the tenant and role', async () => {
    const response = await page.goto(`${proxy.base}/`);
    expect(response!.headers()['content-security-policy']).toContain("script-src 'self'");
    await page.getByLabel('API token').waitFor();
    await check('sign-in');
    await page.getByLabel('API token').fill('not-a-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'UNAUTHENTICATED' }).waitFor();
    await page.getByLabel('API token').fill(gateway.adminToken);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByTestId('viewer').textContent()).toMatch(/· ADMIN$/);
    expect(await page.evaluate(() => sessionStorage.length)).toBe(1);
  });

  it('registers stories260K, with the API’s error on the field it refused', async () => {
    await page.getByRole('heading', { name: 'Models' }).waitFor();
    await page.getByLabel('Name', { exact: true }).fill('stories260K');
    await page.getByLabel('Source URI').fill('file:///nowhere/model.bin');
    await page.getByRole('button', { name: 'Register' }).click();
    await page.locator('#register-source-error').waitFor();
    await page.getByLabel('Source URI').fill(STORIES);
    await page.getByLabel('Tokenizer URI').fill(STORIES_TOKENIZER);
    await page.getByRole('button', { name: 'Register' }).click();
    const row = page.getByRole('row').filter({ hasText: 'stories260K' });
    await row.getByText('READY').waitFor();
    expect(await row.textContent()).toContain('llama');
    await check('models');
  });

  it('runs a dry run and marks the best block of size 2 at start 2 on the heat map', async () => {
    await page.getByRole('link', { name: 'stories260K' }).click();
    await page.getByRole('heading', { name: 'stories260K' }).waitFor();
    await page.getByLabel('Calibration text', { exact: true }).fill(TINYSTORIES);
    await page.getByLabel('Samples', { exact: true }).fill('32');
    await page.getByLabel('Tokens per sample', { exact: true }).fill('256');
    await page.getByRole('button', { name: 'Run a dry run' }).click();
    const best = page.locator('button.cell[data-size="2"][data-best="true"]');
    await best.waitFor({ timeout: 150_000 });
    expect(await best.getAttribute('data-start')).toBe('2');
    // one best cell per block size
    const sizes = await page.locator('table.heatmap tbody tr').count();
    expect(sizes).toBeGreaterThanOrEqual(4);
    expect(await page.locator('button.cell[data-best="true"]').count()).toBe(sizes);
    await best.hover();
    const tooltip = page.locator('.heatmap-tooltip');
    await expect.poll(() => tooltip.textContent()).toMatch(/layers 2–3; cosine 0\.\d+; angular distance 0\.\d+; the best block of this size/);
    await page.locator('svg.bars rect').first().waitFor();
    await check('model', { file: 'console-heatmap.png', top: '#importance-heading', hover: 'button.cell[data-size="2"][data-start="2"]' });
  });

  it('plans the block from the heat map with a LAYER replacement and trains it live to SUCCEEDED', async () => {
    // by keyboard: the cells are buttons
    await page.locator('button.cell[data-size="2"][data-start="2"]').focus();
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'New plan' }).waitFor();
    expect(await page.getByLabel('Layers to remove', { exact: true }).inputValue()).toBe('2');
    expect(await page.getByLabel('Start layer', { exact: true }).inputValue()).toBe('2');
    expect(await page.getByRole('radio', { name: /^LAYER/ }).isChecked()).toBe(true);
    // pre-filled from planDefaults
    await expect.poll(() => page.getByLabel('Minimum optimizer steps').inputValue()).toMatch(/^\d+$/);
    // the API's estimate for this block and kind, which the finished plan must match
    const estimate = page.getByTestId('estimate');
    await expect.poll(() => estimate.textContent()).toMatch(/^Parameters: 260\.0 K → \d+\.\d K \(\d+\.\d% fewer/);
    const estimatedAfter = /→ (\S+ K)/.exec((await estimate.textContent())!)![1];
    await page.getByLabel('Calibration text', { exact: true }).fill(TINYSTORIES);
    await page.getByLabel('Calibration samples', { exact: true }).fill('32');
    await page.getByLabel('Tokens per sample', { exact: true }).fill('256');
    await page.getByLabel('Minimum optimizer steps').fill('40');
    await page.getByLabel('Checkpoint every (steps)').fill('20');
    await check('new-plan');
    await page.getByRole('button', { name: 'Start plan' }).click();

    await page.getByRole('heading', { name: /^Plan / }).waitFor();
    const chart = page.locator('figure.loss-chart');
    const status = page.getByTestId('plan-status');
    await expect.poll(async () => Number(await chart.getAttribute('data-points')), { timeout: 150_000, intervals: [100] }).toBeGreaterThan(0);
    const first = Number(await chart.getAttribute('data-points'));
    const statusAtFirst = await status.textContent();
    // the network drops mid-training: the page reconnects and resumes from the last event it has
    const webSocketsBefore = proxy.webSockets;
    expect(proxy.cut()).toBeGreaterThan(0);
    await expect.poll(async () => Number(await chart.getAttribute('data-points')), { timeout: 120_000, intervals: [100] }).toBeGreaterThan(first);
    // the points arrived over the subscription while the plan still ran, not with the final reload
    expect(statusAtFirst).toBe('RUNNING');
    await check('plan-live', { file: 'console-plan-live.png', top: 'h1' });

    await expect.poll(() => status.textContent(), { timeout: 180_000 }).toBe('SUCCEEDED');
    await page.getByRole('heading', { name: 'Stability report' }).waitFor();
    expect(proxy.webSockets).toBeGreaterThan(webSocketsBefore);
    // every stored event once, none lost at the cut and none repeated after it
    const planId = page.url().split('/').pop()!;
    const answer = await processGraphql(gateway, 'query ($id: ID!) { plan(id: $id) { events(after: 0, limit: 900) { seq stage step loss validationLoss } } }', { id: planId });
    expect(answer.body.errors).toBeUndefined();
    const stored = answer.body.data.plan.events as { seq: number; stage: string; step: number | null; loss: number | null; validationLoss: number | null }[];
    expect(stored.length).toBeLessThan(900);
    const statusLine = page.locator('.plan-status');
    expect(Number(await statusLine.getAttribute('data-events'))).toBe(stored.length);
    expect(Number(await statusLine.getAttribute('data-last-seq'))).toBe(stored[stored.length - 1].seq);
    const trainingPoints = stored.filter((e) => e.stage === 'TRAINING' && e.step !== null && (e.loss !== null || e.validationLoss !== null)).length;
    expect(Number(await chart.getAttribute('data-points'))).toBe(trainingPoints);
    expect(await page.locator('dl.facts').last().textContent()).toContain(`260.0 K → ${estimatedAfter}`);
    expect(Number(await chart.getAttribute('data-points'))).toBeGreaterThanOrEqual(40);
    expect(await page.getByRole('table', { name: 'Perplexity' }).textContent()).toMatch(/\d+\.\d{3}/);
    // the report as CSV, and an output file through the gateway's authenticated /files route
    const download = async (name: string) => {
      const [file] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name, exact: true }).click()]);
      return readFileSync((await file.path())!, 'utf8');
    };
    const csv = await download('Download report (CSV)');
    expect(csv.split('\n')[0]).toBe('measure,dataset_or_task,original,pruned,agreement,stability,samples_or_tokens');
    expect(csv).toMatch(/^perplexity,calibration data \(held-out windows\),\d/m);
    expect(JSON.parse(await download('Download report (JSON)')).removedLayers).toEqual([2, 3]);
    await page.locator('.files li').first().waitFor();
    expect(JSON.parse(await download('config.json')).num_hidden_layers).toBe(4); // 5 − 2 + the replacement layer
    await check('plan-succeeded');
  });

  it('cancels a running plan from its page', async () => {
    await page.getByRole('link', { name: 'stories260K' }).click();
    await page.locator('main').getByRole('link', { name: 'New plan' }).click();
    await page.getByRole('heading', { name: 'New plan' }).waitFor();
    await expect.poll(() => page.getByLabel('Minimum optimizer steps', { exact: true }).inputValue()).toMatch(/^\d+$/);
    await page.getByLabel('Calibration text', { exact: true }).fill(TINYSTORIES);
    await page.getByLabel('Calibration samples', { exact: true }).fill('16');
    await page.getByLabel('Tokens per sample', { exact: true }).fill('64');
    await page.getByLabel('Minimum optimizer steps', { exact: true }).fill('100000');
    await page.getByRole('button', { name: 'Start plan' }).click();
    const status = page.getByTestId('plan-status');
    await expect.poll(() => status.textContent(), { timeout: 120_000 }).toBe('RUNNING');
    await page.getByRole('button', { name: 'Cancel plan' }).click();
    await expect.poll(() => status.textContent(), { timeout: 60_000 }).toBe('CANCELLED');
    await page.getByRole('heading', { name: 'Cancelled' }).waitFor();
    expect(await page.getByRole('button', { name: 'Cancel plan' }).count()).toBe(0);
    await check('plan-cancelled');
  });

  it("shows a failed plan's code, message and last events", async () => {
    // stories260K with NaN in layer 0's attention norm (llama2.c: a 28-byte header, the 512 × 64
    // embedding table, then each layer's attention norm weights)
    const weights = readFileSync(new URL(STORIES));
    new Float32Array(weights.buffer, weights.byteOffset + 28 + 512 * 64 * 4, 64).fill(Number.NaN);
    const brokenDir = mkdtempSync(join(tmpdir(), 'console-broken-model-'));
    const broken = join(brokenDir, 'broken.bin');
    writeFileSync(broken, weights);
    try {
      await page.getByRole('link', { name: 'Models' }).click();
      await page.getByLabel('Name', { exact: true }).fill('broken');
      await page.getByLabel('Source URI').fill(pathToFileURL(broken).href);
      await page.getByLabel('Tokenizer URI').fill(STORIES_TOKENIZER);
      await page.getByRole('button', { name: 'Register' }).click();
      await page.getByRole('link', { name: 'broken' }).click();
      await page.getByLabel('Calibration text', { exact: true }).fill(TINYSTORIES);
      await page.getByLabel('Samples', { exact: true }).fill('8');
      await page.getByLabel('Tokens per sample', { exact: true }).fill('64');
      await page.getByRole('button', { name: 'Run a dry run' }).click();
      const failed = page.getByRole('row').filter({ hasText: 'FAILED' }).getByRole('link');
      await failed.waitFor({ timeout: 90_000 });
      await failed.click();
      await page.getByRole('heading', { name: 'Why it failed' }).waitFor();
      expect(await page.locator('section p.error').textContent()).toMatch(/^INVALID_WEIGHTS: .*NaN/);
      expect(await page.locator('ol.events li').count()).toBeGreaterThan(0);
      await check('plan-failed');
    } finally {
      rmSync(brokenDir, { recursive: true, force: true });
    }
  }, 150_000);

  it('compares the model’s finished plans', async () => {
    await page.getByRole('link', { name: 'Compare', exact: true }).click();
    await page.getByLabel('Model', { exact: true }).selectOption({ label: 'stories260K' });
    await page.waitForURL(/compare\?model=/);
    await page.getByRole('table', { name: 'Finished plans' }).waitFor();
    // the plan, and the original model at 0% removed
    expect(await page.locator('svg.tradeoff circle').count()).toBe(2);
    await check('compare');
  });

  it('lets the admin create a tenant and a member token; the member sees its own tenant and role, without the admin pages', async () => {
    await page.getByRole('link', { name: 'Tenants' }).click();
    await page.getByLabel('Tenant name').fill('team-b');
    await page.getByRole('button', { name: 'Create tenant' }).click();
    const tenantId = await page.locator('li', { hasText: 'team-b' }).locator('code').textContent();
    await check('tenants');
    await page.getByRole('link', { name: 'Tokens' }).click();
    await page.getByLabel('Tenant id').fill(tenantId!);
    await page.getByRole('button', { name: 'Create token' }).click();
    const token = await page.locator('.notice code').textContent();
    await page.getByRole('table', { name: `Tokens of ${tenantId}` }).getByText('MEMBER').waitFor();
    await check('tokens');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API token').fill(token!);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByTestId('viewer').textContent()).toBe('team-b · MEMBER');
    expect(await page.getByRole('link', { name: 'Tokens' }).count()).toBe(0);
    // another tenant's models are not listed
    await page.getByRole('heading', { name: 'Models' }).waitFor();
    await page.getByText('No models yet').waitFor();
  });

  it('fits a phone screen (390 × 844), and signs out', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.getByRole('link', { name: 'Models' }).click();
    await page.getByRole('heading', { name: 'Models' }).waitFor();
    // nothing wider than the screen but the scrollable tables
    const tooWide = await page.evaluate(() =>
      [...document.querySelectorAll<HTMLElement>('body *')]
        .filter((element) => element.getBoundingClientRect().right > 391 && !element.closest('.scroll'))
        .map((element) => `${element.tagName.toLowerCase()}${element.id ? `#${element.id}` : ''}.${element.className}`),
    );
    expect(tooWide).toEqual([]);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await check('models-phone');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API token').waitFor();
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
  });
});

// CI installs Chromium (.ci/run): there the tests above must run, not skip.
it.runIf(process.env.CI === 'true')('CI has Chromium for the console tests', () => {
  expect(runWithChromium).toBe(true);
});
