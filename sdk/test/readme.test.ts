/**
 * The README's examples cannot rot: each `<!-- example: FILE -->` block must hold FILE verbatim, and every
 * file under examples/ is run against a live gateway with a real worker (`tsc -p sdk` type-checks them).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { useGateway } from './fixtures/gateway.js';
import { runProcess, type ProcessRun } from './fixtures/process.js';
import { runWithShared } from './fixtures/shared.js';

const SDK = fileURLToPath(new URL('..', import.meta.url));
const README = readFileSync(`${SDK}README.md`, 'utf8');
const EXAMPLES = readdirSync(`${SDK}examples`).filter((name) => name.endsWith('.ts')).map((name) => `examples/${name}`);

/** FILE → the ```ts block that follows `<!-- example: FILE -->` in the README. */
function readmeExamples(): Map<string, string> {
  const blocks = new Map<string, string>();
  for (const match of README.matchAll(/<!-- example: (\S+) -->\n```ts\n([\s\S]*?)```/g)) blocks.set(match[1], match[2]);
  return blocks;
}

describe('the README', () => {
  it.each(EXAMPLES)('holds %s verbatim', (file) => {
    const blocks = readmeExamples();
    expect(blocks.has(file), `README.md has no <!-- example: ${file} --> block`).toBe(true);
    expect(blocks.get(file)).toBe(readFileSync(`${SDK}${file}`, 'utf8'));
  });

  it('shows no ts example that is not a file under examples/ (so every one is run)', () => {
    const tsBlocks = [...README.matchAll(/```ts\n/g)].length;
    // One non-runnable signature block (the constructor's options) is allowed; the rest are files.
    expect(tsBlocks - readmeExamples().size).toBeLessThanOrEqual(1);
  });
});

describe.runIf(runWithShared)('the README examples against a live gateway', () => {
  const live = useGateway({ workers: 1 });

  /** Runs an example from the sources: the `@streamline/source` condition maps `@streamline/sdk` to src/index.ts. */
  function runExample(file: string): Promise<ProcessRun> {
    // No STREAMLINE_SHARED: the examples find ../shared beside the repository by themselves, as on a fresh clone.
    const env: NodeJS.ProcessEnv = { ...process.env, STREAMLINE_URL: live.gateway.url };
    delete env.STREAMLINE_SHARED;
    delete env.STREAMLINE_TOKEN;
    if (live.gateway.adminToken) env.STREAMLINE_TOKEN = live.gateway.adminToken;
    return runProcess(process.execPath, ['--conditions=@streamline/source', '--import', 'tsx', file], { cwd: SDK, env });
  }

  // In order: the errors example finds the model and the finished plan the quick start made.
  it('runs examples/quick-start.ts', async () => {
    const run = await runExample('examples/quick-start.ts');
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^stories260K: llama, 5 layers, 260032 parameters$/m);
    expect(run.stdout).toMatch(/^block size 2: best start layer 2 /m);
    expect(run.stdout).toMatch(/^removed layers 2, 3: 260032 → 214592 parameters$/m);
  });

  it('runs examples/errors.ts', async () => {
    const run = await runExample('examples/errors.ts');
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^not found: plan "no-such-plan" not found$/m);
    expect(run.stdout).toMatch(/^bad input on input\.layersToPrune: /m);
    expect(run.stdout).toMatch(/^conflict: plan .* is SUCCEEDED/m);
  });
});

describe('the examples', () => {
  it('type-check (tsc --noEmit)', async () => {
    const tsc = fileURLToPath(import.meta.resolve('typescript/bin/tsc'));
    const run = await runProcess(process.execPath, [tsc, '--noEmit', '-p', `${SDK}examples/tsconfig.json`]);
    expect(run.status, `${run.stdout}${run.stderr}`).toBe(0);
  });
});
