/**
 * Held-out evaluation through the API: at createPruningPlan, each local perplexity text must yield the
 * windows it asks for at its own seq-len — after the calibration windows only when it is the calibration
 * file, by content — or the plan is refused with BAD_USER_INPUT naming the field (counted in the
 * inspection threads); and a plan whose evaluation text is a distinct held-out file runs to SUCCEEDED
 * with a real worker, reporting perplexity on that file's windows at the seq-len asked.
 */
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { beforeEach, describe, expect, it } from 'vitest';
import { countHeldOutWindows, inspectModel, loadTokenizer } from '@streamline/engine';
import type { RunningGateway } from '../src/server.js';
import { countWindowsInThreads, ThreadStopped } from '../src/models/model-inspection.js';
import type { Model } from '../src/models/model.type.js';
import { checkEvaluationWindows } from '../src/plans/plan.windows.js';
import { data, failure, useGateways } from './fixtures/gateway.js';
import { runWithShared, STORIES_TOKENIZER_URI, STORIES_URI, TINYSTORIES_URI } from './fixtures/shared.js';
import { storedSpec } from './fixtures/stored-model.js';
import { CREATE, waitForStatus } from './fixtures/workers.js';

const REGISTER = 'mutation ($input: RegisterModelInput!) { registerModel(input: $input) { id } }';
const TINYSTORIES = fileURLToPath(TINYSTORIES_URI);
const TOKENIZER = fileURLToPath(STORIES_TOKENIZER_URI);

describe.runIf(runWithShared)('held-out evaluation texts', () => {
  const gateways = useGateways();
  let gateway: RunningGateway;
  let modelId: string;
  let dir: string;
  /** A file of the excerpt's second half, `chars` long (from a line start): a text distinct from the calibration excerpt. */
  const heldOutFile = (name: string, chars: number) => {
    const text = readFileSync(TINYSTORIES, 'utf8');
    const secondHalf = text.slice(Math.floor(text.length / 2));
    const path = join(dir, name);
    writeFileSync(path, secondHalf.slice(secondHalf.indexOf('\n') + 1).slice(0, chars));
    return path;
  };
  const windowsOf = async (path: string, seqLen: number) => (await countHeldOutWindows(path, await loadTokenizer(TOKENIZER), { seqLen, wanted: 10_000, vocabSize: 512 })).windows;
  const plan = (calibration: Record<string, unknown>, perplexity: Record<string, unknown>[]) => ({
    input: { modelId, layersToPrune: 1, replacement: 'NONE', calibration, evaluation: { perplexity } },
  });

  beforeEach(async () => {
    gateway = await gateways.start();
    dir = gateways.tempDir();
    modelId = (await data(gateway.url, REGISTER, { input: { name: 'stories260K', source: STORIES_URI, tokenizer: STORIES_TOKENIZER_URI } })).registerModel.id;
  });

  it('refuses at creation a held-out file too short for the windows asked, naming the field and both counts; accepts one long enough', async () => {
    const short = heldOutFile('short.txt', 250);
    const has = await windowsOf(short, 32);
    expect(has).toBeGreaterThan(1);
    expect(has).toBeLessThan(32);
    const calibration = { source: TINYSTORIES_URI, samples: 32, seqLen: 32 };
    const refused = await failure(gateway.url, CREATE, plan(calibration, [{ source: TINYSTORIES_URI, samples: 4, seqLen: 32 }, { source: pathToFileURL(short).href, samples: 32, seqLen: 32 }]));
    expect(refused.code).toBe('BAD_USER_INPUT');
    expect(refused.message).toBe(
      `input.evaluation.perplexity[1].source: ${JSON.stringify(pathToFileURL(short).href)} yields ${has} windows of 32 tokens; 32 are needed (input.evaluation.perplexity[1].samples): ` +
        'ask for fewer samples or a shorter seqLen, or give a longer file',
    );
    expect((await data(gateway.url, '{ plans { id } }')).plans).toEqual([]);

    // The same file, as many windows as it has: a distinct file is counted from its first window, not after the 32 calibration ones.
    const { createPruningPlan: accepted } = await data(gateway.url, CREATE, plan(calibration, [{ source: pathToFileURL(short).href, samples: has, seqLen: 32 }]));
    expect(accepted.status).toBe('QUEUED');
  });

  it('counts the calibration file (by content, under any path) after its calibration windows', async () => {
    const excerpt = join(dir, 'excerpt.txt');
    writeFileSync(excerpt, readFileSync(TINYSTORIES, 'utf8').slice(0, 20_000));
    const copy = join(dir, 'copy-of-excerpt.txt');
    copyFileSync(excerpt, copy);
    const total = await windowsOf(excerpt, 64);
    expect(total).toBeGreaterThan(40);
    const calibration = { source: pathToFileURL(excerpt).href, samples: 16, seqLen: 32 }; // 8 windows of 64 tokens
    const refused = await failure(gateway.url, CREATE, plan(calibration, [{ source: pathToFileURL(copy).href, samples: total - 7, seqLen: 64 }]));
    expect(refused.code).toBe('BAD_USER_INPUT');
    expect(refused.message).toContain(`input.evaluation.perplexity[0].source: ${JSON.stringify(pathToFileURL(copy).href)} yields ${total} windows of 64 tokens, ${total - 8} of them after the 8 calibration windows (it is the calibration file, by content); ${total - 7} are needed`);
    const { createPruningPlan: accepted } = await data(gateway.url, CREATE, plan(calibration, [{ source: pathToFileURL(copy).href, samples: total - 8, seqLen: 64 }]));
    expect(accepted.status).toBe('QUEUED');
  });

  it('counts a .jsonl text by records, and refuses one that does not parse without quoting it', async () => {
    const ids = join(dir, 'ids.jsonl');
    writeFileSync(ids, Array.from({ length: 3 }, (_, i) => JSON.stringify({ input_ids: [1, 10 + i, 20, 30] })).join('\n'));
    const calibration = { source: TINYSTORIES_URI, samples: 8, seqLen: 32 };
    const refused = await failure(gateway.url, CREATE, plan(calibration, [{ source: pathToFileURL(ids).href, samples: 4, seqLen: 32 }]));
    expect(refused).toMatchObject({ code: 'BAD_USER_INPUT', message: expect.stringMatching(/^input\.evaluation\.perplexity\[0\]\.source: .* yields 3 windows of 32 tokens; 4 are needed/) });
    expect((await data(gateway.url, CREATE, plan(calibration, [{ source: pathToFileURL(ids).href, samples: 3, seqLen: 32 }]))).createPruningPlan.status).toBe('QUEUED');
    const broken = join(dir, 'broken.jsonl');
    writeFileSync(broken, '{"text": "secret words"\n');
    const unreadable = await failure(gateway.url, CREATE, plan(calibration, [{ source: pathToFileURL(broken).href, samples: 1, seqLen: 32 }]));
    expect(unreadable).toMatchObject({ code: 'BAD_USER_INPUT', message: `input.evaluation.perplexity[0].source: ${JSON.stringify(pathToFileURL(broken).href)} cannot be read as evaluation text: a line is not valid JSON` });
  });

  it('counts in an inspection thread, answering what the engine counts in-process', async () => {
    const short = heldOutFile('thread.txt', 250);
    const count = await countWindowsInThreads()({ file: short, tokenizer: TOKENIZER, seqLen: 32, wanted: 100, vocabSize: 512, calibration: { path: TINYSTORIES, windows: 32, seqLen: 32 } });
    expect(count).toEqual({ windows: await windowsOf(short, 32), skipped: 0, available: await windowsOf(short, 32) });
  });

  it('leaves to the engine what it cannot count here: a count stopped at its deadline, an s3:// text', async () => {
    // long enough that counting takes far longer than the 1 ms deadline (250 characters could finish in it),
    // short enough for fewer than the 1000 windows asked below
    const short = heldOutFile('stopped.txt', 60_000);
    expect(await windowsOf(short, 32)).toBeLessThan(1000);
    const stopped = countWindowsInThreads({ timeoutMs: 1 });
    await expect(stopped({ file: short, tokenizer: TOKENIZER, seqLen: 32, wanted: 100, vocabSize: 512, calibration: null })).rejects.toBeInstanceOf(ThreadStopped);
    const model = { source: STORIES_URI, tokenizer: STORIES_TOKENIZER_URI } as Model;
    const info = inspectModel(fileURLToPath(STORIES_URI));
    const config = (source: string) =>
      storedSpec({ calibration: { source: TINYSTORIES_URI, samples: 32, seqLen: 32 }, evaluation: { perplexity: [{ source, samples: 1000, seqLen: 32 }], tasks: [], limit: null } });
    await expect(checkEvaluationWindows(config(pathToFileURL(short).href), model, info, stopped)).resolves.toBeUndefined();
    await expect(checkEvaluationWindows(config('s3://bucket/held-out.txt'), model, info, countWindowsInThreads())).resolves.toBeUndefined();
    // The same text counted to the end is refused.
    await expect(checkEvaluationWindows(config(pathToFileURL(short).href), model, info, countWindowsInThreads())).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
  });

  it('runs a plan calibrated on TinyStories and evaluated on a distinct held-out file to SUCCEEDED, with perplexity on that file at the seq-len asked', async () => {
    const withWorker = await gateways.start({ workers: 1 });
    const id = (await data(withWorker.url, REGISTER, { input: { name: 'stories260K', source: STORIES_URI, tokenizer: STORIES_TOKENIZER_URI } })).registerModel.id;
    const heldOut = heldOutFile('held-out.txt', 250);
    const windows = await windowsOf(heldOut, 32);
    const { createPruningPlan: created } = await data(withWorker.url, CREATE, {
      input: {
        modelId: id,
        layersToPrune: 1,
        replacement: 'NONE',
        calibration: { source: TINYSTORIES_URI, samples: 8, seqLen: 32 },
        evaluation: { perplexity: [{ source: pathToFileURL(heldOut).href, samples: windows, seqLen: 32 }] },
      },
    });
    const done = await waitForStatus(withWorker.url, created.id, ['SUCCEEDED', 'FAILED']);
    expect(done.error).toBeNull();
    expect(done.status).toBe('SUCCEEDED');
    expect(done.stability.perplexity).toHaveLength(1);
    expect(done.stability.perplexity[0].dataset).toBe(pathToFileURL(heldOut).href); // the source as the plan gave it
    expect(done.stability.perplexity[0].original).toBeGreaterThan(1);
    // The output's manifest carries the engine's report: that file's windows at the seq-len asked, none skipped.
    const manifest = JSON.parse(readFileSync(join(fileURLToPath(done.outputUri), 'streamline.json'), 'utf8'));
    expect(manifest.evaluation.report.perplexity[0]).toMatchObject({ file: heldOut, windows, seqLen: 32, tokens: windows * 31, skippedCalibrationWindows: 0 });
  });
});
