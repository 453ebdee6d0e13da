/**
 * The gateway's view of model and data sources: what a model is (inspected without its weights, wherever
 * it lives), and whether a tokenizer or dataset is there — and whether a tenant may name it at all (the
 * operator's SourcePolicy, see source.settings.ts): file:// only under STREAMLINE_FILE_ROOTS by real path
 * and never in the data or storage directory, s3:// only under STREAMLINE_S3_SOURCES, hf:// only with
 * STREAMLINE_HF=on. Sources the gateway itself vouches for (`trusted`: the operator's default calibration
 * set, a tenant's own plan output) skip those checks. A file that does not parse is answered by the kind
 * of problem, never with bytes, numbers or text read from it. `file://` sources are read on this machine;
 * `s3://` and `hf://` through the engine's storage layer with settings and credentials from the
 * environment only (AWS_*, STREAMLINE_S3_FORCE_PATH_STYLE, HF_*) — never from the API, and never in an
 * answer: storage errors carry the bucket and key, not the credentials.
 */
import { existsSync } from 'node:fs';
import { ErrorCode, badInput, fromEngineError, GatewayError } from '../errors.js';
import { checkConfinedModel, checkConfinedPath, EngineError, inspectRemoteModel, openObjectStore, parseStorageUri, splitObjectUri, type ModelInfo } from '../engine.js';
import type { ConfinedReads } from '../models/model-inspection.js';
import type { InspectModel } from '../models/model.service.js';
import { parseSourceUri, type SourceLocation } from './source-uri.js';
import { CLOSED_SOURCE_POLICY, FILE_ROOTS_SETTING, HF_SETTING, parseS3SourcePrefix, S3_SOURCES_SETTING, type SourcePolicy } from './source.settings.js';

export interface SourceSettings {
  /** STREAMLINE_STORAGE: `s3://bucket/prefix`, or unset (the data directory). */
  readonly storage?: string;
  /** Where S3 and Hugging Face settings come from; default process.env. */
  readonly env?: NodeJS.ProcessEnv;
  /** Where tenants' sources may come from; default: nowhere (CLOSED_SOURCE_POLICY). */
  readonly policy?: SourcePolicy;
  /** Directories no file:// source may lie in, even under a root: the data directory, a local storage directory. */
  readonly deniedDirs?: readonly string[];
}

/** How a source is checked: `trusted` ones (the gateway's own choice) skip the tenant's confinement. */
export interface SourceCheckOptions {
  readonly trusted?: boolean;
}

/** Any of these in the environment means S3 access has been set up (keys, an endpoint, a profile, a pod role). */
const S3_ACCESS_VARIABLES = [
  'AWS_ACCESS_KEY_ID',
  'AWS_ENDPOINT_URL_S3',
  'AWS_ENDPOINT_URL',
  'AWS_PROFILE',
  'AWS_WEB_IDENTITY_TOKEN_FILE',
  'AWS_CONTAINER_CREDENTIALS_FULL_URI',
  'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
];

export class SourceService {
  private readonly env: NodeJS.ProcessEnv;
  readonly policy: SourcePolicy;
  readonly deniedDirs: readonly string[];

  constructor(
    private readonly inspectLocal: InspectModel,
    private readonly settings: SourceSettings = {},
  ) {
    this.env = settings.env ?? process.env;
    this.policy = settings.policy ?? CLOSED_SOURCE_POLICY;
    this.deniedDirs = settings.deniedDirs ?? [];
  }

  /** True when s3:// sources can be read: S3 is the storage, or the environment carries S3 access. */
  get s3Configured(): boolean {
    return this.settings.storage?.startsWith('s3://') === true || S3_ACCESS_VARIABLES.some((name) => !!this.env[name]);
  }

  /** Config, architecture and parameter count of the model at `uri`, its weights unread. */
  async inspectModel(field: string, uri: string, options: SourceCheckOptions = {}): Promise<ModelInfo> {
    const location = this.locate(field, uri, undefined, options);
    if (location.kind === 'file' && !options.trusted) this.confine(field, uri, location.path, { model: true, missing: ErrorCode.NOT_FOUND });
    try {
      if (location.kind === 'file') return await this.inspectLocal(location.path, options.trusted ? undefined : this.confinedReads([location.path]));
      return await inspectRemoteModel(location.uri, { settings: { env: this.env }, inspect: this.inspectLocal }); // headers parsed off the event loop too
    } catch (error) {
      if (error instanceof EngineError) throw sourceError(error, field, uri);
      const { code, message } = error as NodeJS.ErrnoException;
      if (code === 'EACCES' || code === 'EISDIR' || code === 'ENOTDIR') throw badInput(field, `${uri}: ${message}`);
      throw error;
    }
  }

  /**
   * A single file (tokenizer, dataset) must exist: on this machine, or as an S3 object (one HEAD). A
   * missing one is answered with `missing` (the same code whatever the scheme).
   */
  async checkFile(
    field: string,
    uri: string,
    options: SourceCheckOptions & { schemes: readonly string[]; extensions?: readonly string[]; missing: ErrorCode.NOT_FOUND | ErrorCode.BAD_USER_INPUT },
  ): Promise<void> {
    const { schemes, extensions, missing } = options;
    const location = this.locate(field, uri, schemes, options);
    if (location.kind === 'hf') throw badInput(field, `${JSON.stringify(uri)}: hf:// names a model repository, not a single file; accepted schemes: ${schemes.join(', ')}`);
    const name = location.kind === 'file' ? location.path : location.uri;
    if (extensions && !extensions.some((ext) => name.toLowerCase().endsWith(ext))) throw badInput(field, `${JSON.stringify(uri)} is not a ${extensions.join(' or ')} file`);
    if (location.kind === 'file') {
      if (!options.trusted) this.confine(field, uri, location.path, { missing });
      else if (!existsSync(location.path)) throw new GatewayError(missing, `${field}: ${JSON.stringify(uri)}: no file at ${location.path}`, { field });
      return;
    }
    try {
      const { storeUri, key } = splitObjectUri(location.uri);
      const store = await openObjectStore({ storage: storeUri, env: this.env });
      try {
        if (!(await store.head(key))) throw new EngineError('NOT_FOUND', `no object at ${location.uri}`);
      } finally {
        store.destroy?.();
      }
    } catch (error) {
      if (error instanceof EngineError && error.code === 'NOT_FOUND') throw new GatewayError(missing, `${field}: ${JSON.stringify(uri)}: ${error.message}`, { field });
      if (error instanceof EngineError) throw sourceError(error, field, uri);
      throw error;
    }
  }

  /**
   * The tenant's local files a thread is about to read, for it to check again by descriptor when it opens
   * them (see model-inspection.ts); undefined when file:// sources are off or nothing is the tenant's.
   */
  confinedReads(inputs: readonly string[]): ConfinedReads | undefined {
    const roots = this.policy.fileRoots;
    if (roots === null || inputs.length === 0) return undefined;
    return { inputs, roots, denied: this.deniedDirs };
  }

  /**
   * A tenant's file:// source: under a root by real path (with, for a model, the files read beside it),
   * outside the denied directories. Outside and missing-outside get one answer; missing inside a root
   * is `missing`.
   */
  private confine(field: string, uri: string, path: string, options: { model?: boolean; missing: ErrorCode.NOT_FOUND | ErrorCode.BAD_USER_INPUT }): void {
    const roots = this.policy.fileRoots;
    if (roots === null) {
      throw badInput(
        field,
        `${JSON.stringify(uri)}: file:// sources are disabled on this gateway: set ${FILE_ROOTS_SETTING} to the directories tenants may read models and data from (absolute paths separated by ':')`,
      );
    }
    const confinement = { roots, denied: this.deniedDirs };
    const checked = options.model ? checkConfinedModel(path, confinement) : checkConfinedPath(path, confinement);
    if (checked.status === 'outside') throw badInput(field, `${JSON.stringify(uri)} is not under the directories this gateway reads file:// sources from (${FILE_ROOTS_SETTING})`);
    if (checked.status === 'missing') throw new GatewayError(options.missing, `${field}: ${JSON.stringify(uri)}: no file at ${path}`, { field });
  }

  private locate(field: string, uri: string, schemes?: readonly string[], options: SourceCheckOptions = {}): SourceLocation {
    const location = parseSourceUri(field, uri, schemes);
    if (!options.trusted) this.checkRemotePolicy(field, uri, location);
    if (location.kind === 's3' && !this.s3Configured) {
      throw badInput(
        field,
        `${JSON.stringify(uri)}: s3:// is accepted, but storage for it is not configured on this gateway; set STREAMLINE_STORAGE=s3://bucket/prefix or the AWS_* settings (see the README's "Object storage" section), or use a file:// absolute path`,
      );
    }
    return location;
  }

  /** s3:// only under STREAMLINE_S3_SOURCES (whole segments), hf:// only with STREAMLINE_HF=on. */
  private checkRemotePolicy(field: string, uri: string, location: SourceLocation): void {
    if (location.kind === 'hf' && !this.policy.hf) {
      throw badInput(field, `${JSON.stringify(uri)}: hf:// sources are disabled on this gateway: set ${HF_SETTING}=on to let tenants name Hugging Face repositories`);
    }
    if (location.kind === 's3' && !s3SourceAllowed(uri, this.policy.s3Sources)) {
      throw badInput(
        field,
        `${JSON.stringify(uri)} is not under the S3 prefixes this gateway reads sources from (${S3_SOURCES_SETTING}, comma-separated s3://bucket/prefix/); a plan's own output is registered with fromPlan`,
      );
    }
  }
}

/** True when `uri` (s3://bucket/key…) lies under one of `allowed` by whole segments, with no '.', '..' or empty segment. */
export function s3SourceAllowed(uri: string, allowed: readonly string[]): boolean {
  let location;
  try {
    location = parseStorageUri(uri);
  } catch {
    return false;
  }
  if (location.kind !== 's3') return false;
  const raw = uri.slice(`s3://${location.bucket}`.length).replace(/^\//, '');
  const segments = raw.split('/');
  if (segments[segments.length - 1] === '') segments.pop();
  const decoded = segments.map((s) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return '';
    }
  });
  if (decoded.length === 0 || decoded.some((s) => s === '' || s === '.' || s === '..' || s.includes('/') || s.includes('\\'))) return false;
  return allowed.some((entry) => {
    const prefix = parseS3SourcePrefix(entry);
    return prefix !== null && prefix.bucket === location.bucket && prefix.segments.length <= decoded.length && prefix.segments.every((s, i) => decoded[i] === s);
  });
}

/** A source that cannot be read is the user's to fix: denied access or an unreachable store are BAD_USER_INPUT. */
function sourceError(error: EngineError, field: string, uri: string): GatewayError {
  if (error.code === 'STORAGE') return badInput(field, error.message);
  // The engine's words for a file that does not parse may quote it: only the kind of problem goes out.
  if (error.code === 'CORRUPT_FILE') return badInput(field, `${JSON.stringify(uri)} is not a model this gateway can read: ${corruptionKind(error.message)}`);
  return fromEngineError(error, field);
}

/** What kind of damage an engine CORRUPT_FILE message describes, in words that carry nothing read from the file. */
export function corruptionKind(message: string): string {
  // The accepted range is the engine's own bound, not something read from the file: it may go out.
  const range = /(?:accepted range|an integer from) (\d+) to (\d+)/.exec(message);
  const accepted = range ? ` (accepted: an integer from ${range[1]} to ${range[2]})` : '';
  const configField = /config\.json: ([a-z_]+) /.exec(message)?.[1];
  if (configField) return `config.json has an invalid ${configField}${accepted}`;
  const headerField = /header field ([a-z_]+) /.exec(message)?.[1];
  if (headerField) return `not a llama2.c checkpoint: its header field ${headerField} is invalid${accepted}`;
  if (/llama2\.c header|too short for a llama2\.c/.test(message)) return 'not a llama2.c checkpoint (its header is not valid)';
  if (/truncated/.test(message)) return 'a weights file is truncated';
  if (/not valid JSON|unparsable|shard index/.test(message)) return 'a JSON file in it does not parse';
  if (/safetensors/.test(message)) return 'a safetensors file is not valid';
  if (/missing tensor/.test(message)) return 'a tensor the architecture needs is missing';
  if (/shape/.test(message)) return "a tensor's shape does not match config.json";
  if (/tokenizer/.test(message)) return 'its tokenizer is not valid';
  return 'its files do not parse';
}
