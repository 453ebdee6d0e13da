/**
 * The object store over S3 (AWS, MinIO, Ceph, s3rver) with @aws-sdk/client-s3 v3. Configuration comes
 * from the environment only — AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (else the SDK's default chain:
 * shared config, IMDS, IRSA web identity), AWS_REGION, AWS_ENDPOINT_URL_S3, and
 * STREAMLINE_S3_FORCE_PATH_STYLE=true for MinIO-style endpoints — never from an API.
 *
 * Atomic visibility: S3 itself makes PutObject and CompleteMultipartUpload atomic — an object appears
 * only once complete, and the parts of an unfinished multipart upload are never listed or readable.
 * So put writes straight to the final key: a temporary key + CopyObject would read and write every byte
 * twice (and CopyObject stops at 5 GiB) for no gain. A failed multipart upload is aborted so its parts
 * do not linger (s3rver answers MethodNotAllowed to AbortMultipartUpload; that is tolerated).
 */
import { createHash } from 'node:crypto';
import { Readable, pipeline } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type CompletedPart,
  type GetObjectCommandOutput,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { EngineError } from '../errors.js';
import { ByteReader, bodyChunks, bodyFailure, sha256Before } from './body.js';
import { expectedDigest, VerifyingStream } from './integrity.js';
import { checkKey, MAX_PRESIGN_SECONDS, MIN_PART_SIZE, MULTIPART_THRESHOLD, normalizePrefix, type GetOptions, type ObjectHead, type ObjectInfo, type ObjectStore, type PutBody, type PutOptions } from './object-store.js';
import { backoffDelay, retryPolicy, sleep, type RetryPolicy } from './retry.js';
import { errorCode, isRetryable, networkReason, redact, s3Location, toEngineError } from './s3-errors.js';

export interface S3StoreOptions {
  readonly bucket: string;
  readonly prefix?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly retry?: Partial<RetryPolicy>;
  readonly log?: (line: string) => void;
  /** Parts in flight during a multipart upload (memory: this × the part size). */
  readonly uploadConcurrency?: number;
}

/** S3 allows at most 10 000 parts: parts grow by 8 MiB every 1 000 so a stream of unknown length still fits (~440 GB). */
function partSize(partNumber: number, knownSize?: number): number {
  if (knownSize !== undefined) return Math.max(MIN_PART_SIZE, Math.ceil(knownSize / 10_000));
  return MIN_PART_SIZE * (1 + Math.floor((partNumber - 1) / 1000));
}

export class S3ObjectStore implements ObjectStore {
  readonly uri: string;
  readonly bucket: string;
  readonly prefix: string;
  private readonly client: S3Client;
  private readonly endpoint: string;
  private readonly secrets: string[];
  private readonly retry: RetryPolicy;
  private readonly log: (line: string) => void;
  private readonly concurrency: number;

  constructor(options: S3StoreOptions) {
    const env = options.env ?? process.env;
    this.bucket = options.bucket;
    this.prefix = normalizePrefix(options.prefix ?? '');
    this.uri = `s3://${this.bucket}/${this.prefix}`;
    this.retry = retryPolicy(options.retry);
    this.log = options.log ?? (() => {});
    this.concurrency = options.uploadConcurrency ?? 4;
    this.secrets = [env.AWS_ACCESS_KEY_ID, env.AWS_SECRET_ACCESS_KEY, env.AWS_SESSION_TOKEN].filter((s): s is string => !!s);
    const endpoint = env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL;
    const region = env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1';
    this.endpoint = endpoint ? displayEndpoint(endpoint) : `https://s3.${region}.amazonaws.com`;
    this.client = new S3Client({
      region,
      endpoint,
      forcePathStyle: env.STREAMLINE_S3_FORCE_PATH_STYLE === 'true',
      credentials:
        env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
          ? { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY, sessionToken: env.AWS_SESSION_TOKEN }
          : undefined,
      // One retry loop, ours (below): it covers every call and the body reads the SDK cannot see, logs
      // each retry, and ends in one clear error. Nested SDK retries would multiply the attempts.
      maxAttempts: 1,
      // Checksums by Content-MD5, which every S3-compatible store checks; the SDK's newer default
      // (CRC32 trailers, aws-chunked streaming) is not understood by s3rver and older MinIO/Ceph.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }

  destroy(): void {
    this.client.destroy();
  }

  private fullKey(key: string): string {
    return this.prefix + checkKey(key);
  }

  /** Sends a command, retrying network failures and 5xx with backoff; then throws a precise EngineError. */
  private async send<T>(operation: string, key: string | undefined, command: () => { input: unknown }): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return (await this.client.send(command() as never)) as T;
      } catch (err) {
        if (!isRetryable(err) || attempt >= this.retry.attempts) throw this.error(err, operation, key, attempt);
        const delay = backoffDelay(this.retry, attempt + 1);
        this.log(redact(`storage: ${operation} ${s3Location(this.bucket, key)} failed (${describe(err)}); retry ${attempt + 1}/${this.retry.attempts} in ${Math.round(delay)} ms`, this.secrets));
        await sleep(delay);
      }
    }
  }

  private error(err: unknown, operation: string, key: string | undefined, attempts?: number): EngineError {
    return toEngineError(err, { operation, bucket: this.bucket, key, endpoint: this.endpoint, attempts }, this.secrets);
  }

  /**
   * A URL with which anyone can GET the object until it expires (SigV4 query signing; S3 allows at most
   * 7 days). Signing happens locally, with no request. The URL carries the access key ID, as every
   * pre-signed URL does — never the secret key.
   */
  presignGet(key: string, expiresInSeconds: number): Promise<string> {
    if (!Number.isInteger(expiresInSeconds) || expiresInSeconds < 1 || expiresInSeconds > MAX_PRESIGN_SECONDS) {
      throw new EngineError('BAD_INPUT', `a pre-signed URL lasts 1 to ${MAX_PRESIGN_SECONDS} seconds (7 days), not ${expiresInSeconds}`);
    }
    return getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.bucket, Key: this.fullKey(key) }), { expiresIn: expiresInSeconds });
  }

  async head(key: string): Promise<ObjectHead | null> {
    const Key = this.fullKey(key);
    try {
      const out = await this.send<{ ContentLength?: number; ETag?: string; Metadata?: Record<string, string>; ContentType?: string }>('HeadObject', Key, () => new HeadObjectCommand({ Bucket: this.bucket, Key }));
      return { key, size: out.ContentLength ?? 0, etag: out.ETag ?? '', sha256: out.Metadata?.sha256, contentType: out.ContentType };
    } catch (err) {
      if (!(err instanceof EngineError) || err.code !== 'NOT_FOUND') throw err;
      // A HEAD answer has no body, so a 404 does not say whether the key or the bucket is missing.
      await this.send('HeadBucket', undefined, () => new HeadBucketCommand({ Bucket: this.bucket })).catch((bucketErr: EngineError) => {
        throw bucketErr.code === 'NOT_FOUND' ? new EngineError('NOT_FOUND', `S3 bucket '${this.bucket}' does not exist at ${this.endpoint} (HeadObject ${s3Location(this.bucket, Key)})`) : bucketErr;
      });
      return null;
    }
  }

  async get(key: string, options: GetOptions = {}): Promise<Readable> {
    const Key = this.fullKey(key);
    const start = options.range?.start ?? 0;
    const end = options.range?.end;
    if (start < 0 || (end !== undefined && end < start)) throw new EngineError('BAD_INPUT', `invalid byte range [${start}, ${end}) for ${s3Location(this.bucket, Key)}`);
    if (end === start) return Readable.from([]);
    const request = (from: number, etag?: string) => () =>
      new GetObjectCommand({ Bucket: this.bucket, Key, Range: options.range || from > 0 ? `bytes=${from}-${end === undefined ? '' : end - 1}` : undefined, IfMatch: etag });
    // The first request happens here, so that a missing bucket or key fails the call itself.
    const first = await this.send<GetObjectCommandOutput>('GetObject', Key, request(start));
    const total = first.ContentRange ? Number(/\/(\d+)$/.exec(first.ContentRange)?.[1]) : (first.ContentLength ?? 0);
    const stop = Math.min(end ?? total, total);
    const body = this.resumableBody(Key, first, start, stop, request);
    if (options.range) return body;
    const encrypted = first.ServerSideEncryption === 'aws:kms' || first.ServerSideEncryption === 'aws:kms:dsse' || !!first.SSECustomerAlgorithm;
    const verifier = new VerifyingStream(s3Location(this.bucket, Key), { size: total, digest: expectedDigest(first.Metadata?.sha256, first.ETag, !encrypted) });
    pipeline(body, verifier, () => {}); // errors reach the consumer through `verifier`
    return verifier;
  }

  /**
   * The body of a GET, resumed with a ranged GET (pinned to the first ETag by If-Match, so a replaced
   * object is never stitched from two versions) when the connection breaks mid-download. Attempts are
   * counted between two successes, so a long download survives many unrelated blips.
   */
  private resumableBody(Key: string, first: GetObjectCommandOutput, start: number, stop: number, request: (from: number, etag?: string) => () => GetObjectCommand): Readable {
    const store = this;
    async function* chunks(): AsyncGenerator<Buffer> {
      let response: GetObjectCommandOutput = first;
      let offset = start;
      for (let attempt = 1; ; attempt++) {
        const stream = response.Body as Readable;
        try {
          for await (const chunk of stream) {
            offset += (chunk as Buffer).length;
            attempt = 1;
            yield chunk as Buffer;
          }
          if (offset >= stop) return;
          throw Object.assign(new Error('connection closed before the end of the body'), { code: 'ECONNRESET' });
        } catch (err) {
          if (err instanceof EngineError) throw err;
          if (attempt >= store.retry.attempts) {
            throw new EngineError('STORAGE', redact(`network failure reading ${s3Location(store.bucket, Key)} at byte ${offset} of ${stop} (endpoint ${store.endpoint}) after ${attempt} attempts: ${networkReason(err)}`, store.secrets));
          }
          const delay = backoffDelay(store.retry, attempt + 1);
          store.log(`storage: reading ${s3Location(store.bucket, Key)} broke at byte ${offset} (${networkReason(err)}); resuming, attempt ${attempt + 1}/${store.retry.attempts} in ${Math.round(delay)} ms`);
          await sleep(delay);
          response = await store.send<GetObjectCommandOutput>('GetObject', Key, request(offset, first.ETag));
        } finally {
          if (!stream.destroyed) stream.destroy();
        }
      }
    }
    return Readable.from(chunks(), { objectMode: false });
  }

  async put(key: string, body: PutBody, options: PutOptions = {}): Promise<ObjectHead> {
    const Key = this.fullKey(key);
    let reader: ByteReader | undefined;
    try {
      const known = await sha256Before(body);
      reader = new ByteReader(bodyChunks(body)); // opened only now: a missing file fails once, above
      const firstBytes = await reader.read(MULTIPART_THRESHOLD + 1);
      if (firstBytes.length <= MULTIPART_THRESHOLD) {
        const sha256 = known ?? createHash('sha256').update(firstBytes).digest('hex');
        const out = await this.send<{ ETag?: string }>('PutObject', Key, () =>
          new PutObjectCommand({ Bucket: this.bucket, Key, Body: firstBytes, ContentMD5: md5Base64(firstBytes), ContentType: options.contentType, Metadata: { sha256 } }),
        );
        return { key, size: firstBytes.length, etag: out.ETag ?? '', sha256, contentType: options.contentType };
      }
      reader.unshift(firstBytes);
      return await this.putMultipart(key, Key, reader, known, options);
    } catch (err) {
      // Every S3 failure is already an EngineError; anything else came from reading the body.
      throw bodyFailure(err, s3Location(this.bucket, Key));
    } finally {
      await reader?.close();
    }
  }

  private async putMultipart(key: string, Key: string, reader: ByteReader, sha256: string | undefined, options: PutOptions): Promise<ObjectHead> {
    const created = await this.send<{ UploadId?: string }>('CreateMultipartUpload', Key, () =>
      new CreateMultipartUploadCommand({ Bucket: this.bucket, Key, ContentType: options.contentType, Metadata: sha256 ? { sha256 } : undefined }),
    );
    const UploadId = created.UploadId!;
    const parts: CompletedPart[] = [];
    const inFlight = new Set<Promise<void>>();
    let failure: unknown;
    let size = 0;
    try {
      for (let PartNumber = 1; ; PartNumber++) {
        const data = await reader.read(partSize(PartNumber));
        if (data.length === 0) break;
        size += data.length;
        const upload = this.send<{ ETag?: string }>('UploadPart', Key, () => new UploadPartCommand({ Bucket: this.bucket, Key, UploadId, PartNumber, Body: data, ContentMD5: md5Base64(data) }))
          .then((out) => void parts.push({ PartNumber, ETag: out.ETag }))
          .catch((err: unknown) => void (failure ??= err))
          .finally(() => inFlight.delete(upload));
        inFlight.add(upload);
        if (inFlight.size >= this.concurrency) await Promise.race(inFlight);
        if (failure) throw failure;
      }
      await Promise.all(inFlight);
      if (failure) throw failure;
      parts.sort((a, b) => a.PartNumber! - b.PartNumber!);
      const out = await this.send<{ ETag?: string }>('CompleteMultipartUpload', Key, () =>
        new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId, MultipartUpload: { Parts: parts } }),
      );
      return { key, size, etag: out.ETag ?? '', sha256, contentType: options.contentType };
    } catch (err) {
      await Promise.allSettled(inFlight);
      await this.abort(Key, UploadId);
      throw err;
    }
  }

  private async abort(Key: string, UploadId: string): Promise<void> {
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId }));
    } catch (err) {
      // s3rver has no AbortMultipartUpload (MethodNotAllowed). Either way the object never became
      // visible; leftover parts are for a bucket lifecycle rule (AbortIncompleteMultipartUpload).
      this.log(`storage: could not abort the multipart upload of ${s3Location(this.bucket, Key)} (${errorCode(err)}); no object was created`);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const Prefix = this.prefix + prefix;
    let ContinuationToken: string | undefined;
    do {
      // Pages of 1000 keys. (s3rver's continuation tokens need Node's --openssl-legacy-provider.)
      const page = await this.send<{ Contents?: { Key?: string; Size?: number; ETag?: string }[]; NextContinuationToken?: string; IsTruncated?: boolean }>(
        'ListObjectsV2',
        Prefix,
        () => new ListObjectsV2Command({ Bucket: this.bucket, Prefix, ContinuationToken }),
      );
      for (const item of page.Contents ?? []) {
        if (item.Key) yield { key: item.Key.slice(this.prefix.length), size: item.Size ?? 0, etag: item.ETag ?? '' };
      }
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken);
  }

  async delete(key: string): Promise<void> {
    const Key = this.fullKey(key);
    await this.send('DeleteObject', Key, () => new DeleteObjectCommand({ Bucket: this.bucket, Key }));
  }
}

function md5Base64(data: Buffer): string {
  return createHash('md5').update(data).digest('base64');
}

function displayEndpoint(endpoint: string): string {
  try {
    const url = new URL(endpoint);
    url.username = '';
    url.password = '';
    return url.origin;
  } catch {
    return '(invalid AWS_ENDPOINT_URL_S3)';
  }
}

function describe(err: unknown): string {
  return isRetryable(err) && (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === undefined ? networkReason(err) : errorCode(err);
}

