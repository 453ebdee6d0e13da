/** registerModel, model(s) and deleteModel over HTTP, with the shared stories260K model. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { data, failure, TEST_SOURCES, useGateways } from './fixtures/gateway.js';
import { runWithShared, STORIES_TOKENIZER_URI, STORIES_URI } from './fixtures/shared.js';

const REGISTER = /* GraphQL */ `
  mutation ($input: RegisterModelInput!) {
    registerModel(input: $input) { id name source tokenizer status error architecture numLayers hiddenSize numParameters createdAt }
  }
`;
const MODEL = /* GraphQL */ `
  query ($id: ID!) { model(id: $id) { id name architecture numLayers numParameters importance { id } plans { id } } }
`;

describe.skipIf(!runWithShared)('models', () => {
  const gateways = useGateways();

  it('registers the shared stories260K model from its config alone and reads it back', async () => {
    const { url } = await gateways.start();
    const { registerModel } = await data(url, REGISTER, { input: { name: 'stories260K', source: STORIES_URI, tokenizer: STORIES_TOKENIZER_URI } });
    expect(registerModel).toMatchObject({
      name: 'stories260K',
      source: STORIES_URI,
      tokenizer: STORIES_TOKENIZER_URI,
      status: 'READY',
      error: null,
      architecture: 'llama',
      numLayers: 5,
      hiddenSize: 64,
      numParameters: 260032,
    });
    expect(Date.parse(registerModel.createdAt)).not.toBeNaN();

    const { model } = await data(url, MODEL, { id: registerModel.id });
    expect(model).toEqual({ id: registerModel.id, name: 'stories260K', architecture: 'llama', numLayers: 5, numParameters: 260032, importance: [], plans: [] });
    const { models } = await data(url, '{ models { id } }');
    expect(models).toEqual([{ id: registerModel.id }]);
    expect((await data(url, MODEL, { id: 'no-such-model' })).model).toBeNull();
  });

  it.each([
    ['a relative path', 'models/stories260K.bin', 'file:// sources must be absolute paths'],
    ['a relative file URI', 'file://models/stories260K.bin', 'must be absolute paths'],
    ['an unknown scheme', 'ftp://example.com/model.bin', 'unknown scheme "ftp:"'],
    ['s3:// without S3 configured', 's3://bucket/models/stories', 'storage for it is not configured'],
    ['an hf:// source without an organisation', 'hf://tinyllamas', 'expected hf://org/name'],
  ])('answers %s as BAD_USER_INPUT naming input.source and the accepted schemes', async (_what, source, expected) => {
    // s3://bucket/models/ is an allowed prefix (STREAMLINE_S3_SOURCES), so what is refused is the missing S3 access
    const { url } = await gateways.start({ sources: { ...TEST_SOURCES, s3Sources: ['s3://bucket/models/'] } });
    const error = await failure(url, REGISTER, { input: { name: 'x', source } });
    expect(error.code).toBe('BAD_USER_INPUT');
    expect(error.message).toContain('input.source');
    expect(error.message).toContain(expected);
    if (!expected.includes('configured') && !source.startsWith('hf://')) expect(error.message).toMatch(/file:\/\/.*s3:\/\/.*hf:\/\/|absolute/);
  });

  it('answers a missing model file (under a file root) with NOT_FOUND naming the field and the path', async () => {
    const { url } = await gateways.start();
    const missing = join(gateways.tempDir(), 'nonexistent', 'model.bin');
    const error = await failure(url, REGISTER, { input: { name: 'x', source: pathToFileURL(missing).href } });
    expect(error).toMatchObject({ code: 'NOT_FOUND' });
    expect(error.message).toContain('input.source');
    expect(error.message).toContain('/nonexistent/model.bin');
  });

  it('answers a missing tokenizer (under a file root) with NOT_FOUND naming input.tokenizer', async () => {
    const { url } = await gateways.start();
    const missing = join(gateways.tempDir(), 'tok.bin');
    const error = await failure(url, REGISTER, { input: { name: 'x', source: STORIES_URI, tokenizer: pathToFileURL(missing).href } });
    expect(error.code).toBe('NOT_FOUND');
    expect(error.message).toContain('input.tokenizer');
    const relative = await failure(url, REGISTER, { input: { name: 'x', source: STORIES_URI, tokenizer: 'tok512.bin' } });
    expect(relative.code).toBe('BAD_USER_INPUT');
    expect(relative.message).toContain('input.tokenizer');
  });

  it('refuses an unsupported architecture with UNSUPPORTED_MODEL and the engine’s message', async () => {
    const { url } = await gateways.start();
    const dir = join(gateways.tempDir(), 'gpt2');
    mkdirSync(dir);
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'gpt2', n_layer: 2, n_embd: 8 }));
    const error = await failure(url, REGISTER, { input: { name: 'gpt2', source: pathToFileURL(dir).href } });
    expect(error.code).toBe('UNSUPPORTED_MODEL');
    expect(error.message).toContain('input.source');
    expect(error.message).toContain('gpt2');
    expect(error.message).toContain('llama');
    expect((await data(url, '{ models { id } }')).models).toEqual([]);
  });

  it('refuses an empty name', async () => {
    const { url } = await gateways.start();
    const error = await failure(url, REGISTER, { input: { name: ' ', source: STORIES_URI } });
    expect(error.code).toBe('BAD_USER_INPUT');
    expect(error.message).toContain('input.name');
  });

  it('deletes a model, and answers NOT_FOUND for one that is not there', async () => {
    const { url } = await gateways.start();
    const { registerModel } = await data(url, REGISTER, { input: { name: 's', source: STORIES_URI } });
    const remove = 'mutation ($id: ID!) { deleteModel(id: $id) }';
    expect(await data(url, remove, { id: registerModel.id })).toEqual({ deleteModel: true });
    expect((await data(url, '{ models { id } }')).models).toEqual([]);
    const error = await failure(url, remove, { id: registerModel.id });
    expect(error.code).toBe('NOT_FOUND');
    expect(error.message).toContain(registerModel.id);
  });
});
