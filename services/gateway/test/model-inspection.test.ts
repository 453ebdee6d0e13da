/**
 * The gateway inspects local models in worker threads (entered through a .js bootstrap that registers
 * tsx, so it works under vitest as under the bin): the same answer as the engine in-process, engine
 * refusals carried across with their code, and a deadline after which the thread is stopped and the
 * caller told BAD_USER_INPUT.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { EngineError, inspectModel } from '@streamline/engine/spec';
import { TINY_CONFIGS, writeTinyModel } from '../../engine/test/fixtures/tiny-models.js';
import { GatewayError } from '../src/errors.js';
import { inspectModelFromEnv } from '../src/models/inspection-settings.js';
import { inspectInThreads } from '../src/models/model-inspection.js';
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
