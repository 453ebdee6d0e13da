/**
 * The engine's public API: what the CLI and the worker build on. It is the light entry point (./spec.ts,
 * all the gateway imports) plus everything that runs a model on ONNX Runtime or TensorFlow.js.
 */
export * from './spec.js';
export { writeHfFolder } from './formats/hf-folder.js';
export { exportGguf } from './formats/gguf-export.js';
export { readLlama2cCheckpoint } from './formats/llama2c-checkpoint.js';
export { loadModel, type LoadedModel } from './models/model.js';
export { createRuntime, type RuntimeOptions } from './runtime/create-runtime.js';
export { openRuntime, type OpenRuntimeOptions, type StreamingMode } from './runtime/open-runtime.js';
export { memoryBudget, parseMemorySize, MEMORY_BUDGET_ENV } from './runtime/memory-budget.js';
export { openCalibrationSession, type CalibrationSession, type CalibrationSessionOptions } from './calibration-session.js';
export { makeBatch, type ForwardRequest, type ForwardResult, type ForwardRuntime, type TokenBatch } from './runtime/runtime.js';
export { loadCalibrationSamples } from './data/calibration.js';
export { computeImportance, parseBlockSizes, type ImportanceProfile, type ImportanceProgress } from './importance.js';
export { generate, type Generation } from './generate.js';
export { prune, type PruneOptions, type PruneSummary } from './pruning/prune.js';
export { runPlan, stageProgress, type LocalPlan } from './plan-runner.js';
export { evaluateModels, type EvaluationReport } from './evaluation/evaluate.js';
export { fetchModel, type FetchedModel, type FetchModelOptions } from './storage/model-cache.js';
export { openHfSource } from './storage/hf-source.js';
export { fetchFile, type FetchedFile } from './storage/file-cache.js';
export { S3ObjectStore } from './storage/s3-store.js';
