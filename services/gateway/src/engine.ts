/** The parts of the engine the gateway builds on, in one place. */
import { DEFAULT_RUN as ENGINE_RUN, DEFAULT_WARMUP_RATIO } from '@streamline/engine';

export {
  EngineError,
  ENGINE_ERROR_CODES,
  parseEngineErrorCode,
  type EngineErrorCode,
  SUPPORTED_MODEL_TYPES,
  familyFor,
  inspectModel,
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
  type ModelInfo,
} from '@streamline/engine';

/** The engine's defaults for what `prune` takes outside its training settings, in the API's names. */
export const DEFAULT_CALIBRATION = { samples: ENGINE_RUN.samples, seqLen: ENGINE_RUN.seqLen } as const;
export const DEFAULT_RUN = { batchSize: ENGINE_RUN.batchSize, validationFraction: ENGINE_RUN.valFraction, seed: ENGINE_RUN.seed, warmupRatio: DEFAULT_WARMUP_RATIO } as const;
/** The engine's evaluation defaults: 64 windows of min(256, context) tokens. */
export const DEFAULT_EVALUATION_WINDOWS = { samples: 64, seqLen: 256 } as const;
