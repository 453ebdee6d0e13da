/**
 * A claimed plan's inputs made local: the model (s3:// or hf:// folder) through the verified model cache,
 * a tokenizer and the calibration and evaluation datasets (s3:// objects) through the file cache — both
 * under the worker's data directory, so a second plan of the same model downloads nothing. Local paths
 * and file:// URIs are used in place.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PlanConfig } from '../plan-runner.js';
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
}

export async function localizePlanInputs(config: PlanConfig, options: LocalizeOptions): Promise<LocalPlanInputs> {
  const note = options.onFetch ?? (() => {});
  const file = async (uri: string): Promise<string> => {
    if (!isRemoteUri(uri)) return uri.startsWith('file://') ? fileURLToPath(uri) : uri;
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
  } else if (config.model.path.startsWith('file://')) {
    model = { ...model, path: fileURLToPath(config.model.path) };
  }
  if (model.tokenizer) model = { ...model, tokenizer: await file(model.tokenizer) };

  const calibration = { ...config.calibration, path: await file(config.calibration.path) };
  const evaluation = config.evaluation
    ? {
        ...config.evaluation,
        texts:
          config.evaluation.texts &&
          (await Promise.all(config.evaluation.texts.map(async (text) => (typeof text === 'string' ? file(text) : { ...text, path: await file(text.path) })))),
        tasks: config.evaluation.tasks && (await Promise.all(config.evaluation.tasks.map(file))),
      }
    : config.evaluation;
  return { config: { ...config, model, calibration, evaluation }, modelFingerprint, modelUri };
}
