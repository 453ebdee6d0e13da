/**
 * What a sweep will cost, from a dry run's importance profile: how many candidates, how much disk the
 * shared hidden states take, and roughly how long it runs. Time is scaled from the profile's own measured
 * throughput (tokens per second through the whole model), so it reflects this machine and runtime:
 *
 * - collection: one more pass over the calibration tokens;
 * - training a candidate: optimizer steps × tokens per step × its replacement's share of one decoder
 *   layer's parameters ÷ (throughput × layers) — one layer-forward per step: the trainer's fused
 *   forward-and-backward graphs ran at about three times the streamed forward pass's rate per token and
 *   layer on stories260K here; LINEAR is one pass over its pairs; NONE nothing;
 * - evaluating a candidate: its held-out windows through the pruned model (tasks not counted);
 * - an iterative candidate of n layers: n importance passes.
 *
 * A rough figure, as noisy as the dry run's throughput: on stories260K on this shared 2-core machine
 * (15 candidates, 32 × 256 tokens, 100 steps) three dry runs said 1:07, 2:43 and 1:13 for a sweep that
 * took 1:01; other models and trainers will differ more.
 */
import type { SweepSpec } from '../contract/sweep-spec.js';
import type { TrainingSpec } from '../contract/plan-spec.js';
import type { ImportanceProfile } from '../importance.js';
import type { ArchitectureFamily, ModelConfig } from '../models/architecture.js';
import { layerParameters, replacementParameters } from './block-choice.js';
import { boundaryBytes } from './boundary-states.js';
import { contiguousCandidates } from './sweep.js';

export interface SweepEstimate {
  readonly candidates: number;
  /** Bytes of the hidden states every candidate shares (float32), written once. */
  readonly hiddenStateBytes: number;
  readonly seconds: number;
}

export interface SweepEstimateInput {
  readonly sweep: SweepSpec;
  readonly profile: ImportanceProfile;
  readonly model: { readonly family: ArchitectureFamily; readonly config: ModelConfig };
  readonly training: TrainingSpec;
  /** Calibration windows and their tokens. */
  readonly samples: number;
  readonly seqLen: number;
  /** Held-out windows each candidate is scored on. */
  readonly evalWindows: number;
}

export function estimateSweep(input: SweepEstimateInput): SweepEstimate {
  const { sweep, profile, model, training, samples, seqLen } = input;
  const { family, config } = model;
  const plans = contiguousCandidates(sweep, profile);
  const trained = plans.filter((c) => c.kind !== 'NONE');
  const boundaries = new Set(trained.flatMap((c) => [c.block.start, c.block.start + c.block.size]));
  const tokens = profile.tokens;
  const perToken = 1 / Math.max(profile.tokensPerSecond, 1e-9); // seconds per token through the whole model
  const perLayerToken = perToken / config.numLayers;
  const trainSamples = Math.max(1, samples - Math.round(training.validationFraction * samples));
  const stepsPerEpoch = Math.max(1, Math.ceil(trainSamples / (training.batchSize * training.gradientAccumulation)));
  const steps = training.epochs !== null ? training.epochs * stepsPerEpoch : Math.ceil(training.minSteps / stepsPerEpoch) * stepsPerEpoch;
  const tokensPerStep = training.batchSize * training.gradientAccumulation * seqLen;
  const layer = layerParameters(family, config);
  const evaluation = (input.evalWindows * seqLen * perToken);
  let seconds = boundaries.size > 0 ? tokens * perToken : 0;
  for (const c of plans) {
    if (c.kind === 'LINEAR') seconds += tokens * 2 * perLayerToken;
    else if (c.kind !== 'NONE') seconds += steps * tokensPerStep * (replacementParameters(c.kind, family, config) / layer) * perLayerToken;
    seconds += evaluation;
  }
  const iterativeSizes = sweep.iterative ? sweep.blockSizes : [];
  for (const size of iterativeSizes) seconds += size * tokens * perToken + evaluation;
  // The original is scored once, beside the first candidate.
  seconds += evaluation;
  return { candidates: plans.length + iterativeSizes.length, hiddenStateBytes: boundaryBytes(tokens, boundaries.size, config.hiddenSize, 'F32'), seconds };
}
