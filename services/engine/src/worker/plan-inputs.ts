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
import type { FileAccess, PlanAssignment } from '../contract/plan-assignment.js';
import { planSpecSources } from '../contract/plan-spec.js';
import type { LocalPlan } from '../plan-runner.js';
import { checkConfinedModel, checkConfinedPath, realPathTest } from '../storage/file-confinement.js';
import type { ReadConfinement } from '../formats/file-reads.js';
import { fetchFile, isRemoteUri } from '../storage/file-cache.js';
import { fetchModel } from '../storage/model-cache.js';
import type { StorageSettings } from '../storage/object-store.js';
import { modelFolderUri } from '../storage/remote-inspect.js';

export interface LocalPlanInputs {
  /** The spec with the model's path and a local file for each of its sources. */
  readonly plan: LocalPlan;
  /** Set when the model was fetched: its source URI and the files' versions (stable across machines). */
  readonly modelFingerprint?: string;
  readonly modelUri?: string;
  /**
   * Set when local inputs were checked against the plan's file roots: the engine's reads of those paths are
   * to run inside it, so that what it opens is checked again by descriptor (see formats/file-reads.ts).
   */
  readonly confinement?: ReadConfinement;
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
export function checkLocalInput(what: string, path: string, access: FileAccess | null | undefined, options: { model?: boolean; denied?: readonly string[] } = {}): void {
  if (!access || access.unconfined.includes(path)) return;
  const confinement = { roots: access.roots, denied: [...access.denied, ...(options.denied ?? [])] };
  const checked = options.model ? checkConfinedModel(path, confinement) : checkConfinedPath(path, confinement);
  if (checked.status === 'outside') throw outsideRoots(what, path);
}

function outsideRoots(what: string, path: string): EngineError {
  return new EngineError(
    'BAD_INPUT',
    `${what} ${path} is not under the directories this gateway reads file:// sources from (STREAMLINE_FILE_ROOTS) — refused when the worker opened it (was it replaced by a symlink after the plan was created?)`,
  );
}

export async function localizePlanInputs(assignment: PlanAssignment, options: LocalizeOptions): Promise<LocalPlanInputs> {
  const note = options.onFetch ?? (() => {});
  const access = assignment.fileAccess;
  const confined: string[] = [];
  const local = (what: string, uri: string, model = false): string => {
    const path = uri.startsWith('file://') ? fileURLToPath(uri) : uri;
    checkLocalInput(what, path, access, { model, denied: options.denied });
    if (access && !access.unconfined.includes(path)) confined.push(path);
    return path;
  };
  const file = async (what: string, uri: string): Promise<string> => {
    if (!isRemoteUri(uri)) return local(what, uri);
    const fetched = await fetchFile(uri, join(options.cacheDir, 'files'), { settings: options.settings });
    note(`${fetched.downloaded ? 'downloaded' : 'using the cached copy of'} ${uri}`);
    return fetched.path;
  };

  const source = assignment.model.source;
  let modelPath: string;
  let modelFingerprint: string | undefined;
  let modelUri: string | undefined;
  if (isRemoteUri(source)) {
    modelUri = modelFolderUri(source);
    note(`fetching the model from ${modelUri}`);
    const fetched = await fetchModel(modelUri, join(options.cacheDir, 'models'), undefined, { settings: options.settings });
    note(fetched.downloaded.length > 0 ? `downloaded ${fetched.downloaded.length} model files from ${modelUri}` : `using the cached copy of ${modelUri}`);
    const versions = fetched.files.map((f) => `${f.name}:${f.size}:${f.etag}`).join('\n');
    modelFingerprint = createHash('sha256').update(`${modelUri}\n${versions}`).digest('hex');
    modelPath = fetched.path;
  } else {
    modelPath = local('the model', source, true);
  }
  const tokenizer = assignment.model.tokenizer === null ? null : await file('the tokenizer', assignment.model.tokenizer);

  const files = new Map<string, string>();
  for (const input of planSpecSources(assignment.spec)) {
    const what = input.field === 'calibration.source' ? 'the calibration set' : input.kind === 'text' ? 'the evaluation text' : 'the task file';
    if (!files.has(input.source)) files.set(input.source, await file(what, input.source));
  }
  const confinement: ReadConfinement | undefined =
    access && confined.length > 0
      ? { inputs: confined, allowed: realPathTest({ roots: access.roots, denied: [...access.denied, ...(options.denied ?? [])] }), refusal: (path) => outsideRoots('the file', path) }
      : undefined;
  return { plan: { spec: assignment.spec, model: { path: modelPath, tokenizer }, files }, modelFingerprint, modelUri, confinement };
}
