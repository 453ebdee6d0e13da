/**
 * The gateway inspects local models in worker threads (entered through a .js bootstrap that registers
 * tsx, so it works under vitest as under the bin): the same answer as the engine in-process, engine
 * refusals carried across with their code, and a deadline after which the thread is stopped and the
 * caller told BAD_USER_INPUT.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { EngineError, inspectModel } from '@streamline/engine/spec';
import { TINY_CONFIGS, writeTinyModel } from '../../engine/test/fixtures/tiny-models.js';
import { GatewayError } from '../src/errors.js';
import { inspectModelFromEnv } from '../src/models/inspection-settings.js';
import { checkTasksInThreads, countWindowsInThreads, inspectInThreads, type ConfinedReads } from '../src/models/model-inspection.js';
import { SourceService } from '../src/sources/source.service.js';
import { TEST_SOURCES } from './fixtures/gateway.js';
import { modelWithHugeHeader } from './fixtures/hostile-models.js';

describe('model inspection in worker threads', () => {
  it('answers what the engine answers in-process, family included', async () => {
    const dir = writeTinyModel('opt');
    const inThread = await inspectInThreads()(dir);
    const inProcess = inspectModel(dir);
    expect(inThread.family).toBe(inProcess.family);
    expect({ ...inThread, family: undefined }).toEqual({ ...inProcess, family: undefined });
  });

  it('carries engine refusals across with their code', async () => {
    const dir = writeTinyModel('llama');
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...TINY_CONFIGS.llama, num_hidden_layers: 1e9 }));
    const error = await inspectInThreads()(dir).then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(EngineError);
    expect(error).toMatchObject({ code: 'CORRUPT_FILE', message: expect.stringMatching(/num_hidden_layers is 1000000000, outside the accepted range 1 to 1024/) });
  });

  it('stops an inspection past its deadline: BAD_USER_INPUT saying it took too long', async () => {
    const sources = new SourceService(inspectInThreads({ timeoutMs: 1 }), { policy: TEST_SOURCES });
    // A header of 100,000 entries takes tens of milliseconds to parse: a tiny model alone can finish within 1 ms.
    const error = await sources.inspectModel('input.source', pathToFileURL(modelWithHugeHeader(100_000)).href).then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(GatewayError);
    expect((error as GatewayError).code).toBe('BAD_USER_INPUT');
    expect((error as GatewayError).message).toBe('input.source: inspecting the model took longer than 1 ms (STREAMLINE_INSPECT_TIMEOUT_MS) and was stopped');
  });

  it('runs more inspections than its slots, in turn', async () => {
    const inspect = inspectInThreads({ concurrency: 1 });
    const dirs = [writeTinyModel('llama'), writeTinyModel('qwen2'), writeTinyModel('mistral')];
    const infos = await Promise.all(dirs.map((dir) => inspect(dir)));
    expect(infos.map((info) => info.family.modelType)).toEqual(['llama', 'qwen2', 'mistral']);
  });

  it('reads STREAMLINE_INSPECT_TIMEOUT_MS, refusing what is not a whole number of milliseconds', () => {
    expect(typeof inspectModelFromEnv({ STREAMLINE_INSPECT_TIMEOUT_MS: '2500' })).toBe('function');
    for (const raw of ['0', '-5', '1.5', 'soon', '1e9']) {
      expect(() => inspectModelFromEnv({ STREAMLINE_INSPECT_TIMEOUT_MS: raw })).toThrow(/STREAMLINE_INSPECT_TIMEOUT_MS=.* is not a whole number of milliseconds from 1 to 600000/);
    }
  });
});

describe('inspection threads read the tenant\'s files confined', () => {
  const work = mkdtempSync(join(tmpdir(), 'streamline-confined-threads-'));
  const root = join(work, 'root');
  const outside = join(work, 'outside');
  mkdirSync(root);
  mkdirSync(outside);
  const confined = (...inputs: string[]): ConfinedReads => ({ inputs, roots: [root], denied: [] });
  const swapped = (name: string, target: string) => {
    symlinkSync(target, join(root, name));
    return join(root, name);
  };

  it('refuses, by descriptor, a shard, a text and a task file that point outside the roots once opened', async () => {
    // a model whose weights were swapped, after the gateway's check by name, for a link to an identical copy outside
    const model = join(root, 'model');
    renameSync(writeTinyModel('llama'), model);
    const weights = readdirSync(model).find((name) => name.endsWith('.safetensors'))!;
    copyFileSync(join(model, weights), join(outside, weights));
    rmSync(join(model, weights));
    symlinkSync(join(outside, weights), join(model, weights));
    await expect(inspectInThreads()(model)).resolves.toMatchObject({ config: expect.anything() }); // followed: the window a check by name leaves
    await expect(inspectInThreads()(model, confined(model))).rejects.toMatchObject({ code: 'BAD_INPUT', message: `${join(model, weights)} is not under the directories this gateway reads file:// sources from (STREAMLINE_FILE_ROOTS)` });

    writeFileSync(join(outside, 'ids.jsonl'), Array.from({ length: 4 }, (_, i) => JSON.stringify({ input_ids: [1, 2 + i, 3, 4] })).join('\n'));
    const text = swapped('held-out.jsonl', join(outside, 'ids.jsonl'));
    const count = { file: text, tokenizer: null, seqLen: 4, wanted: 2, vocabSize: 32, calibration: null };
    await expect(countWindowsInThreads()(count)).resolves.toMatchObject({ windows: 2 });
    await expect(countWindowsInThreads()({ ...count, confined: confined(text) })).rejects.toMatchObject({ code: 'BAD_INPUT', message: expect.stringMatching(/held-out\.jsonl is not under the directories/) });

    writeFileSync(join(outside, 'task.jsonl'), '{"query":"a","choices":["b","c"],"gold":0}\n');
    const task = swapped('task.jsonl', join(outside, 'task.jsonl'));
    await expect(checkTasksInThreads()({ file: task, limit: 4 })).resolves.toBe(1);
    await expect(checkTasksInThreads()({ file: task, limit: 4, confined: confined(task) })).rejects.toMatchObject({ message: expect.stringMatching(/task\.jsonl is not under the directories/) });
  });

  it('the source service confines a tenant\'s model and not the gateway\'s own', async () => {
    const model = join(root, 'plain-model');
    renameSync(writeTinyModel('llama'), model);
    const asked: (ConfinedReads | undefined)[] = [];
    const sources = new SourceService((path, confinedReads) => (asked.push(confinedReads), inspectModel(path)), { policy: { ...TEST_SOURCES, fileRoots: [root] } });
    await sources.inspectModel('input.source', pathToFileURL(model).href);
    await sources.inspectModel('input.source', pathToFileURL(model).href, { trusted: true });
    expect(asked).toEqual([{ inputs: [model], roots: [root], denied: [] }, undefined]);
    rmSync(work, { recursive: true, force: true });
  });
});
