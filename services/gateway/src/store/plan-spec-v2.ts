/**
 * Migration 0006's upgrade of a stored plan config (the gateway's settings object from before the plan
 * contract) to PlanSpec version 2. Frozen like the migration: the defaults below are those the engine
 * had when it was written, for fields older rows may lack; later changes to the defaults must not
 * change what this migration writes.
 */
const DEFAULTS_AT_V2 = {
  training: { minSteps: 300, checkpointEvery: 50, warmupRatio: 0.05, epochs: null },
  evaluationText: { samples: 64, seqLen: 256 },
} as const;

type Stored = Record<string, any>;

export function upgradeStoredConfigToV2(config: Stored): Stored {
  if (config.version === 2) return config;
  const { samples: _trainingSamples, ...training } = (config.training ?? {}) as Stored; // never honoured (see TrainingInput.samples)
  const calibration = config.calibration as Stored;
  const evaluation = (config.evaluation ?? {}) as Stored;
  return {
    version: 2,
    layersToPrune: config.layersToPrune,
    targetSparsity: config.targetSparsity ?? null,
    estimatedSparsity: config.estimatedSparsity ?? null,
    startLayer: config.startLayer ?? null,
    replacement: config.replacement,
    dryRun: config.dryRun ?? false,
    calibration: { source: calibration.source, samples: calibration.samples, seqLen: calibration.seqLen },
    training: {
      ...training,
      epochs: training.epochs ?? DEFAULTS_AT_V2.training.epochs,
      minSteps: training.minSteps ?? DEFAULTS_AT_V2.training.minSteps,
      checkpointEvery: training.checkpointEvery ?? DEFAULTS_AT_V2.training.checkpointEvery,
      warmupRatio: training.warmupRatio ?? DEFAULTS_AT_V2.training.warmupRatio,
    },
    evaluation: {
      // Texts stored before each had its own window count and length: the engine's evaluation defaults, within the calibration's seq-len (known to fit the model).
      perplexity: ((evaluation.perplexity ?? []) as Stored[]).map((text) => ({
        source: text.source,
        samples: text.samples ?? DEFAULTS_AT_V2.evaluationText.samples,
        seqLen: text.seqLen ?? Math.min(DEFAULTS_AT_V2.evaluationText.seqLen, calibration.seqLen),
      })),
      tasks: evaluation.tasks ?? [],
      limit: evaluation.limit ?? null,
    },
  };
}
