/** The engine's public API: what the CLI, the worker and the gateway build on. */
export { EngineError, type EngineErrorCode } from './errors.js';
export type { StorageDtype } from './formats/dtype.js';
export type { HostTensor } from './formats/host-tensor.js';
export { writeHfFolder } from './formats/hf-folder.js';
export { readLlama2cCheckpoint } from './formats/llama2c-checkpoint.js';
export type { ArchitectureFamily, ModelConfig } from './models/architecture.js';
export { SUPPORTED_MODEL_TYPES, familyFor } from './models/families/index.js';
export { inspectModel, loadModel, type LoadedModel, type ModelInfo } from './models/model.js';
export { createRuntime, type RuntimeOptions } from './runtime/create-runtime.js';
export { makeBatch, type ForwardRequest, type ForwardResult, type ForwardRuntime, type TokenBatch } from './runtime/runtime.js';
export { loadTokenizer, type Tokenizer } from './tokenizers/tokenizer.js';
export { loadCalibrationSamples } from './data/calibration.js';
export { computeImportance, parseBlockSizes, type ImportanceProfile, type ImportanceProgress } from './importance.js';
export { generate, type Generation } from './generate.js';
export { prune, DEFAULT_TRAINING, type PruneOptions, type PruneSummary } from './pruning/prune.js';
export { REPLACEMENT_KINDS, type ReplacementKind } from './pruning/replacement-forward.js';
export { runPlan, stageProgress, type PlanConfig, type PlanEvent, type PlanOutcome, type PlanStage } from './plan-runner.js';
export { evaluateModels, type EvaluationReport } from './evaluation/evaluate.js';
