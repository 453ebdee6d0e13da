/**
 * The engine's light entry point (`@streamline/engine/spec`): everything about a model and a plan that
 * can be known without running one — architecture families and config parsing, inspection (local and
 * remote), block arithmetic, tokenizers, source URIs, object storage, plan bounds, defaults and errors.
 *
 * Nothing reachable from here loads ONNX Runtime or TensorFlow.js (the gateway's
 * test/no-tensor-libraries.test.ts walks the imports and watches a gateway process), so the gateway,
 * which imports only this, never maps a tensor library. The runtimes and everything that runs a model
 * are in the full entry point, src/index.ts, which re-exports this one.
 */
export { EngineError, ENGINE_ERROR_CODES, parseEngineErrorCode, type EngineErrorCode } from './errors.js';
export * from './contract/index.js';
export type { StorageDtype } from './formats/dtype.js';
export type { HostTensor } from './formats/host-tensor.js';
export type { ArchitectureFamily, ModelConfig } from './models/architecture.js';
export { SUPPORTED_MODEL_TYPES, familyFor } from './models/families/index.js';
export { inspectModel, type ModelInfo } from './models/model.js';
export { loadTokenizer, type Tokenizer } from './tokenizers/tokenizer.js';
export { readDataSamples } from './data/calibration.js';
export { checkMultipleChoiceTask } from './evaluation/multiple-choice.js';
export { calibrationWindowsToSkip, countHeldOutWindows, isCalibrationSource, type CalibrationSource, type WindowCount } from './data/held-out.js';
export { DEFAULT_RUN, DEFAULT_TRAINING, DEFAULT_WARMUP_RATIO } from './pruning/defaults.js';
export { blockSizeForSparsity, layerParameters, replacementParameters } from './pruning/block-choice.js';
export { checkReplacementFits } from './pruning/replacement-kinds.js';
export { checkPlanBounds, DEFAULT_PLAN_BOUNDS, PLAN_BOUND_SETTINGS, planBoundsFromEnv, type PlanBounds } from './plan-bounds.js';
export {
  openObjectStore,
  parseStorageUri,
  readObject,
  MAX_PRESIGN_SECONDS,
  type ObjectStore,
  type ReadableStore,
  type ObjectHead,
  type ObjectInfo,
  type PutBody,
  type StorageSettings,
} from './storage/object-store.js';
export { LocalObjectStore } from './storage/local-store.js';
export { parseHfUri } from './storage/hf-source.js';
export { inspectRemoteModel, modelFolderUri, type RemoteModelInfo } from './storage/remote-inspect.js';
export { isRemoteUri, splitObjectUri } from './storage/file-cache.js';
export { OUTPUT_MANIFEST, presignOutputs, type OutputDownload, type OutputManifest } from './storage/output-publisher.js';
export { checkConfinedPath, checkConfinedModel, isWithin, realPathTest, type FileConfinement, type ConfinedPath } from './storage/file-confinement.js';
export { withConfinedReads } from './formats/file-reads.js';
export { outputPrefix, planWorkPrefix } from './storage/plan-keys.js';
