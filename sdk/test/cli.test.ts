/**
 * The `streamline` command as a real process against a live gateway with a real worker on stories260K:
 * the whole workflow, one JSON document per --json command, progress on stderr, and non-zero exit
 * statuses with one clear line on stderr for errors and failed plans.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { useGateway } from './fixtures/gateway.js';
import { runWithShared, STORIES_TOKENIZER_URI, STORIES_URI, TINYSTORIES_URI } from './fixtures/shared.js';


describe.runIf(runWithShared)('the streamline CLI', () => {
  const live = useGateway({ workers: 1 });

  const streamline = (...args: string[]) => live.cli(...args);

  /** The one JSON document a --json command printed (JSON.parse fails on anything more). */
  async function json(...args: string[]): Promise<any> {
    const run = await streamline(...args, '--json');
    expect(run.status, run.stderr).toBe(0);
    return JSON.parse(run.stdout);
  }

  const calibrationArgs = ['--calibration', TINYSTORIES_URI, '--samples', '8', '--seq-len', '64'];

  it('registers, profiles, prunes with --watch, and shows importance and the report', async () => {
    const model = await json('models', 'register', '--name', 'stories260K', '--source', STORIES_URI, '--tokenizer', STORIES_TOKENIZER_URI);
    expect(model).toMatchObject({ name: 'stories260K', architecture: 'llama', numLayers: 5, status: 'READY' });
    expect((await json('models', 'list')).map((m: { id: string }) => m.id)).toContain(model.id);
    const listed = await streamline('models', 'list');
    expect(listed.stdout).toMatch(/ID\s+NAME\s+ARCH/);
    expect(listed.stdout).toContain('260,032');
    expect(await json('models', 'show', model.id)).toMatchObject({ id: model.id, plans: [] });

    const dryRun = await json('plans', 'create', '--model', model.id, '--layers', '2', '--dry-run', '--watch', ...calibrationArgs);
    expect(dryRun).toMatchObject({ status: 'SUCCEEDED', dryRun: true, removedLayers: [] });
    const heatmap = await streamline('importance', 'show', dryRun.id);
    expect(heatmap.status).toBe(0);
    expect(heatmap.stdout).toMatch(/^COSINE: raw mean cos/);
    const rows = heatmap.stdout.split('\n').filter((line) => /^\d\s/.test(line));
    expect(rows).toHaveLength(5); // block sizes 1..5
    expect(rows[1]).toMatch(/\*/); // the best 2-layer block is marked
    const profiles = await json('importance', 'show', dryRun.id);
    expect(profiles.map((p: { blockSize: number }) => p.blockSize).sort()).toEqual([1, 2, 3, 4, 5]);

    const watched = await streamline('plans', 'create', '--model', model.id, '--layers', '2', '--replacement', 'LAYER', ...calibrationArgs, '--epochs', '2', '--batch-size', '4', '--watch', '--json');
    expect(watched.status, watched.stderr).toBe(0);
    const plan = JSON.parse(watched.stdout); // exactly one document: progress went to stderr
    expect(plan).toMatchObject({ status: 'SUCCEEDED', removedLayers: [2, 3], startLayer: 2, replacement: 'LAYER' });
    expect(watched.stderr).toMatch(/TRAINING\s+step \d+\/\d+\s+loss \d/);
    // The watch ends with the plan's outcome at 100 % (its last event, UPLOADING, is below that).
    expect(watched.stderr).toMatch(/\[#{20}\] 100%  SUCCEEDED  in \d+:\d\d\n$/);

    const report = await streamline('report', 'show', plan.id);
    expect(report.stdout).toMatch(/parameter reduction\s+17\.5%/);
    expect(report.stdout).toMatch(/PERPLEXITY ON\s+TOKENS\s+ORIGINAL\s+PRUNED/);
    expect(await json('report', 'show', plan.id)).toMatchObject({ parameterReduction: expect.any(Number) });
    expect(await json('plans', 'show', plan.id)).toMatchObject({ id: plan.id, status: 'SUCCEEDED', stability: { parameterReduction: expect.any(Number) } });
    expect((await json('plans', 'list', '--status', 'succeeded')).map((p: { id: string }) => p.id)).toEqual(expect.arrayContaining([dryRun.id, plan.id]));
    const watchedAgain = await json('plans', 'watch', plan.id);
    expect(watchedAgain).toMatchObject({ id: plan.id, status: 'SUCCEEDED' });

    // A finished plan cannot be cancelled: CONFLICT, exit 1, one line on stderr.
    const cancel = await streamline('plans', 'cancel', plan.id);
    expect(cancel.status).toBe(1);
    expect(cancel.stderr.trim().split('\n')).toHaveLength(1);
    expect(cancel.stderr).toMatch(/^streamline: CONFLICT: .*SUCCEEDED/);

    // A long plan cancelled at once, queued or running.
    const long = await json('plans', 'create', '--model', model.id, '--layers', '2', '--replacement', 'LAYER', ...calibrationArgs, '--epochs', '500');
    expect(await json('plans', 'cancel', long.id)).toMatchObject({ id: long.id, status: 'CANCELLED' });

    const spare = await json('models', 'register', '--name', 'spare', '--source', STORIES_URI, '--tokenizer', STORIES_TOKENIZER_URI);
    expect(await json('models', 'delete', spare.id)).toEqual({ id: spare.id, deleted: true, deletedPlans: 0, cancelledPlans: 0 });
    expect((await streamline('models', 'show', spare.id)).stderr).toMatch(/^streamline: NOT_FOUND: model/);
  });

  it('exits non-zero when a watched plan fails, still printing the plan as JSON', async () => {
    const model = await json('models', 'register', '--name', 'stories', '--source', STORIES_URI, '--tokenizer', STORIES_TOKENIZER_URI);
    const tooShort = join(live.dataDir, 'too-short.txt');
    writeFileSync(tooShort, 'Once upon a time.');
    const run = await streamline('plans', 'create', '--model', model.id, '--layers', '1', '--replacement', 'NONE', '--calibration', pathToFileURL(tooShort).href, '--seq-len', '64', '--watch', '--json');
    expect(run.status).toBe(1);
    const failed = JSON.parse(run.stdout);
    // the worker's engine code (BAD_INPUT) arrives as the schema's ErrorCode
    expect(failed).toMatchObject({ status: 'FAILED', error: expect.stringMatching(/no usable sample/), errorCode: 'BAD_USER_INPUT' });
    expect(run.stderr).toMatch(/streamline: plan \S+ FAILED: .*no usable sample/);

    // retried: a new QUEUED plan with the same settings (it will fail the same way: cancelled here)
    const retried = await json('plans', 'retry', failed.id);
    expect(retried).toMatchObject({ status: 'QUEUED', errorCode: null, model: { id: model.id } });
    expect(retried.id).not.toBe(failed.id);
    expect((await json('plans', 'show', retried.id)).config).toEqual((await json('plans', 'show', failed.id)).config);
    await streamline('plans', 'cancel', retried.id);
  });

  it('answers errors with one line on stderr and a non-zero status', async () => {
    const missing = await streamline('plans', 'show', 'nope');
    expect(missing).toMatchObject({ status: 1, stdout: '' });
    expect(missing.stderr).toBe('streamline: NOT_FOUND: plan "nope" not found\n');

    const both = await streamline('plans', 'create', '--model', 'm', '--layers', '2', '--sparsity', '0.2', '--calibration', TINYSTORIES_URI);
    expect(both.status).toBe(2);
    expect(both.stderr).toMatch(/^streamline: give exactly one of --layers N and --sparsity F\nusage: streamline plans create/);

    const unknown = await streamline('plans', 'explode');
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command "plans explode"/);

    const unreachable = await streamline('models', 'list', '--url', 'http://127.0.0.1:9/graphql');
    expect(unreachable.status).toBe(1);
    expect(unreachable.stderr).toMatch(/^streamline: NETWORK: http:\/\/127\.0\.0\.1:9\/graphql: fetch failed/);

    // With --json, the error is the one document on stdout as well.
    const missingJson = await streamline('plans', 'show', 'nope', '--json');
    expect(missingJson.status).toBe(1);
    expect(JSON.parse(missingJson.stdout)).toEqual({ error: { code: 'NOT_FOUND', message: 'plan "nope" not found' } });
    const usageJson = await streamline('--json', 'plans', 'create', '--model', 'm');
    expect(usageJson.status).toBe(2);
    expect(JSON.parse(usageJson.stdout).error.code).toBe('USAGE');
  });
});
