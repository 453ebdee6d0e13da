/**
 * `hf://org/name[@revision]` as a read-only store over the Hugging Face Hub's HTTP API with plain fetch
 * (no @huggingface/hub dependency): the revision is resolved once to a commit (so every file comes from
 * the same commit), files are listed with their sizes and checksums, and downloaded from
 * `{endpoint}/{repo}/resolve/{commit}/{file}`. HF_ENDPOINT overrides https://huggingface.co (mirrors,
 * tests); HF_TOKEN is sent as a Bearer token and never appears in an error message.
 */
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { EngineError } from '../errors.js';
import { expectedDigest, VerifyingStream, type ExpectedDigest } from './integrity.js';
import type { GetOptions, ObjectHead, ObjectInfo, ReadableStore } from './object-store.js';
import { backoffDelay, retryPolicy, sleep, type RetryPolicy } from './retry.js';
import { redact } from './s3-errors.js';

export interface HfSourceOptions {
  readonly env?: NodeJS.ProcessEnv;
  readonly retry?: Partial<RetryPolicy>;
}

interface Sibling {
  readonly rfilename: string;
  readonly size?: number;
  readonly blobId?: string;
  readonly lfs?: { readonly sha256?: string; readonly size?: number };
}

/**
 * `hf://org/name[@revision]` names a repository (a model folder); `hf://org/name[@revision]/path/file.gguf`
 * names one GGUF file in it (a repository often holds several quantizations). In the file form the
 * revision ends at the first '/' (write a revision with slashes percent-encoded: refs%2Fpr%2F1).
 */
export function parseHfUri(uri: string): { repo: string; revision: string; file: string | null } {
  const gguf = /^hf:\/\/([A-Za-z0-9][\w.-]*\/[\w.-]+)(?:@([^/\s]+))?\/([^\s]+\.gguf)$/i.exec(uri);
  if (gguf) {
    const file = gguf[3];
    if (file.split('/').some((segment) => segment === '' || segment === '.' || segment === '..')) {
      throw new EngineError('BAD_INPUT', `'${uri}': the file path ${JSON.stringify(file)} has an empty, '.' or '..' segment`);
    }
    return { repo: gguf[1], revision: gguf[2] === undefined ? 'main' : decodeRevision(uri, gguf[2]), file };
  }
  const match = /^hf:\/\/([A-Za-z0-9][\w.-]*\/[\w.-]+)(?:@([^\s]+))?$/.exec(uri);
  if (!match) throw new EngineError('BAD_INPUT', `'${uri}' is not a Hugging Face source: expected hf://org/name, hf://org/name@revision or hf://org/name@revision/file.gguf`);
  return { repo: match[1], revision: match[2] ?? 'main', file: null };
}

function decodeRevision(uri: string, revision: string): string {
  try {
    return decodeURIComponent(revision);
  } catch {
    throw new EngineError('BAD_INPUT', `'${uri}': the revision ${JSON.stringify(revision)} is not valid percent-encoding`);
  }
}

export async function openHfSource(uri: string, options: HfSourceOptions = {}): Promise<HfSource> {
  const env = options.env ?? process.env;
  const { repo, revision } = parseHfUri(uri);
  const source = new HfSource(repo, revision, (env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/+$/, ''), env.HF_TOKEN, retryPolicy(options.retry));
  await source.resolve();
  return source;
}

export class HfSource implements ReadableStore {
  readonly uri: string;
  /** The commit the revision resolved to; every download is pinned to it. */
  commit = '';
  private siblings = new Map<string, Sibling>();

  constructor(
    readonly repo: string,
    readonly revision: string,
    private readonly endpoint: string,
    private readonly token: string | undefined,
    private readonly retry: RetryPolicy,
  ) {
    this.uri = `hf://${repo}@${revision}`;
  }

  /** Resolves the revision to a commit and lists the repository's files with sizes and hashes. */
  async resolve(): Promise<void> {
    const url = `${this.endpoint}/api/models/${this.repo}/revision/${encodeURIComponent(this.revision)}?blobs=true`;
    const response = await this.fetch(url, this.uri);
    const info = (await response.json()) as { sha?: string; siblings?: Sibling[] };
    if (!info.sha || !Array.isArray(info.siblings)) throw new EngineError('STORAGE', `unexpected answer from ${this.endpoint} for ${this.uri}: no commit or file list`);
    this.commit = info.sha;
    this.siblings = new Map(info.siblings.map((s) => [s.rfilename, s]));
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    for (const sibling of this.siblings.values()) {
      if (sibling.rfilename.startsWith(prefix)) yield this.info(sibling);
    }
  }

  async head(key: string): Promise<ObjectHead | null> {
    const sibling = this.siblings.get(key);
    return sibling ? { ...this.info(sibling), sha256: sibling.lfs?.sha256 } : null;
  }

  async get(key: string, options: GetOptions = {}): Promise<Readable> {
    const sibling = this.siblings.get(key);
    const where = `${this.uri}/${key}`;
    if (!sibling) throw new EngineError('NOT_FOUND', `file not found in ${this.uri} (commit ${this.commit}): ${key}`);
    const { range } = options;
    const headers: Record<string, string> = range ? { Range: `bytes=${range.start}-${range.end === undefined ? '' : range.end - 1}` } : {};
    const response = await this.fetch(`${this.endpoint}/${this.repo}/resolve/${this.commit}/${encodePath(key)}`, where, headers);
    const body = response.body ? Readable.fromWeb(response.body as WebReadableStream<Uint8Array>) : Readable.from([]);
    if (range) return body;
    const info = this.info(sibling);
    const verifier = new VerifyingStream(where, { size: info.size, digest: digestOf(sibling) });
    body.on('error', (err) => verifier.destroy(new EngineError('STORAGE', `download of ${where} broke: ${redact((err as Error).message, this.secrets())}`)));
    body.pipe(verifier);
    return verifier;
  }

  private info(sibling: Sibling): ObjectInfo {
    return { key: sibling.rfilename, size: sibling.lfs?.size ?? sibling.size ?? 0, etag: sibling.lfs?.sha256 ?? sibling.blobId ?? '' };
  }

  private secrets(): string[] {
    return this.token ? [this.token] : [];
  }

  /** fetch with the token, retrying network failures and 5xx/429 with backoff; precise errors otherwise. */
  private async fetch(url: string, what: string, headers: Record<string, string> = {}): Promise<Response> {
    const auth: Record<string, string> = this.token ? { Authorization: `Bearer ${this.token}` } : {};
    for (let attempt = 1; ; attempt++) {
      let response: Response | undefined;
      let failure = '';
      try {
        // fetch drops Authorization on a cross-origin redirect (the Hub's CDN must not see the token).
        response = await fetch(url, { headers: { ...auth, ...headers } });
      } catch (err) {
        // undici says "fetch failed"; the reason (ECONNREFUSED, ENOTFOUND, …) is in its cause.
        const cause = (err as { cause?: { code?: string; message?: string; errors?: { code?: string }[] } }).cause;
        failure = cause?.code ?? cause?.errors?.[0]?.code ?? cause?.message ?? (err as Error).message;
      }
      if (response?.ok) return response;
      if (response) {
        const status = response.status;
        await response.body?.cancel();
        if (status === 401 || status === 403) {
          throw new EngineError('STORAGE', `access denied to ${what} (HTTP ${status}); gated or private repositories need HF_TOKEN with access to ${this.repo}`);
        }
        if (status === 404) throw new EngineError('NOT_FOUND', `not found on ${this.endpoint}: ${what}`);
        if (status === 416) throw new EngineError('BAD_INPUT', `byte range outside ${what}`);
        if (status < 500 && status !== 429) throw new EngineError('STORAGE', `${this.endpoint} answered HTTP ${status} for ${what}`);
        failure = `HTTP ${status}`;
      }
      if (attempt >= this.retry.attempts) {
        throw new EngineError('STORAGE', redact(`network failure fetching ${what} from ${this.endpoint} after ${attempt} attempts: ${failure}`, this.secrets()));
      }
      await sleep(backoffDelay(this.retry, attempt + 1));
    }
  }
}

/** LFS files carry their sha256; small files their git blob id (sha1 of "blob <size>\0" + content). */
function digestOf(sibling: Sibling): ExpectedDigest | null {
  if (sibling.lfs?.sha256) return expectedDigest(sibling.lfs.sha256, undefined, false);
  if (sibling.blobId && /^[0-9a-f]{40}$/.test(sibling.blobId)) return { algorithm: 'git-sha1', hex: sibling.blobId };
  return null;
}

function encodePath(key: string): string {
  return key.split('/').map(encodeURIComponent).join('/');
}
