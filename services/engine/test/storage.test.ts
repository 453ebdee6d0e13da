/**
 * The object-store layer against real servers on loopback: s3rver (an S3-compatible server, through the
 * real @aws-sdk/client-s3 — no mocked client), a local directory, and an HTTP server laid out like the
 * Hugging Face Hub.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { inspectModel, loadModel } from '../src/models/model.js';
import { openHfSource, parseHfUri } from '../src/storage/hf-source.js';
import { LocalObjectStore } from '../src/storage/local-store.js';
import { CACHE_MANIFEST, fetchModel } from '../src/storage/model-cache.js';
import { openObjectStore, readObject, type ObjectStore } from '../src/storage/object-store.js';
import { inspectRemoteModel, modelFolderUri } from '../src/storage/remote-inspect.js';
import { S3ObjectStore } from '../src/storage/s3-store.js';
import { llamaGguf, TINY_LLAMA, type GgufKv } from './fixtures/gguf-writer.js';
import { tinyWeights, writeTinyModel } from './fixtures/tiny-models.js';
import { startHub, stopHubs } from '@streamline/testing/hub-server';
import { engineFailure } from './fixtures/failures.js';

const require = createRequire(import.meta.url);

interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
  httpServer: Server;
}
const S3rver = require('s3rver') as new (options: Record<string, unknown>) => S3rverInstance;
const { DUMMY_ACCOUNT } = require('s3rver/lib/models/account') as { DUMMY_ACCOUNT: { createKeyPair(id: string, secret: string): void } };

// Fake, distinctive credentials: the tests look for them in every message and log line.
const ACCESS_KEY = 'AKIASTREAMLINETEST01';
const SECRET_KEY = 'streamline-test-secret-never-print-me';
DUMMY_ACCOUNT.createKeyPair(ACCESS_KEY, SECRET_KEY);
const HF_TOKEN = 'hf_streamlineTestTokenNeverPrinted';
const SECRETS = [ACCESS_KEY, SECRET_KEY, HF_TOKEN];

const BUCKET = 'models';
const FAST_RETRY = { attempts: 3, baseDelayMs: 5, maxDelayMs: 20 };

const dirs: string[] = [];
afterAll(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));
const tempDir = (name = 'storage') => {
  const dir = mkdtempSync(join(tmpdir(), `streamline-${name}-`));
  dirs.push(dir);
  return dir;
};

/** Every error message and log line any test saw; none may contain a credential. */
const seen: string[] = [];
const logLine = (line: string) => void seen.push(line);
const failure = (promise: Promise<unknown>) => engineFailure(promise, seen);
afterAll(() => {
  for (const line of seen) for (const secret of SECRETS) expect(line).not.toContain(secret);
});

interface S3Server {
  readonly dir: string;
  readonly port: number;
  readonly env: NodeJS.ProcessEnv;
  /** Requests as "METHOD url", in order. */
  readonly requests: string[];
  readonly httpServer: Server;
  stop(): Promise<void>;
}
const servers: S3Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.stop()));
});

async function startS3(): Promise<S3Server> {
  const dir = tempDir('s3rver');
  const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: dir, configureBuckets: [{ name: BUCKET }] });
  const { port } = await server.run();
  const requests: string[] = [];
  server.httpServer.on('request', (req: { method?: string; url?: string }) => requests.push(`${req.method} ${req.url}`));
  let stopped = false;
  const handle: S3Server = {
    dir,
    port,
    requests,
    httpServer: server.httpServer,
    env: s3Env(port),
    async stop() {
      if (stopped) return;
      stopped = true;
      const closed = server.close();
      server.httpServer.closeAllConnections(); // breaks downloads in flight, as a crash would
      await closed;
    },
  };
  servers.push(handle);
  return handle;
}

function s3Env(port: number, overrides: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    AWS_ACCESS_KEY_ID: ACCESS_KEY,
    AWS_SECRET_ACCESS_KEY: SECRET_KEY,
    AWS_REGION: 'us-east-1',
    AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${port}`,
    STREAMLINE_S3_FORCE_PATH_STYLE: 'true',
    ...overrides,
  };
}

const s3Store = (server: S3Server, prefix = 'streamline', env: NodeJS.ProcessEnv = server.env, bucket = BUCKET) =>
  new S3ObjectStore({ bucket, prefix, env, retry: FAST_RETRY, log: logLine });

/** GETs of objects (not listings) the server answered. */
const objectGets = (server: S3Server) => server.requests.filter((r) => r.startsWith('GET ') && !r.includes('list-type') && r.split('/').length > 2);

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** A deterministic pattern, so that an off-by-one anywhere shows. */
function pattern(size: number, seed = 7): Buffer {
  const out = Buffer.alloc(size);
  let x = seed;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

async function uploadFolder(store: ObjectStore, dir: string, prefix: string): Promise<string[]> {
  const names = readdirSync(dir).sort();
  for (const name of names) await store.put(`${prefix}/${name}`, { path: join(dir, name) }, { contentType: name.endsWith('.json') ? 'application/json' : undefined });
  return names;
}

function expectSameWeights(a: string, b: string): void {
  const left = loadModel(a);
  const right = loadModel(b);
  expect([...right.weights.keys()].sort()).toEqual([...left.weights.keys()].sort());
  for (const [name, tensor] of left.weights) {
    expect(right.weights.get(name)!.shape).toEqual(tensor.shape);
    expect(Buffer.from(right.weights.get(name)!.data.buffer).equals(Buffer.from(tensor.data.buffer))).toBe(true);
  }
}

/** Where s3rver keeps an object's bytes. */
const s3rverObjectPath = (server: S3Server, fullKey: string) => join(server.dir, BUCKET, `${fullKey}._S3rver_object`);

function flipByte(path: string, at = 100): void {
  const bytes = readFileSync(path);
  bytes[at] ^= 0xff;
  writeFileSync(path, bytes); // same size: only a checksum can tell
}

// ---------------------------------------------------------------------------------------------------
// The behaviour both implementations share.

interface StoreKind {
  readonly name: string;
  make(): Promise<{ store: ObjectStore; corrupt(key: string): void }>;
}

const KINDS: StoreKind[] = [
  {
    name: 'S3 (s3rver)',
    async make() {
      const server = await startS3();
      const store = s3Store(server);
      return { store, corrupt: (key) => flipByte(s3rverObjectPath(server, `streamline/${key}`)) };
    },
  },
  {
    name: 'local directory',
    async make() {
      const root = join(tempDir('local-store'), 'objects');
      return { store: new LocalObjectStore(root), corrupt: (key) => flipByte(join(root, key)) };
    },
  },
];

describe.each(KINDS)('object store: $name', (kind) => {
  it('puts, heads, lists, reads and deletes objects', async () => {
    const { store } = await kind.make();
    const written = await store.put('a/one.json', Buffer.from('{"x":1}'), { contentType: 'application/json' });
    expect(written).toMatchObject({ key: 'a/one.json', size: 7, sha256: sha256(Buffer.from('{"x":1}')) });
    await store.put('a/b/two.bin', Readable.from([Buffer.from('two')]));
    await store.put('ab/three.bin', Buffer.from('3'));
    const head = await store.head('a/one.json');
    expect(head).toMatchObject({ key: 'a/one.json', size: 7, etag: written.etag, sha256: written.sha256 });
    expect(await store.head('a/none.json')).toBeNull();
    const listed = [];
    for await (const item of store.list('a/')) listed.push(item);
    expect(listed.map((i) => [i.key, i.size]).sort()).toEqual([['a/b/two.bin', 3], ['a/one.json', 7]]);
    expect((await readObject(store, 'a/b/two.bin')).toString()).toBe('two');
    await store.delete('a/one.json');
    await store.delete('a/one.json'); // deleting a missing key is fine, as in S3
    expect(await store.head('a/one.json')).toBeNull();
  });

  it('reads byte ranges, streaming', async () => {
    const { store } = await kind.make();
    const data = pattern(1 << 20);
    await store.put('blob.bin', data);
    expect((await readObject(store, 'blob.bin', { range: { start: 1000, end: 5000 } })).equals(data.subarray(1000, 5000))).toBe(true);
    expect((await readObject(store, 'blob.bin', { range: { start: data.length - 10 } })).equals(data.subarray(data.length - 10))).toBe(true);
    expect((await readObject(store, 'blob.bin', { range: { start: 5, end: 5 } })).length).toBe(0);
    expect((await failure(store.get('blob.bin', { range: { start: 10, end: 5 } }))).code).toBe('BAD_INPUT');
  });

  it('uploads a > 16 MiB object (multipart on S3) and downloads it byte-exact', async () => {
    const { store } = await kind.make();
    const data = pattern(20 * 1024 * 1024 + 123);
    const written = await store.put('checkpoints/step-100/tensors.safetensors', data);
    expect(written.size).toBe(data.length);
    const head = await store.head('checkpoints/step-100/tensors.safetensors');
    expect(head).toMatchObject({ size: data.length, sha256: sha256(data) });
    expect(sha256(await readObject(store, 'checkpoints/step-100/tensors.safetensors'))).toBe(sha256(data));
    // A stream of unknown length takes the same path.
    await store.put('checkpoints/streamed.bin', Readable.from([data.subarray(0, 9 << 20), data.subarray(9 << 20)]));
    expect(sha256(await readObject(store, 'checkpoints/streamed.bin'))).toBe(sha256(data));
  });

  it('detects an object corrupted in storage (CORRUPT_FILE naming the key)', async () => {
    const { store, corrupt } = await kind.make();
    await store.put('models/x/model.safetensors', pattern(4096));
    corrupt('models/x/model.safetensors');
    const error = await failure(readObject(store, 'models/x/model.safetensors'));
    expect(error.code).toBe('CORRUPT_FILE');
    expect(error.message).toContain('models/x/model.safetensors');
    expect(error.message).toMatch(/checksum mismatch/);
  });

  it('names a missing key precisely', async () => {
    const { store } = await kind.make();
    await store.put('models/other/config.json', Buffer.from('{}'));
    const error = await failure(store.get('models/nope/config.json'));
    expect(error.code).toBe('NOT_FOUND');
    expect(error.message).toContain('models/nope/config.json');
  });

  it('refuses keys that could escape the store', async () => {
    const { store } = await kind.make();
    for (const key of ['../etc/passwd', '/abs', 'a//b', 'a/./b', '']) expect((await failure(store.put(key, Buffer.from('x')))).code).toBe('BAD_INPUT');
  });

  it('fetches a sharded model into the local cache and reuses the complete copy', async () => {
    const { store } = await kind.make();
    const model = writeTinyModel('llama', { maxShardBytes: 8 * 1024 });
    const names = await uploadFolder(store, model, 'models/tiny-llama');
    expect(names.filter((n) => n.endsWith('.safetensors')).length).toBeGreaterThan(1);
    expect(names).toContain('model.safetensors.index.json');
    const cache = tempDir('cache');

    const first = await fetchModel('models/tiny-llama', cache, store);
    expect(first.downloaded).toEqual(names);
    expect(existsSync(join(first.path, CACHE_MANIFEST))).toBe(true);
    expectSameWeights(model, first.path);

    const second = await fetchModel('models/tiny-llama/', cache, store);
    expect(second.path).toBe(first.path);
    expect(second.downloaded).toEqual([]);

    // A changed file is downloaded again; the others are kept.
    const config = JSON.parse(readFileSync(join(model, 'config.json'), 'utf8'));
    await store.put('models/tiny-llama/config.json', Buffer.from(JSON.stringify({ ...config, note: 'v2' })));
    const third = await fetchModel('models/tiny-llama', cache, store);
    expect(third.downloaded).toEqual(['config.json']);
    expect(JSON.parse(readFileSync(join(third.path, 'config.json'), 'utf8')).note).toBe('v2');
    expectSameWeights(model, third.path);
    expect(readdirSync(cache)).toHaveLength(1); // no temporary or old copies left behind
  });

  it('never leaves a partial model copy when a shard is corrupted', async () => {
    const { store, corrupt } = await kind.make();
    const model = writeTinyModel('llama', { maxShardBytes: 8 * 1024 });
    const names = await uploadFolder(store, model, 'models/bad');
    const shard = names.find((n) => n.endsWith('.safetensors'))!;
    corrupt(`models/bad/${shard}`);
    const cache = tempDir('cache');
    const error = await failure(fetchModel('models/bad', cache, store));
    expect(error.code).toBe('CORRUPT_FILE');
    expect(error.message).toContain(`models/bad/${shard}`);
    expect(readdirSync(cache)).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------
// S3 specifics: configuration, multipart, errors, retries.

describe('S3 object store', () => {
  it('is chosen by STREAMLINE_STORAGE=s3://bucket/prefix with settings from the environment', async () => {
    const server = await startS3();
    const store = await openObjectStore({ env: { ...server.env, STREAMLINE_STORAGE: `s3://${BUCKET}/deploy/a` }, retry: FAST_RETRY });
    expect(store).toBeInstanceOf(S3ObjectStore);
    expect(store.uri).toBe(`s3://${BUCKET}/deploy/a/`);
    await store.put('x.txt', Buffer.from('hello'));
    expect(existsSync(s3rverObjectPath(server, 'deploy/a/x.txt'))).toBe(true);
    // Without STREAMLINE_STORAGE: the data directory.
    const dataDir = tempDir('data');
    const local = await openObjectStore({ env: {}, dataDir });
    expect(local).toBeInstanceOf(LocalObjectStore);
    expect((local as LocalObjectStore).root).toBe(dataDir);
    expect((await failure(openObjectStore('ftp://host/x'))).code).toBe('BAD_INPUT');
    expect((await failure(openObjectStore('s3://Not_A_Bucket/x'))).code).toBe('BAD_INPUT');
  });

  it('uploads large objects in parts and never shows a partial one', async () => {
    const server = await startS3();
    const store = s3Store(server);
    const file = join(tempDir('upload'), 'checkpoint.bin');
    const data = pattern(17 * 1024 * 1024 + 5, 3);
    writeFileSync(file, data);
    await store.put('ckpt/checkpoint.bin', { path: file });
    const parts = server.requests.filter((r) => r.startsWith('PUT ') && r.includes('partNumber='));
    expect(parts.length).toBe(3); // 8 MiB + 8 MiB + the rest
    expect(server.requests.some((r) => r.startsWith('POST ') && r.includes('uploads'))).toBe(true);
    expect((await store.head('ckpt/checkpoint.bin'))?.sha256).toBe(sha256(data)); // hashed before uploading

    // A stream that fails after the first part: the upload is abandoned, no object appears.
    async function* failing() {
      yield pattern(20 * 1024 * 1024);
      throw new Error('the trainer died');
    }
    const died = await failure(store.put('ckpt/half.bin', Readable.from(failing())));
    expect(died.code).toBe('STORAGE');
    expect(died.message).toBe('reading the data for s3://models/streamline/ckpt/half.bin failed, nothing was stored: the trainer died');
    const missing = await failure(store.put('ckpt/x.bin', { path: join(tempDir('upload'), 'absent.bin') }));
    expect(missing.code).toBe('NOT_FOUND');
    expect(missing.message).toMatch(/file to upload to s3:\/\/models\/streamline\/ckpt\/x\.bin not found: .*absent\.bin/);
    expect(await store.head('ckpt/half.bin')).toBeNull();
    const listed = [];
    for await (const item of store.list('ckpt/')) listed.push(item.key);
    expect(listed).toEqual(['ckpt/checkpoint.bin']);
  });

  it('verifies the MD5 ETag of objects other tools uploaded', async () => {
    const server = await startS3();
    const store = s3Store(server);
    // s3rver recomputes nothing on read: its stored MD5 stays, as a real store's ETag would.
    const { S3Client, PutObjectCommand } = await import('@aws-sdk/client-s3');
    const client = new S3Client({ endpoint: server.env.AWS_ENDPOINT_URL_S3, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY } });
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'streamline/other.bin', Body: pattern(3000) }));
    client.destroy();
    expect((await store.head('other.bin'))?.sha256).toBeUndefined();
    expect((await readObject(store, 'other.bin')).equals(pattern(3000))).toBe(true);
    flipByte(s3rverObjectPath(server, 'streamline/other.bin'));
    const error = await failure(readObject(store, 'other.bin'));
    expect(error.code).toBe('CORRUPT_FILE');
    expect(error.message).toMatch(/s3:\/\/models\/streamline\/other\.bin: md5 checksum mismatch/);
  });

  it('names a missing bucket precisely, for every operation', async () => {
    const server = await startS3();
    const store = s3Store(server, 'p', server.env, 'no-such-bucket');
    const attempts: (() => Promise<unknown>)[] = [
      () => store.get('k.json'),
      () => store.head('k.json'),
      () => store.put('k.json', Buffer.from('x')),
      async () => {
        for await (const _ of store.list('')) void _;
      },
    ];
    for (const attempt of attempts) {
      const error = await failure(attempt());
      expect(error.code).toBe('NOT_FOUND');
      expect(error.message).toMatch(/S3 bucket 'no-such-bucket' does not exist/);
    }
    const missingKey = await failure(s3Store(server).get('models/none/config.json'));
    expect(missingKey.message).toBe('object not found: s3://models/streamline/models/none/config.json');
  });

  it('reports denied access without echoing the credentials', async () => {
    const server = await startS3();
    const unknownKey = 'AKIAUNKNOWNKEY999999';
    const store = s3Store(server, 'streamline', s3Env(server.port, { AWS_ACCESS_KEY_ID: unknownKey, AWS_SECRET_ACCESS_KEY: SECRET_KEY }));
    for (const attempt of [() => store.get('x'), () => store.head('x'), () => store.put('x', Buffer.from('x'))]) {
      const error = await failure(attempt());
      expect(error.code).toBe('STORAGE');
      expect(error.message).toMatch(/access denied to s3:\/\/models\/streamline\/x/);
      expect(error.message).not.toContain(unknownKey);
    }
  });

  it('resumes a download whose connection breaks, byte-exact', async () => {
    const server = await startS3();
    const store = s3Store(server);
    const data = pattern(24 * 1024 * 1024, 11);
    await store.put('big.bin', data);
    const before = seen.length;
    const stream = await store.get('big.bin');
    const chunks: Buffer[] = [];
    let broken = false;
    for await (const chunk of stream) {
      chunks.push(chunk as Buffer);
      if (!broken) {
        broken = true;
        server.httpServer.closeAllConnections(); // the server stays up; the connection does not
      }
    }
    expect(sha256(Buffer.concat(chunks))).toBe(sha256(data));
    expect(seen.slice(before).some((line) => /broke at byte \d+.*resuming/.test(line))).toBe(true);
  });

  it('ends a download with a clear STORAGE error when the server goes away mid-stream', async () => {
    const server = await startS3();
    const store = s3Store(server);
    await store.put('big.bin', pattern(24 * 1024 * 1024, 5));
    const stream = await store.get('big.bin', { range: { start: 1024 } });
    const reading = (async () => {
      let first = true;
      for await (const _ of stream) {
        if (first) {
          first = false;
          await server.stop();
        }
      }
    })();
    const error = await failure(reading);
    expect(error.code).toBe('STORAGE');
    expect(error.message).toMatch(/network failure .*s3:\/\/models\/streamline\/big\.bin .*after 3 attempts: ECONNREFUSED/);
  });

  it('retries a closed port with backoff, then fails with STORAGE', async () => {
    const server = await startS3();
    const port = server.port;
    await server.stop();
    const store = s3Store(server, 'streamline', s3Env(port));
    const before = seen.length;
    const error = await failure(store.head('config.json'));
    expect(error.code).toBe('STORAGE');
    expect(error.message).toBe(`network failure on HeadObject s3://models/streamline/config.json (endpoint http://127.0.0.1:${port}) after 3 attempts: ECONNREFUSED`);
    expect(seen.slice(before).filter((line) => line.includes('retry'))).toHaveLength(2);
  });

  it('fetches by s3:// URI and does not touch object data for a cached model', async () => {
    const server = await startS3();
    const store = s3Store(server, '');
    const model = writeTinyModel('llama', { maxShardBytes: 8 * 1024 });
    const names = await uploadFolder(store, model, 'zoo/tiny');
    const cache = tempDir('cache');
    const settings = { env: server.env, retry: FAST_RETRY };
    const first = await fetchModel(`s3://${BUCKET}/zoo/tiny`, cache, undefined, { settings });
    expect(first.downloaded).toEqual(names);
    const getsAfterFirst = objectGets(server).length;
    expect(getsAfterFirst).toBe(names.length);
    const second = await fetchModel(`s3://${BUCKET}/zoo/tiny`, cache, undefined, { settings });
    expect(second.downloaded).toEqual([]);
    expect(objectGets(server).length).toBe(getsAfterFirst); // one listing only, no GET of any object
    expectSameWeights(model, second.path);
    // The same folder named inside a store opened on the whole bucket is the same cached copy.
    const viaStore = await fetchModel(`s3://${BUCKET}/zoo/tiny`, cache, store);
    expect(viaStore).toMatchObject({ path: second.path, downloaded: [] });
    expect((await failure(fetchModel('s3://elsewhere/zoo/tiny', cache, store))).code).toBe('BAD_INPUT');
    expect((await failure(fetchModel('s3://models/zoo/none', cache, undefined, { settings }))).code).toBe('NOT_FOUND');
  });
});

// ---------------------------------------------------------------------------------------------------
// Local directory specifics.

describe('local object store', () => {
  it('leaves no temporary files, and lists none while a put is in progress', async () => {
    const root = tempDir('local');
    const store = new LocalObjectStore(root);
    let release!: () => void;
    const gate = new Promise<void>((done) => (release = done));
    async function* slow() {
      yield Buffer.from('part one,');
      await gate;
      yield Buffer.from('part two');
    }
    const writing = store.put('ckpt/state.json', Readable.from(slow()));
    await new Promise((done) => setTimeout(done, 50));
    expect(await store.head('ckpt/state.json')).toBeNull(); // not visible until complete
    const during = [];
    for await (const item of store.list('')) during.push(item.key);
    expect(during).toEqual([]);
    release();
    await writing;
    expect((await readObject(store, 'ckpt/state.json')).toString()).toBe('part one,part two');
    expect(readdirSync(join(root, 'ckpt'))).toEqual(['state.json']);

    // A producer that dies mid-put leaves the previous object as it was, and no temporary file.
    async function* dying() {
      yield Buffer.from('half');
      throw new Error('the trainer died');
    }
    const died = await failure(store.put('ckpt/state.json', Readable.from(dying())));
    expect(died.code).toBe('STORAGE');
    expect(died.message).toMatch(/ckpt\/state\.json failed, nothing was stored: the trainer died/);
    expect((await readObject(store, 'ckpt/state.json')).toString()).toBe('part one,part two');
    expect(readdirSync(join(root, 'ckpt'))).toEqual(['state.json']);
  });

  it('names a missing store directory', async () => {
    const store = new LocalObjectStore(join(tempDir('local'), 'absent'));
    for (const attempt of [() => store.get('a'), () => store.head('a')]) {
      const error = await failure(attempt());
      expect(error.code).toBe('NOT_FOUND');
      expect(error.message).toMatch(/storage directory does not exist: .*absent/);
    }
  });
});

// ---------------------------------------------------------------------------------------------------
// hf://org/name@revision against a local server laid out like the Hub.

afterEach(stopHubs);

describe('hf:// sources', () => {
  const commit = 'c0ffee0000000000000000000000000000000001';

  it('downloads a model at a revision through the Hub file URLs, verified, and reuses it', async () => {
    const model = writeTinyModel('llama', { maxShardBytes: 8 * 1024 });
    const hub = await startHub('org/tiny-llama', model, commit, HF_TOKEN);
    const cache = tempDir('hf-cache');
    const settings = { env: { HF_ENDPOINT: hub.endpoint, HF_TOKEN } };
    const first = await fetchModel('hf://org/tiny-llama', cache, undefined, { settings });
    expect(first.downloaded).toEqual(readdirSync(model).sort()); // README.md is not a model file
    expect(hub.requests.some((r) => r.startsWith(`GET /org/tiny-llama/resolve/${commit}/config.json`))).toBe(true);
    expect(hub.requests.some((r) => r.startsWith('GET /cdn/'))).toBe(true);
    expectSameWeights(model, first.path);
    const downloads = hub.requests.length;
    const second = await fetchModel('hf://org/tiny-llama@main', cache, undefined, { settings });
    expect(second.downloaded).toEqual([]);
    expect(hub.requests.length - downloads).toBe(1); // the revision lookup, no file download

    const source = await openHfSource(`hf://org/tiny-llama@${commit}`, settings);
    expect(source.commit).toBe(commit);
    const config = readFileSync(join(model, 'config.json'));
    expect((await readObject(source, 'config.json', { range: { start: 2, end: 12 } })).equals(config.subarray(2, 12))).toBe(true);
  });

  it('detects a corrupted download (sha256 of LFS files, git blob id of small files)', async () => {
    const model = writeTinyModel('llama', { maxShardBytes: 8 * 1024 });
    const hub = await startHub('org/tiny', model, commit, HF_TOKEN);
    const shard = readdirSync(model).find((n) => n.endsWith('.safetensors'))!;
    hub.tamper(shard);
    const settings = { env: { HF_ENDPOINT: hub.endpoint, HF_TOKEN } };
    const cache = tempDir('hf-cache');
    const error = await failure(fetchModel('hf://org/tiny', cache, undefined, { settings }));
    expect(error.code).toBe('CORRUPT_FILE');
    expect(error.message).toContain(`hf://org/tiny@main/${shard}: sha256 checksum mismatch`);
    expect(readdirSync(cache)).toEqual([]);
    hub.tamper(shard); // restored
    hub.tamper('config.json');
    expect((await failure(fetchModel('hf://org/tiny', cache, undefined, { settings }))).message).toMatch(/config\.json: git-sha1 checksum mismatch/);
  });

  it('names missing repositories and denied access without the token', async () => {
    const model = writeTinyModel('llama');
    const hub = await startHub('org/tiny', model, commit, HF_TOKEN);
    const missing = await failure(openHfSource('hf://org/other@v1', { env: { HF_ENDPOINT: hub.endpoint, HF_TOKEN } }));
    expect(missing.code).toBe('NOT_FOUND');
    expect(missing.message).toContain('hf://org/other@v1');
    const denied = await failure(openHfSource('hf://org/tiny', { env: { HF_ENDPOINT: hub.endpoint, HF_TOKEN: 'hf_wrongTokenNeverPrinted' } }));
    expect(denied.code).toBe('STORAGE');
    expect(denied.message).toMatch(/access denied to hf:\/\/org\/tiny@main \(HTTP 401\); .*HF_TOKEN/);
    expect(denied.message).not.toContain('hf_wrongTokenNeverPrinted');
    expect((await failure(openHfSource('hf://not a repo'))).code).toBe('BAD_INPUT');
    const closed = createServer();
    await new Promise<void>((done) => closed.listen(0, '127.0.0.1', done));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise((done) => closed.close(done));
    const down = await failure(openHfSource('hf://org/tiny', { env: { HF_ENDPOINT: `http://127.0.0.1:${closedPort}`, HF_TOKEN }, retry: FAST_RETRY }));
    expect(down.message).toMatch(/network failure fetching hf:\/\/org\/tiny@main .*after 3 attempts: ECONNREFUSED/);
  });
});


// ---------------------------------------------------------------------------------------------------
// GGUF models: one file in a bucket or a Hub repository.

describe('GGUF model sources (s3://…/model.gguf, hf://org/name@rev/model.gguf)', () => {
  const commit = 'c0ffee0000000000000000000000000000000002';
  const config = { ...TINY_LLAMA, vocab_size: 16384 }; // embeddings and head of 0.5 MiB each in Q8_0, after the header
  /** 1.5 MiB of metadata: the header needs a second ranged read (the first is 1 MiB). */
  const padding: GgufKv = ['test.padding', 'ARRAY', new Uint8Array(1.5 * 1024 * 1024), 'UINT8'];
  const folder = tempDir('gguf-source');
  const local = join(folder, 'tiny.Q8_0.gguf');
  writeFileSync(local, llamaGguf(config, tinyWeights('llama', config, 5), 'Q8_0', [padding]));
  const size = readFileSync(local).length;

  it('inspects an s3:// GGUF from its header by ranged reads, then fetches, caches and loads the file', async () => {
    const server = await startS3();
    const store = s3Store(server, '');
    await store.put('zoo/tiny.Q8_0.gguf', { path: local });
    const settings = { env: server.env, retry: FAST_RETRY };
    const uri = `s3://${BUCKET}/zoo/tiny.Q8_0.gguf`;
    const before = objectGets(server).length;
    const info = await inspectRemoteModel(uri, { settings });
    const expected = inspectModel(local);
    expect(info).toMatchObject({ format: 'gguf', path: uri, config: expected.config, numParameters: expected.numParameters, tokenizerPath: null, files: [{ key: 'tiny.Q8_0.gguf', size }] });
    expect(objectGets(server).length - before).toBe(2); // [0, 1 MiB), then [1 MiB, 2 MiB): never the weights

    const cache = tempDir('gguf-cache');
    const first = await fetchModel(uri, cache, undefined, { settings });
    expect(first.path.endsWith('/tiny.Q8_0.gguf')).toBe(true);
    expect(first.downloaded).toEqual(['tiny.Q8_0.gguf']);
    expect(readFileSync(first.path).equals(readFileSync(local))).toBe(true);
    const gets = objectGets(server).length;
    const second = await fetchModel(uri, cache, undefined, { settings });
    expect(second).toMatchObject({ path: first.path, downloaded: [] });
    expect(objectGets(server).length).toBe(gets);
    expectSameWeights(local, second.path);
    expect(modelFolderUri(uri)).toBe(uri); // a worker fetches the file, not a folder named after it

    expect(await failure(inspectRemoteModel(`s3://${BUCKET}/zoo/none.gguf`, { settings }))).toMatchObject({ code: 'NOT_FOUND', message: `no GGUF file at s3://${BUCKET}/zoo/none.gguf` });
    expect(await failure(fetchModel(`s3://${BUCKET}/zoo/none.gguf`, cache, undefined, { settings }))).toMatchObject({ code: 'NOT_FOUND' });
  });

  it('inspects and fetches hf://org/name@revision/file.gguf; a file that is not GGUF is refused after one ranged read', async () => {
    const repo = tempDir('gguf-repo');
    writeFileSync(join(repo, 'tiny.Q8_0.gguf'), readFileSync(local));
    writeFileSync(join(repo, 'bogus.gguf'), pattern(3 * 1024 * 1024));
    const hub = await startHub('org/tiny-gguf', repo, commit, HF_TOKEN);
    const settings = { env: { HF_ENDPOINT: hub.endpoint, HF_TOKEN } };
    const uri = `hf://org/tiny-gguf@${commit}/tiny.Q8_0.gguf`;
    const info = await inspectRemoteModel(uri, { settings });
    expect(info).toMatchObject({ format: 'gguf', path: uri, numParameters: inspectModel(local).numParameters });
    expect(hub.bytesServed.get('tiny.Q8_0.gguf')).toBe(2 * 1024 * 1024);
    expect(size).toBeGreaterThan(2.5 * 1024 * 1024); // 1.1 MiB of Q8_0 weights after the header were not read

    const fetched = await fetchModel('hf://org/tiny-gguf/tiny.Q8_0.gguf', tempDir('gguf-hf-cache'), undefined, { settings });
    expect(readFileSync(fetched.path).equals(readFileSync(local))).toBe(true); // verified against the LFS sha256 on the way

    const bogus = await failure(inspectRemoteModel('hf://org/tiny-gguf@main/bogus.gguf', { settings }));
    expect(bogus).toMatchObject({ code: 'CORRUPT_FILE', message: expect.stringContaining('hf://org/tiny-gguf@main/bogus.gguf is not a valid GGUF file') });
    expect(hub.bytesServed.get('bogus.gguf')).toBe(1024 * 1024);
    expect(await failure(inspectRemoteModel('hf://org/tiny-gguf@main/none.gguf', { settings }))).toMatchObject({ code: 'NOT_FOUND' });
    expect(await failure(inspectRemoteModel('hf://org/tiny-gguf@main/../x.gguf', { settings }))).toMatchObject({ code: 'BAD_INPUT' });
    expect(parseHfUri('hf://org/name@refs%2Fpr%2F1/sub/m.gguf')).toEqual({ repo: 'org/name', revision: 'refs/pr/1', file: 'sub/m.gguf' });
    expect(parseHfUri('hf://org/name@v1')).toEqual({ repo: 'org/name', revision: 'v1', file: null });
  });
});
