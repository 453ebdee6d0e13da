/**
 * A claimed plan's inputs made local: the model (s3:// or hf:// folder) through the verified model cache,
 * a tokenizer and the calibration and evaluation datasets (s3:// objects) through the file cache — both
 * under the worker's data directory, so a second plan of the same model downloads nothing. Local paths
 * and file:// URIs are used in place — after checking them again against the plan's `fileAccess` (the
 * gateway's STREAMLINE_FILE_ROOTS): a file swapped for a symlink since the gateway's check is refused here.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EngineError } from '../errors.js';
import type { PlanConfig, PlanFileAccess } from '../plan-runner.js';
import { checkConfinedModel, checkConfinedPath } from '../storage/file-confinement.js';
import { fetchFile, isRemoteUri } from '../storage/file-cache.js';
import { fetchModel } from '../storage/model-cache.js';
import type { StorageSettings } from '../storage/object-store.js';
import { modelFolderUri } from '../storage/remote-inspect.js';

export interface LocalPlanInputs {
  /** The same config, every path local. */
  readonly config: PlanConfig;
  /** Set when the model was fetched: its source URI and the files' versions (stable across machines). */
  readonly modelFingerprint?: string;
  readonly modelUri?: string;
}

export interface LocalizeOptions {
  /** Holds models/ and files/; reused across plans. */
  readonly cacheDir: string;
  readonly settings?: StorageSettings;
  /** One line per fetch, for the plan's progress. */
  readonly onFetch?: (message: string) => void;
  /** Directories no input may lie in besides the plan's own `denied` ones: this worker's data directory. */
  readonly denied?: readonly string[];
}

/**
 * Refuses a local input whose real path is (now) outside the plan's roots or inside a denied directory;
 * `model` also checks the files the engine reads beside a model. Paths the gateway vouches for pass.
 */
export function checkLocalInput(what: string, path: string, access: PlanFileAccess | null | undefined, options: { model?: boolean; denied?: readonly string[] } = {}): void {
  if (!access || access.unconfined.includes(path)) return;
  const confinement = { roots: access.roots, denied: [...access.denied, ...(options.denied ?? [])] };
  const checked = options.model ? checkConfinedModel(path, confinement) : checkConfinedPath(path, confinement);
  if (checked.status === 'outside') {
    throw new EngineError(
      'BAD_INPUT',
      `${what} ${path} is not under the directories this gateway reads file:// sources from (STREAMLINE_FILE_ROOTS) — refused when the worker opened it (was it replaced by a symlink after the plan was created?)`,
    );
  }
}

export async function localizePlanInputs(config: PlanConfig, options: LocalizeOptions): Promise<LocalPlanInputs> {
  const note = options.onFetch ?? (() => {});
  const access = config.fileAccess;
  const local = (what: string, uri: string, model = false): string => {
    const path = uri.startsWith('file://') ? fileURLToPath(uri) : uri;
    checkLocalInput(what, path, access, { model, denied: options.denied });
    return path;
  };
  const file = (what: string) => async (uri: string): Promise<string> => {
    if (!isRemoteUri(uri)) return local(what, uri);
    const fetched = await fetchFile(uri, join(options.cacheDir, 'files'), { settings: options.settings });
    note(`${fetched.downloaded ? 'downloaded' : 'using the cached copy of'} ${uri}`);
    return fetched.path;
  };

  let model = config.model;
  let modelFingerprint: string | undefined;
  let modelUri: string | undefined;
  if (isRemoteUri(config.model.path)) {
    modelUri = modelFolderUri(config.model.path);
    note(`fetching the model from ${modelUri}`);
    const fetched = await fetchModel(modelUri, join(options.cacheDir, 'models'), undefined, { settings: options.settings });
    note(fetched.downloaded.length > 0 ? `downloaded ${fetched.downloaded.length} model files from ${modelUri}` : `using the cached copy of ${modelUri}`);
    const versions = fetched.files.map((f) => `${f.name}:${f.size}:${f.etag}`).join('\n');
    modelFingerprint = createHash('sha256').update(`${modelUri}\n${versions}`).digest('hex');
    model = { ...model, path: fetched.path };
  } else {
    model = { ...model, path: local('the model', config.model.path, true) };
  }
  if (model.tokenizer) model = { ...model, tokenizer: await file('the tokenizer')(model.tokenizer) };

  const calibration = { ...config.calibration, path: await file('the calibration set')(config.calibration.path) };
  const evaluation = config.evaluation
    ? {
        ...config.evaluation,
        texts:
          config.evaluation.texts &&
          (await Promise.all(
            config.evaluation.texts.map(async (text) => (typeof text === 'string' ? file('the evaluation text')(text) : { ...text, path: await file('the evaluation text')(text.path) })),
          )),
        tasks: config.evaluation.tasks && (await Promise.all(config.evaluation.tasks.map(file('the task file')))),
      }
    : config.evaluation;
  return { config: { ...config, model, calibration, evaluation }, modelFingerprint, modelUri };
}
