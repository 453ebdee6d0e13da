/**
 * The gateway's view of model and data sources: what a model is (inspected without its weights, wherever
 * it lives), and whether a tokenizer or dataset is there. `file://` sources are read on this machine;
 * `s3://` and `hf://` through the engine's storage layer with settings and credentials from the
 * environment only (AWS_*, STREAMLINE_S3_FORCE_PATH_STYLE, HF_*) — never from the API, and never in an
 * answer: storage errors carry the bucket and key, not the credentials.
 */
import { existsSync } from 'node:fs';
import { ErrorCode, badInput, fromEngineError, GatewayError } from '../errors.js';
import { EngineError, inspectRemoteModel, openObjectStore, splitObjectUri, type ModelInfo } from '../engine.js';
import type { InspectModel } from '../models/model.service.js';
import { parseSourceUri, type SourceLocation } from '../source-uri.js';

export interface SourceSettings {
  /** STREAMLINE_STORAGE: `s3://bucket/prefix`, or unset (the data directory). */
  readonly storage?: string;
  /** Where S3 and Hugging Face settings come from; default process.env. */
  readonly env?: NodeJS.ProcessEnv;
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

  constructor(
    private readonly inspectLocal: InspectModel,
    private readonly settings: SourceSettings = {},
  ) {
    this.env = settings.env ?? process.env;
  }

  /** True when s3:// sources can be read: S3 is the storage, or the environment carries S3 access. */
  get s3Configured(): boolean {
    return this.settings.storage?.startsWith('s3://') === true || S3_ACCESS_VARIABLES.some((name) => !!this.env[name]);
  }

  /** Config, architecture and parameter count of the model at `uri`, its weights unread. */
  async inspectModel(field: string, uri: string): Promise<ModelInfo> {
    const location = this.locate(field, uri);
    try {
      if (location.kind === 'file') return await this.inspectLocal(location.path);
      return await inspectRemoteModel(location.uri, { settings: { env: this.env }, inspect: this.inspectLocal }); // headers parsed off the event loop too
    } catch (error) {
      if (error instanceof EngineError) throw sourceError(error, field);
      const { code, message } = error as NodeJS.ErrnoException;
      if (code === 'EACCES' || code === 'EISDIR' || code === 'ENOTDIR') throw badInput(field, `${uri}: ${message}`);
      throw error;
    }
  }

  /**
   * A single file (tokenizer, dataset) must exist: on this machine, or as an S3 object (one HEAD). A
   * missing one is answered with `missing` (the same code whatever the scheme).
   */
  async checkFile(field: string, uri: string, options: { schemes: readonly string[]; extensions?: readonly string[]; missing: ErrorCode.NOT_FOUND | ErrorCode.BAD_USER_INPUT }): Promise<void> {
    const { schemes, extensions, missing } = options;
    const location = this.locate(field, uri, schemes);
    if (location.kind === 'hf') throw badInput(field, `${JSON.stringify(uri)}: hf:// names a model repository, not a single file; accepted schemes: ${schemes.join(', ')}`);
    const name = location.kind === 'file' ? location.path : location.uri;
    if (extensions && !extensions.some((ext) => name.toLowerCase().endsWith(ext))) throw badInput(field, `${JSON.stringify(uri)} is not a ${extensions.join(' or ')} file`);
    if (location.kind === 'file') {
      if (!existsSync(location.path)) throw new GatewayError(missing, `${field}: ${JSON.stringify(uri)}: no file at ${location.path}`, { field });
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
      if (error instanceof EngineError) throw sourceError(error, field);
      throw error;
    }
  }

  private locate(field: string, uri: string, schemes?: readonly string[]): SourceLocation {
    const location = parseSourceUri(field, uri, schemes);
    if (location.kind === 's3' && !this.s3Configured) {
      throw badInput(
        field,
        `${JSON.stringify(uri)}: s3:// is accepted, but storage for it is not configured on this gateway; set STREAMLINE_STORAGE=s3://bucket/prefix or the AWS_* settings (see the README's "Object storage" section), or use a file:// absolute path`,
      );
    }
    return location;
  }
}

/** A source that cannot be read is the user's to fix: denied access or an unreachable store are BAD_USER_INPUT. */
function sourceError(error: EngineError, field: string): GatewayError {
  if (error.code === 'STORAGE') return badInput(field, error.message);
  return fromEngineError(error, field);
}
