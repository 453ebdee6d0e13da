/**
 * Each of the gateway's error codes arrives as its typed class, carrying the server's message; transport
 * failures are NetworkErrors; idempotent queries are retried and mutations are not; timeouts hold.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { buildSchema, GraphQLEnumType } from 'graphql';
import ts from 'typescript';
import { afterEach, describe, expect, it } from 'vitest';
import {
  BadUserInputError,
  ConflictError,
  ERROR_CLASS_BY_CODE,
  errorFromResponse,
  ForbiddenError,
  InternalError,
  NetworkError,
  NotFoundError,
  PlanFailedError,
  StreamlineClient,
  StreamlineError,
  UnauthenticatedError,
  UnsupportedModelError,
} from '../src/index.js';
import { useGateway } from './fixtures/gateway.js';
import { calibration, runWithShared, STORIES_TOKENIZER_URI, STORIES_URI } from './fixtures/shared.js';

/** The rejection of a promise that must fail. */
async function rejection(promise: Promise<unknown>): Promise<StreamlineError> {
  const outcome = await promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  if (!('error' in outcome)) throw new Error(`expected a rejection, got ${JSON.stringify(outcome.value)}`);
  expect(outcome.error).toBeInstanceOf(StreamlineError);
  return outcome.error as StreamlineError;
}

describe.runIf(runWithShared)('errors from a live gateway', () => {
  const live = useGateway({ workers: 1 });

  it('NOT_FOUND: an unknown plan or model', async () => {
    const client = live.client();
    const missingPlan = await rejection(client.plan('nope'));
    expect(missingPlan).toBeInstanceOf(NotFoundError);
    expect(missingPlan).toMatchObject({ code: 'NOT_FOUND', message: expect.stringContaining('nope') });
    // …and as the server says it, for a mutation on a plan that does not exist.
    const cancelMissing = await rejection(client.cancelPlan('nope'));
    expect(cancelMissing).toBeInstanceOf(NotFoundError);
    expect(cancelMissing.serverError?.extensions?.code).toBe('NOT_FOUND');
    expect(await rejection(client.model('nope'))).toBeInstanceOf(NotFoundError);
    expect(await rejection(client.retryPlan('nope'))).toBeInstanceOf(NotFoundError);
  });

  it('BAD_USER_INPUT: both layersToPrune and targetSparsity, with the field named', async () => {
    const client = live.client();
    const model = await client.registerModel({ name: 'stories', source: STORIES_URI, tokenizer: STORIES_TOKENIZER_URI });
    const error = await rejection(client.createPruningPlan({ modelId: model.id, layersToPrune: 2, targetSparsity: 0.3, calibration }));
    expect(error).toBeInstanceOf(BadUserInputError);
    expect(error.code).toBe('BAD_USER_INPUT');
    expect((error as BadUserInputError).field).toMatch(/layersToPrune|targetSparsity/);
    expect(error.message).toMatch(/layersToPrune/);
  });

  it('UNSUPPORTED_MODEL: a folder whose config.json says gpt2', async () => {
    const folder = join(live.dataDir, 'gpt2-model');
    mkdirSync(folder, { recursive: true });
    writeFileSync(join(folder, 'config.json'), JSON.stringify({ model_type: 'gpt2', n_layer: 2, n_embd: 8, n_head: 2, vocab_size: 16 }));
    const error = await rejection(live.client().registerModel({ name: 'gpt2', source: pathToFileURL(folder).href }));
    expect(error).toBeInstanceOf(UnsupportedModelError);
    expect(error.message).toMatch(/gpt2/);
  });

  it('CONFLICT: cancelling a finished plan', async () => {
    const client = live.client();
    const model = await client.registerModel({ name: 'stories', source: STORIES_URI, tokenizer: STORIES_TOKENIZER_URI });
    const handle = await client.prune({ modelId: model.id, layersToPrune: 1, replacement: 'NONE', calibration });
    expect((await handle.wait()).status).toBe('SUCCEEDED');
    const error = await rejection(handle.cancel());
    expect(error).toBeInstanceOf(ConflictError);
    expect(error.message).toMatch(/SUCCEEDED/);
    // only FAILED and CANCELLED plans are retried
    const retry = await rejection(client.retryPlan(handle.id));
    expect(retry).toBeInstanceOf(ConflictError);
    expect(retry.message).toMatch(/SUCCEEDED/);
  });
});

describe.runIf(runWithShared)('a plan that fails on its worker, and its retry', () => {
  const live = useGateway({ workers: 1 });

  it('rejects wait() with PlanFailedError carrying the plan’s ErrorCode; retryPlan queues the same settings again', async () => {
    const client = live.client();
    const model = await client.registerModel({ name: 'stories', source: STORIES_URI, tokenizer: STORIES_TOKENIZER_URI });
    const tooShort = join(live.dataDir, 'too-short.txt');
    writeFileSync(tooShort, 'Once upon a time.'); // text, but not one window of 64 tokens: the engine refuses it (BAD_INPUT)
    const handle = await client.prune({ modelId: model.id, layersToPrune: 1, replacement: 'NONE', calibration: { source: pathToFileURL(tooShort).href, seqLen: 64 } });
    const failed = await rejection(handle.wait());
    expect(failed).toBeInstanceOf(PlanFailedError);
    expect(failed).toMatchObject({ code: 'PLAN_FAILED', status: 'FAILED', errorCode: 'BAD_USER_INPUT', reason: expect.stringMatching(/no usable sample/) });

    const retried = await client.retryPlan(handle.id);
    expect(retried).toMatchObject({ status: 'QUEUED', errorCode: null, model: { id: model.id } });
    expect(retried.id).not.toBe(handle.id);
    expect((await client.plan(retried.id)).config).toEqual((await client.plan(handle.id)).config);
    await client.cancelPlan(retried.id).catch(() => undefined); // it would fail the same way
  });
});

describe.runIf(runWithShared)('authentication errors from a gateway that requires tokens', () => {
  const live = useGateway({ workers: 0 });

  it('UNAUTHENTICATED without a token or with a wrong one; FORBIDDEN for the worker token (HTTP and WebSocket)', async (ctx) => {
    if (!live.gateway.adminToken) ctx.skip(); // this gateway does not require client tokens
    expect(await live.client().models()).toEqual(expect.any(Array)); // the admin token works
    for (const token of [undefined, 'not-a-token']) {
      const client = live.client({ token });
      const error = await rejection(client.models());
      expect(error).toBeInstanceOf(UnauthenticatedError);
      expect(error.message.length).toBeGreaterThan(0);
      expect(await rejection(client.planHandle('any').progress().next())).toBeInstanceOf(UnauthenticatedError);
    }
    const worker = live.client({ token: live.gateway.workerToken });
    expect(await rejection(worker.models())).toBeInstanceOf(ForbiddenError);
  });
});

describe('error classes by code', () => {
  it.each([
    ['NOT_FOUND', NotFoundError],
    ['BAD_USER_INPUT', BadUserInputError],
    ['UNSUPPORTED_MODEL', UnsupportedModelError],
    ['UNAUTHENTICATED', UnauthenticatedError],
    ['FORBIDDEN', ForbiddenError],
    ['CONFLICT', ConflictError],
    ['INTERNAL', InternalError],
    ['SOMETHING_NEW', InternalError],
  ])('%s → %o', (code, ErrorClass) => {
    const error = errorFromResponse([{ message: `the server says ${code}`, extensions: { code, field: 'input.x' } }]);
    expect(error).toBeInstanceOf(ErrorClass);
    expect(error.message).toBe(`the server says ${code}`);
  });
});

/** The values of the schema's ErrorCode enum, read from the checked-in schema.graphql the SDK is generated from. */
const SCHEMA_ERROR_CODES = (buildSchema(readFileSync(new URL('../../schema.graphql', import.meta.url), 'utf8')).getType('ErrorCode') as GraphQLEnumType)
  .getValues()
  .map((value) => value.value as string);

describe('the class map covers the schema’s ErrorCode enum', () => {
  it('maps every value of the enum, and nothing else, to a class carrying that code', () => {
    expect(SCHEMA_ERROR_CODES.length).toBeGreaterThan(0);
    expect(Object.keys(ERROR_CLASS_BY_CODE).sort()).toEqual([...SCHEMA_ERROR_CODES].sort());
    for (const code of SCHEMA_ERROR_CODES) {
      const error = errorFromResponse([{ message: `the server says ${code}`, extensions: { code } }]);
      expect(error).toBeInstanceOf(ERROR_CLASS_BY_CODE[code as keyof typeof ERROR_CLASS_BY_CODE]);
      expect(error.code).toBe(code);
      if (code !== 'INTERNAL') expect(error).not.toBeInstanceOf(InternalError);
    }
    // inherited properties are not codes
    expect(errorFromResponse([{ message: 'm', extensions: { code: 'constructor' } }])).toBeInstanceOf(InternalError);
  });

  /**
   * Type-checks sdk/src/errors.ts (and what it imports) with the TypeScript compiler, serving edited
   * copies of some files from memory: the diagnostics in errors.ts, as text.
   */
  function typeErrorsOfErrorsTs(edits: Record<string, (source: string) => string>): string[] {
    const errorsFile = fileURLToPath(new URL('../src/errors.ts', import.meta.url));
    const generatedFile = fileURLToPath(new URL('../src/generated/graphql.ts', import.meta.url));
    const files: Record<string, string> = { errors: errorsFile, generated: generatedFile };
    const options: ts.CompilerOptions = {
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      lib: ['lib.es2023.d.ts'],
      types: [],
    };
    const host = ts.createCompilerHost(options);
    const readFile = host.readFile.bind(host);
    host.readFile = (name) => {
      const text = readFile(name);
      const edited = Object.entries(files).find(([, path]) => path === resolve(name))?.[0];
      return text !== undefined && edited && edits[edited] ? edits[edited](text) : text;
    };
    const program = ts.createProgram({ rootNames: [errorsFile], options, host });
    return ts
      .getPreEmitDiagnostics(program)
      .filter((d) => d.file && resolve(d.file.fileName) === errorsFile)
      .map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
  }

  it('does not compile when a code of the enum is not mapped (TypeScript compiler on errors.ts)', () => {
    expect(typeErrorsOfErrorsTs({})).toEqual([]);
    // a copy of the map with CONFLICT left out
    const withoutConflict = (source: string) => {
      const edited = source.replace(/^ {2}CONFLICT: ConflictError,\n/m, '');
      expect(edited).not.toBe(source);
      return edited;
    };
    expect(typeErrorsOfErrorsTs({ errors: withoutConflict }).join('\n')).toMatch(/CONFLICT/);
    // the gateway adds a code: codegen puts it in the generated ErrorCode union, and errors.ts no longer compiles
    const withNewCode = (source: string) => {
      const edited = source.replace(/^export type ErrorCode =\n/m, "export type ErrorCode =\n  | 'BRAND_NEW_CODE'\n");
      expect(edited).not.toBe(source);
      return edited;
    };
    expect(typeErrorsOfErrorsTs({ generated: withNewCode }).join('\n')).toMatch(/BRAND_NEW_CODE/);
  }, 60_000);
});

describe('the HTTP transport', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
  });

  /** A real HTTP server on port 0 whose answers the test scripts; it records every request. */
  async function serve(handler: (request: IncomingMessage, response: ServerResponse, count: number) => void) {
    const seen: { authorization?: string; body: string }[] = [];
    const server = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk) => (body += chunk));
      request.on('end', () => {
        seen.push({ authorization: request.headers.authorization, body });
        handler(request, response, seen.length);
      });
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`, seen };
  }
  const json = (response: ServerResponse, status: number, body: unknown) => response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));

  it('sends the Bearer token, and none without one', async () => {
    const server = await serve((_req, res) => json(res, 200, { data: { models: [] } }));
    await new StreamlineClient({ url: server.url, token: 't0ken' }).models();
    await new StreamlineClient({ url: server.url }).models();
    expect(server.seen.map((r) => r.authorization)).toEqual(['Bearer t0ken', undefined]);
  });

  it('retries a query after 5xx answers, with backoff', async () => {
    const server = await serve((_req, res, count) => (count < 3 ? res.writeHead(503).end('busy') : json(res, 200, { data: { models: [] } })));
    const client = new StreamlineClient({ url: server.url, retries: 3, retryDelayMs: 10 });
    expect(await client.models()).toEqual([]);
    expect(server.seen).toHaveLength(3);
  });

  it('gives up after its retries with a NetworkError carrying the status', async () => {
    const server = await serve((_req, res) => res.writeHead(502).end('bad gateway'));
    const error = await rejection(new StreamlineClient({ url: server.url, retries: 2, retryDelayMs: 10 }).models());
    expect(error).toBeInstanceOf(NetworkError);
    expect((error as NetworkError).status).toBe(502);
    expect(server.seen).toHaveLength(3);
  });

  it('never retries a mutation', async () => {
    const server = await serve((_req, res) => res.writeHead(503).end('busy'));
    const error = await rejection(new StreamlineClient({ url: server.url, retries: 3, retryDelayMs: 10 }).deleteModel('m'));
    expect(error).toBeInstanceOf(NetworkError);
    expect(server.seen).toHaveLength(1);
  });

  it('times out an attempt that gets no answer', async () => {
    const server = await serve(() => {}); // never answers
    const error = await rejection(new StreamlineClient({ url: server.url, timeoutMs: 200, retries: 1, retryDelayMs: 10 }).models());
    expect(error).toBeInstanceOf(NetworkError);
    expect(error.message).toMatch(/no answer within 200 ms/);
    expect(server.seen).toHaveLength(2);
  });

  it('reports a refused connection as a NetworkError', async () => {
    const server = await serve(() => {});
    await new Promise((resolve) => servers.pop()!.close(resolve)); // the port is now closed
    const error = await rejection(new StreamlineClient({ url: server.url, retries: 0 }).models());
    expect(error).toBeInstanceOf(NetworkError);
    expect(error.message).toMatch(/ECONNREFUSED/);
  });
});
