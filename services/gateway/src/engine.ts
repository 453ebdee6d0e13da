/**
 * The parts of the engine the gateway builds on, in one place. Only the engine's light entry point
 * (`@streamline/engine/spec`): the gateway never loads ONNX Runtime or TensorFlow.js
 * (test/no-tensor-libraries.test.ts checks a running gateway).
 */
import { DEFAULT_RUN as ENGINE_RUN, DEFAULT_WARMUP_RATIO } from '@streamline/engine/spec';

export {
  EngineError,
  ENGINE_ERROR_CODES,
  parseEngineErrorCode,
  type EngineErrorCode,
  PLAN_CONTRACT_VERSION,
  SUPPORTED_MODEL_TYPES,
  familyFor,
  inspectModel,
  loadTokenizer,
  countHeldOutWindows,
  type WindowCount,
  inspectRemoteModel,
  openObjectStore,
  parseStorageUri,
  parseHfUri,
  splitObjectUri,
  checkConfinedModel,
  checkConfinedPath,
  blockSizeForSparsity,
  checkReplacementFits,
  DEFAULT_TRAINING,
  DEFAULT_PLAN_BOUNDS,
  planBoundsFromEnv,
  MAX_PRESIGN_SECONDS,
  presignOutputs,
  type ModelInfo,
  type PlanBounds,
} from '@streamline/engine/spec';

/** The engine's defaults for what `prune` takes outside its training settings, in the API's names. */
export const DEFAULT_CALIBRATION = { samples: ENGINE_RUN.samples, seqLen: ENGINE_RUN.seqLen } as const;
export const DEFAULT_RUN = { batchSize: ENGINE_RUN.batchSize, validationFraction: ENGINE_RUN.valFraction, seed: ENGINE_RUN.seed, warmupRatio: DEFAULT_WARMUP_RATIO } as const;
/** The engine's evaluation defaults: 64 windows of min(256, context) tokens. */
export const DEFAULT_EVALUATION_WINDOWS = { samples: 64, seqLen: 256 } as const;
