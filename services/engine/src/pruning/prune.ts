/**
 * The whole LLM-Streamline recipe on one model, as a pipeline of named stages over one run context:
 *
 *   open model and data → choose block → collect pairs → fit replacement → [heal] → assemble → evaluate → export
 *
 * Opening is the calibration session every profiling run shares (../calibration-session.ts): the model
 * inspected once, the data loaded, the weights opened for layer-streamed reading. Choosing the block
 * runs importance (unless the start is pinned); the pairs (h[s], h[s+n]) go to disk; the replacement is
 * fitted or trained from them; the pruned model is a view of the source's weights plus the replacement,
 * measured against the original and exported tensor by tensor. Healing (optional, heal.ts) fine-tunes the
 * fitted replacement by distillation from the original's logits before assembly. Progress is mapped to
 * events in one place (`report`); a working directory makes a run resumable (pairs, training and healing
 * checkpoints, pass checkpoints), and `checkpoints` (an object store) makes it resumable on another disk.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { openCalibrationSession, type CalibrationSession } from '../calibration-session.js';
import { EngineError, throwIfCancelled } from '../errors.js';
import { readDataSamples } from '../data/calibration.js';
import { countHeldOutWindows, type CalibrationSource } from '../data/held-out.js';
import type { PlanStage } from '../contract/plan-stage.js';
import { DEFAULT_EVALUATION_SEQ_LEN, evaluateModels, type EvaluationReport, type EvaluationText, type ModelScores } from '../evaluation/evaluate.js';
import { computePerplexity } from '../evaluation/perplexity.js';
import { computeImportance, type BlockScores } from '../importance.js';
import { hostTensor, type HostTensor } from '../formats/host-tensor.js';
import { decodeToFloat32, encodeFromFloat32, type StorageDtype } from '../formats/dtype.js';
import type { ModelInfo } from '../models/model.js';
import type { StreamedModel } from '../runtime/onnx/streamed-forward.js';
import type { ForwardRuntime, LayerProgress, RuntimeName } from '../runtime/runtime.js';
import type { StreamingMode } from '../runtime/open-runtime.js';
import type { Tokenizer } from '../tokenizers/tokenizer.js';
import { exportPrunedModel, layoutWithoutLayers, prunedLayout, prunedParameters, prunedStreamedModel, type PrunedLayout } from './assemble.js';
import { blockSizeForSparsity, removedLayers, replacementParameters, validateBlock, type Block } from './block-choice.js';
import { collectHiddenStatePairs, PairReader, type HiddenStatePairs, type PairDtype, type PairManifest } from './hidden-state-pairs.js';
import { checkHealingSettings, healingMemoryBytes, healReplacement, validationWindows, type HealingRecord, type HealingResult, type HealingSettings } from './heal.js';
import { fitLinearReplacement } from './linear-fit.js';
import { initialParameters, type TrainedKind } from './replacement.js';
import { DEFAULT_EVAL_WINDOWS, DEFAULT_RUN, DEFAULT_TRAINING } from './defaults.js';
import { checkReplacementFits, REPLACEMENT_KINDS, type ReplacementKind } from './replacement-kinds.js';
import { shuffled, trainReplacement, type EpochRecord, type TrainingProgress, type TrainingSettings } from './train.js';
import type { CheckpointSync } from '../storage/checkpoint-store.js';
import { sha256OfFile } from '../storage/integrity.js';

/** The plan stages a prune goes through (all but DONE, which is the plan's). */
export type PruneStage = Exclude<PlanStage, 'DONE'>;

export interface PruneEvent {
  readonly stage: PruneStage;
  readonly message: string;
  readonly training?: TrainingProgress;
  /** Layer-streamed passes: the 0-based layer just computed (-1: embeddings; `layers`: the LM head), of `layers`. */
  readonly layer?: number;
  readonly layers?: number;
  /** Layer-streamed passes: weight bytes read from the model's files so far in the current pass. */
  readonly bytesRead?: number;
}

export interface PruneOptions {
  readonly modelPath: string;
  readonly tokenizerPath?: string;
  readonly dataPath: string;
  readonly workDir: string;
  readonly outDir: string;
  /** Block size; or give targetSparsity instead. */
  readonly layers?: number;
  /** Pin the block's first layer instead of choosing it by importance. */
  readonly start?: number;
  readonly targetSparsity?: number;
  readonly replacement: ReplacementKind;
  readonly samples?: number;
  readonly seqLen?: number;
  readonly batchSize?: number;
  readonly valFraction?: number;
  readonly seed?: number;
  readonly pairsDtype?: PairDtype;
  readonly ridge?: number;
  readonly training?: Partial<Omit<TrainingSettings, 'seed' | 'batchSize'>>;
  /** Heal the fitted replacement by distillation (trained kinds only); null or absent: no healing. */
  readonly healing?: HealingSettings | null;
  /** Held-out windows (after the calibration ones, .txt data only) for the perplexity check; 0 skips it. */
  readonly evalWindows?: number;
  /** A full evaluation of the pruned model against the original (perplexity, multiple choice, stability). */
  readonly evaluation?: { readonly texts?: readonly EvaluationText[]; readonly tasks?: readonly string[]; readonly limit?: number };
  readonly runtime?: RuntimeName;
  /** 'on' (default): forward passes stream the model layer by layer; 'off': the whole model in memory. */
  readonly streaming?: StreamingMode;
  /** Bytes (or "6GiB"); default STREAMLINE_MEMORY_BUDGET, else half the available memory. An operator's setting. */
  readonly memoryBudget?: number | string;
  /** Called with the pruned model's runtime after assembly, before export (benchmarks compare it with the export). */
  readonly onAssembled?: (pruned: ForwardRuntime) => Promise<void>;
  /**
   * Identifies the model's content for the resume keys (hidden-state pairs, checkpoints) instead of its
   * path and mtime — so that a copy fetched onto another disk resumes the same run. E.g. the source URI
   * with its files' ETags.
   */
  readonly modelFingerprint?: string;
  /** Where the model came from (s3://…, hf://…), recorded in streamline.json beside the local path. */
  readonly modelUri?: string;
  /** Keeps training checkpoints beyond the work directory (an object store), and brings them back. */
  readonly checkpoints?: CheckpointSync;
  /**
   * A replacement trained already (a sweep's candidate, see sweep.ts): nothing is collected or trained,
   * the block must be pinned (layers and start) and `replacement` must be its kind.
   */
  readonly trained?: TrainedReplacement;
  readonly onProgress?: (event: PruneEvent) => void;
  readonly signal?: AbortSignal;
}

/** A replacement's weights (Hugging Face names) and how it was trained. */
export interface TrainedReplacement {
  /** Null for NONE. */
  readonly weights: Map<string, HostTensor> | null;
  /** Layers removed one at a time (an iterative candidate; kind NONE): exactly these go, not the pinned block. */
  readonly removedLayers?: readonly number[];
  readonly training: PruneSummary['training'];
}

export interface PruneSummary {
  readonly outDir: string;
  readonly block: Block;
  readonly removedLayers: number[];
  readonly replacement: ReplacementKind;
  /** Decoder layers fewer than the original: n, or n - 1 when the replacement is itself a layer. */
  readonly netLayersRemoved: number;
  readonly numLayers: { readonly before: number; readonly after: number };
  readonly numParameters: { readonly before: number; readonly after: number; readonly replacement: number };
  readonly sparsity: number;
  readonly importance: BlockScores | null;
  readonly training: { readonly steps: number; readonly bestEpoch: number; readonly resumedFromStep: number | null; readonly epochs: EpochRecord[] } | null;
  readonly healing: HealingSummary | null;
  readonly evaluation: { readonly windows: number; readonly seqLen: number; /** Predicted tokens. */ readonly tokens: number; readonly perplexityOriginal: number; readonly perplexityPruned: number } | null;
  /** Mean cosine of the replacement's output and the original block's output on held-out (validation) samples. */
  readonly hiddenStateCosine: number | null;
  /** The full evaluation, when texts or tasks were given. */
  readonly report: EvaluationReport | null;
  readonly seconds: number;
}

/** Healing's figures: validation KL and the quick check's perplexity before and after (after: `evaluation.perplexityPruned`). */
export interface HealingSummary {
  readonly settings: HealingSettings;
  readonly steps: number;
  readonly bestStep: number;
  readonly stoppedEarly: boolean;
  readonly validationKl: HealingResult['validationKl'];
  readonly history: HealingRecord[];
  /** Held-out perplexity of the pruned model with the fitted (unhealed) replacement and with the healed one; null without the quick check. */
  readonly perplexity: { readonly before: number; readonly after: number } | null;
}

/** What the stages share: the settings, the session, and each stage's result as it is produced. */
export interface PruneRun {
  readonly options: PruneOptions;
  readonly settings: { readonly kind: ReplacementKind; readonly samples: number; readonly seqLen: number; readonly batchSize: number; readonly valFraction: number; readonly seed: number; readonly training: TrainingSettings; readonly pairsDtype: PairDtype };
  readonly session: CalibrationSession;
  readonly report: (stage: PruneStage, message: string, extra?: Partial<PruneEvent>) => void;
  /** Reports a pass's layers under `stage`. */
  readonly layerReporter: (stage: PruneStage, what: string) => (progress: LayerProgress) => void;
  size: number;
  block?: Block;
  importance: BlockScores | null;
  samplesHash?: string;
  pairsKey?: string;
  replacementWeights: Map<string, HostTensor> | null;
  trainingSummary: PruneSummary['training'];
  pairs?: { readonly dir: string; readonly manifest: PairManifest };
  healing: Omit<HealingSummary, 'perplexity'> | null;
  /** The fitted replacement before healing (evaluated beside the healed one). */
  unhealedWeights: Map<string, HostTensor> | null;
  perplexityBeforeHealing: number | null;
  /** Set for layers removed one at a time (not one block): the layers that go. */
  removedLayers?: readonly number[];
  layout?: PrunedLayout;
  pruned?: StreamedModel;
  evaluation: PruneSummary['evaluation'];
  fullReport: EvaluationReport | null;
  /** The original model's figures, measured once however many pruned models a run evaluates (a sweep's candidates). */
  readonly original: { quickPerplexity?: { readonly tokens: number; readonly perplexity: number }; evaluation?: { scores?: ModelScores } };
}

export async function prune(options: PruneOptions): Promise<PruneSummary> {
  const started = performance.now();
  if (options.trained && options.healing) {
    throw new EngineError('BAD_INPUT', 'healing needs the hidden-state pairs of a fit: a replacement given already trained (a sweep candidate being exported) is not healed');
  }
  const run = await openRun(options);
  try {
    await chooseBlock(run);
    checkHealingFits(run);
    if (options.trained) useTrained(run, options.trained);
    else await collectAndFit(run);
    await heal(run);
    await assemble(run);
    await evaluate(run);
    return await exportRun(run, started);
  } finally {
    await run.session.close();
  }
}

/** The run's `report` and `layerReporter` over `onProgress`: the one place engine progress becomes PruneEvents. */
export function reporters(onProgress: ((event: PruneEvent) => void) | undefined): Pick<PruneRun, 'report' | 'layerReporter'> {
  const report = (stage: PruneStage, message: string, extra: Partial<PruneEvent> = {}) => onProgress?.({ ...extra, stage, message });
  const layerReporter = (stage: PruneStage, what: string) => (p: LayerProgress) => {
    const where = p.layer < 0 ? 'embeddings' : p.layer >= p.layers ? 'LM head' : `layer ${p.layer}/${p.layers - 1}`;
    report(stage, `${what}: ${where}${p.resumed ? ' (resumed from the pass checkpoint)' : ''}, ${formatBytes(p.bytesRead)} read`, { layer: p.layer, layers: p.layers, bytesRead: p.bytesRead });
  };
  return { report, layerReporter };
}

/**
 * Stage 1: settings checked, the calibration session opened (model inspected once, data loaded, weights
 * opened). `kinds`: every replacement the run will fit (a sweep's several; default options.replacement).
 */
export async function openRun(options: PruneOptions, kinds: readonly ReplacementKind[] = [options.replacement]): Promise<PruneRun> {
  const { report, layerReporter } = reporters(options.onProgress);
  const kind = options.replacement;
  const batchSize = options.batchSize ?? DEFAULT_RUN.batchSize;
  const valFraction = options.valFraction ?? DEFAULT_RUN.valFraction;
  const seed = options.seed ?? DEFAULT_RUN.seed;
  const training = { ...DEFAULT_TRAINING, ...options.training, seed, batchSize };
  checkOptions(options, kind, valFraction, batchSize, training);
  const settings = { kind, samples: options.samples ?? DEFAULT_RUN.samples, seqLen: options.seqLen ?? DEFAULT_RUN.seqLen, batchSize, valFraction, seed, training, pairsDtype: options.pairsDtype ?? 'F32' };

  report('LOADING', `inspecting ${options.modelPath}`);
  let size = 0;
  const session = await openCalibrationSession({
    modelPath: options.modelPath,
    tokenizerPath: options.tokenizerPath,
    dataPath: options.dataPath,
    samples: settings.samples,
    seqLen: settings.seqLen,
    runtime: { runtime: options.runtime, streaming: options.streaming, memoryBudget: options.memoryBudget, spillDir: join(options.workDir, 'spill') },
    check: async ({ info, tokenizer, data }) => {
      const { config, family } = info;
      for (const each of kinds) checkReplacementFits(each, family);
      if (existsSync(options.outDir) && readdirSync(options.outDir).length > 0) {
        throw new EngineError('BAD_INPUT', `output directory ${options.outDir} already exists and is not empty; choose a new --out or remove it`);
      }
      size = options.layers ?? blockSizeForSparsity(options.targetSparsity!, kind, family, config, info.numParameters).size;
      validateBlock({ start: options.start ?? 0, size }, config.numLayers);
      await checkEvaluationTexts(options, tokenizer, { path: options.dataPath, windows: data.length, seqLen: settings.seqLen }, config.maxPositionEmbeddings, config.vocabSize);
      report('LOADING', `${data.length} calibration samples of ≤${settings.seqLen} tokens`);
    },
  });
  report('LOADING', session.streaming ? `weights stay on disk and stream layer by layer (memory budget ${formatBytes(session.memoryBudget)})` : 'weights loaded');
  return { options, settings, session, report, layerReporter, size, importance: null, replacementWeights: null, trainingSummary: null, healing: null, unhealedWeights: null, perplexityBeforeHealing: null, evaluation: null, fullReport: null, original: {} };
}

/** Stage 2: the block — pinned, or the best start for the size by importance. */
async function chooseBlock(run: PruneRun): Promise<void> {
  const { options, session, report, size } = run;
  const { config } = session.info;
  let start = options.start;
  if (start === undefined) {
    const runtime = await session.runtime();
    report('PROFILING', `scoring blocks of ${size} layers on ${runtime.description}`);
    const profile = await computeImportance(runtime, config.numLayers, session.data, run.settings.seqLen, {
      blockSizes: [size],
      batchSize: run.settings.batchSize,
      signal: options.signal,
      checkpoint: session.streaming ? { dir: join(options.workDir, 'importance-pass'), key: hash([modelIdentity(options, session.info), run.settings.batchSize, session.data]) } : undefined,
      onLayer: run.layerReporter('PROFILING', 'importance'),
    });
    run.importance = profile.blocks[0];
    start = run.importance.bestStart;
  }
  run.block = { start, size };
  report('PROFILING', `pruning layers ${start}..${start + size - 1} (0-based) with a ${run.settings.kind} replacement`);
}

/** The seeded validation windows: the same for every block and replacement of a run (a sweep's candidates too). */
export function validationSplit(run: PruneRun): Set<number> {
  return validationWindows(run.session.data.length, run.settings.valFraction, run.settings.seed);
}

/** A replacement trained already (options.trained): nothing to collect or fit. */
function useTrained(run: PruneRun, trained: TrainedReplacement): void {
  run.samplesHash = createHash('sha256').update(JSON.stringify(run.session.data)).digest('hex');
  run.replacementWeights = trained.weights;
  run.trainingSummary = trained.training;
  run.removedLayers = trained.removedLayers;
}

/** Stages 3 and 4: the hidden-state pairs to disk, then the replacement fitted (LINEAR) or trained from them. */
async function collectAndFit(run: PruneRun): Promise<void> {
  const { options, session, report, settings } = run;
  const block = run.block!;
  const { info, data } = session;
  const { kind } = settings;
  run.samplesHash = createHash('sha256').update(JSON.stringify(data)).digest('hex');
  if (kind === 'NONE') return;
  const validation = validationSplit(run);
  const pairsKey = hash([modelIdentity(options, info), block, run.samplesHash, settings.pairsDtype, [...validation]]);
  run.pairsKey = pairsKey;
  report('COLLECTING', `collecting hidden states h[${block.start}] → h[${block.start + block.size}]`);
  const pairsDir = join(options.workDir, 'pairs');
  const manifest = await collectHiddenStatePairs(await session.runtime(), data, {
    dir: pairsDir,
    key: pairsKey,
    block,
    hiddenSize: info.config.hiddenSize,
    dtype: settings.pairsDtype,
    validation,
    batchSize: settings.batchSize,
    signal: options.signal,
    passDir: session.streaming ? join(options.workDir, 'pairs-pass') : undefined,
    onLayer: run.layerReporter('COLLECTING', 'hidden states'),
    onEstimate: (bytes) => report('COLLECTING', `hidden-state pairs will take about ${formatBytes(bytes)} in ${pairsDir}`),
    onProgress: (done, total, bytes) => report('COLLECTING', `${done}/${total} samples, ${formatBytes(bytes)} written`),
  });
  run.pairs = { dir: pairsDir, manifest };
  const pairs = new PairReader(pairsDir, manifest);
  try {
    await fitReplacement(run, pairs, pairsKey, join(options.workDir, 'train'));
  } finally {
    pairs.close();
  }
}

/**
 * Stage 4b (optional): the fitted replacement healed by distillation (heal.ts) from the hidden-state pairs
 * on disk; the fitted weights are kept so that evaluation measures the pruned model before and after.
 */
async function heal(run: PruneRun): Promise<void> {
  const { options, session, report, settings } = run;
  const healing = options.healing;
  if (!healing) return;
  const kind = settings.kind as TrainedKind; // checkOptions refused NONE and LINEAR
  const { info } = session;
  const tailLayers = layersAfter(run.block!, info.config.numLayers);
  const pairs = new PairReader(run.pairs!.dir, run.pairs!.manifest);
  // Its checkpoints beside training's, in the work directory and (a worker's) in the object store.
  const dir = join(options.workDir, 'heal');
  const stored = options.checkpoints?.beside('healing');
  try {
    const restored = await stored?.restore(join(dir, 'checkpoint'));
    if (restored) report('HEALING', `resuming healing from the checkpoint of step ${restored.step} (${restored.from})`);
    const result = await healReplacement({
      kind,
      model: { family: info.family, config: info.config },
      initial: run.replacementWeights!,
      tailLayers,
      read: (name) => session.weights.readFloat32(name),
      pairs,
      settings: healing,
      batchSize: settings.batchSize,
      seed: settings.seed,
      optimizer: settings.training,
      // The fitted replacement is the training run's: its key, with healing's own settings.
      checkpoints: { dir, key: hash([run.pairsKey, kind, settings.training, healing, settings.batchSize, settings.seed]), every: settings.training.checkpointEvery, onSaved: stored && ((step, at) => stored.saved(step, at)) },
      signal: options.signal,
      onStart: (trainer) => report('HEALING', `healing by distillation on ${trainer}`),
      onProgress: (p) =>
        report('HEALING', `step ${p.step}/${p.totalSteps} KL ${p.loss.toExponential(3)}${p.validationLoss === null ? '' : ` validation KL ${p.validationLoss.toExponential(3)}`} lr ${p.learningRate.toExponential(2)} ${Math.round(p.tokensPerSecond)} tokens/s`, { training: p }),
    });
    if (result.resumedFromStep !== null) report('HEALING', `healing resumed from its checkpoint of step ${result.resumedFromStep}`);
    run.unhealedWeights = run.replacementWeights;
    run.replacementWeights = result.params;
    run.healing = { settings: healing, steps: result.steps, bestStep: result.bestStep, stoppedEarly: result.stoppedEarly, validationKl: result.validationKl, history: result.history };
    const stopped = result.stoppedEarly ? `stopped early after ${result.steps} steps` : `${result.steps} steps`;
    report('HEALING', `healed: ${stopped}, kept step ${result.bestStep}; validation KL ${formatKl(result.validationKl.before)} → ${formatKl(result.validationKl.after)}`);
  } finally {
    pairs.close();
    await stored?.flush(); // stored before a stopping worker releases the plan
  }
}

/** Once the block is known, before any pair is collected: healing's estimate within the memory budget. */
function checkHealingFits(run: PruneRun): void {
  const { session, settings } = run;
  if (!run.options.healing) return;
  const { info } = session;
  const tail = layersAfter(run.block!, info.config.numLayers).length;
  const needed = healingMemoryBytes(info, tail, replacementParameters(settings.kind, info.family, info.config), settings.batchSize, settings.seqLen);
  if (needed > session.memoryBudget) {
    throw new EngineError(
      'BAD_INPUT',
      `healing needs about ${formatBytes(needed)} (the ${tail} layer${tail === 1 ? '' : 's'} after the block and the LM head in float32, and one batch's activations) but the memory budget is ${formatBytes(session.memoryBudget)}; use a smaller batch size or sequence length, or raise the memory budget`,
    );
  }
}

/** 0-based indices of the original's layers after the block: what healing backpropagates through. */
function layersAfter(block: Block, numLayers: number): number[] {
  return [...Array(numLayers).keys()].filter((layer) => layer >= block.start + block.size);
}

function formatKl(kl: number | null): string {
  return kl === null ? 'n/a' : kl.toExponential(3);
}

/**
 * Stage 4: the replacement of run.block fitted (LINEAR, closed form) or trained from `pairs`, with its
 * checkpoints in `trainDir` (`pairsKey` identifies the pairs in the checkpoint's key).
 */
export async function fitReplacement(run: PruneRun, pairs: HiddenStatePairs, pairsKey: string, trainDir: string): Promise<void> {
  const { options, session, report, settings } = run;
  const block = run.block!;
  const { info } = session;
  const { kind, seed, training } = settings;
  if (kind === 'NONE') return;
  if (kind === 'LINEAR') {
    report('TRAINING', 'fitting the linear map in closed form');
    const fit = await fitLinearReplacement(pairs, options.ridge ?? 1e-4, options.signal, { onStart: (trainer) => report('TRAINING', `training: ${trainer}`) });
    run.replacementWeights = fit.weights;
    run.trainingSummary = { steps: 0, bestEpoch: 1, resumedFromStep: null, epochs: [{ epoch: 1, trainLoss: fit.trainLoss, validationLoss: null, validationCosine: fit.validationCosine }] };
    return;
  }
  const restored = await options.checkpoints?.restore(join(trainDir, 'checkpoint'));
  if (restored) report('TRAINING', `resuming from the checkpoint of step ${restored.step} (${restored.from})`);
  const source = { family: info.family, config: info.config, read: (name: string) => session.weights.readFloat32(name) };
  const result = await trainReplacement({
    kind,
    model: source,
    initial: () => initialParameters(kind, source, block.start, seed),
    pairs,
    dir: trainDir,
    key: hash([pairsKey, kind, training]),
    settings: training,
    signal: options.signal,
    onCheckpoint: options.checkpoints && ((step, dir) => options.checkpoints!.saved(step, dir)),
    onStart: (trainer) => report('TRAINING', `training: ${trainer}`),
    onProgress: (p) =>
      report('TRAINING', `step ${p.step}/${p.totalSteps} epoch ${p.epoch}/${p.epochs} loss ${p.loss.toExponential(3)} lr ${p.learningRate.toExponential(2)} ${Math.round(p.tokensPerSecond)} tokens/s`, { training: p }),
  }).finally(() => options.checkpoints?.flush()); // stored before a stopping worker releases the plan
  run.replacementWeights = result.params;
  run.trainingSummary = { steps: result.steps, bestEpoch: result.bestEpoch, resumedFromStep: result.resumedFromStep, epochs: result.epochs };
}

/**
 * Stage 5: the pruned model, as a view of the source's weights with the replacement in place. The
 * replacement is rounded to the source's dtype first — the dtype the export writes it in — so that the
 * model evaluated is the model shipped, not a float32 version of it.
 */
export async function assemble(run: PruneRun): Promise<void> {
  throwIfCancelled(run.options.signal, 'pruning');
  run.report('ASSEMBLING', 'assembling the pruned model');
  const { info, model } = run.session;
  if (run.replacementWeights) run.replacementWeights = roundedToDtype(run.replacementWeights, info.config.dtype);
  if (run.unhealedWeights) run.unhealedWeights = roundedToDtype(run.unhealedWeights, info.config.dtype);
  run.layout = run.removedLayers ? layoutWithoutLayers(info, run.removedLayers) : prunedLayout(info, run.block!, run.settings.kind, run.replacementWeights);
  run.pruned = prunedStreamedModel(model, run.layout);
  if (run.options.onAssembled) {
    const runtime = await run.session.runtimeFor(run.pruned);
    try {
      await run.options.onAssembled(runtime);
    } finally {
      await runtime.dispose();
    }
  }
}

/** Stage 6: the quick held-out perplexity check, and the full evaluation when texts or tasks were given. */
export async function evaluate(run: PruneRun): Promise<void> {
  const { options, session, report, settings } = run;
  const { info, tokenizer, data } = session;
  const { config } = info;
  // Healed: the pruned model with the fitted replacement is measured too, for before-and-after figures.
  const unhealed = run.unhealedWeights && prunedStreamedModel(session.model, prunedLayout(info, run.block!, settings.kind, run.unhealedWeights));
  const evalWindows = options.evalWindows ?? DEFAULT_EVAL_WINDOWS;
  const quickCheck = evalWindows > 0 && options.dataPath.endsWith('.txt');
  const windows = quickCheck ? await heldOutCalibrationWindows(options.dataPath, tokenizer, settings.seqLen, evalWindows, data.length, config.vocabSize) : [];
  // A calibration file that calibration used up has no held-out windows: the quick check is skipped
  // (evaluation stays null) rather than failing a plan that has already trained.
  if (quickCheck && windows.length === 0) report('EVALUATING', 'no held-out windows left in the calibration file after the calibration ones; skipping the quick perplexity check');
  if (windows.length > 0) {
    report('EVALUATING', `perplexity on ${windows.length} held-out windows after the calibration ones`);
    const perplexityOf = async (model: StreamedModel, what: string) => {
      const runtime = await session.runtimeFor(model);
      try {
        return await computePerplexity(runtime, windows, { batchSize: settings.batchSize, signal: options.signal, onLayer: run.layerReporter('EVALUATING', what) });
      } finally {
        await runtime.dispose();
      }
    };
    run.original.quickPerplexity ??= await perplexityOf(session.model, 'original model');
    const original = run.original.quickPerplexity;
    if (unhealed) run.perplexityBeforeHealing = (await perplexityOf(unhealed, 'pruned model before healing')).perplexity;
    const after = await perplexityOf(run.pruned!, 'pruned model');
    run.evaluation = { windows: windows.length, seqLen: settings.seqLen, tokens: original.tokens, perplexityOriginal: original.perplexity, perplexityPruned: after.perplexity };
  }

  const { texts = [], tasks = [], limit } = options.evaluation ?? {};
  if (texts.length === 0 && tasks.length === 0) return;
  if (!tokenizer) throw new EngineError('BAD_INPUT', 'evaluating texts or tasks needs a tokenizer (--tokenizer)');
  report('EVALUATING', `evaluating on ${texts.length + tasks.length} text and task files`);
  const prunedModel = run.pruned!;
  run.fullReport = await evaluateModels({
    // One model at a time: each is opened for its own scoring and disposed after.
    original: { path: info.path, numParameters: info.numParameters, config, open: () => session.runtimeFor(session.model) },
    pruned: { path: options.outDir, numParameters: prunedParameters(prunedModel), config: prunedModel.config, open: () => session.runtimeFor(prunedModel) },
    ...(unhealed && { beforeHealing: { path: options.outDir, numParameters: prunedParameters(unhealed), config: unhealed.config, open: () => session.runtimeFor(unhealed) } }),
    tokenizer,
    texts,
    tasks,
    limit,
    // Only a text that is the calibration file (by content) skips the calibration windows.
    calibration: { path: options.dataPath, windows: data.length, seqLen: settings.seqLen, sha256: await sha256OfFile(options.dataPath) },
    runtime: { runtime: options.runtime },
    signal: options.signal,
    onProgress: (p) => p.done === p.total && report('EVALUATING', `${p.model}: ${p.phase}${p.file ? ` ${p.file}` : ''} done`),
    originalScores: (run.original.evaluation ??= {}),
  });
}

/** Stage 7: the summary, and the pruned checkpoint written tensor by tensor with its manifest. */
async function exportRun(run: PruneRun, started: number): Promise<PruneSummary> {
  const { options, session, settings, report } = run;
  const { info, data } = session;
  const { config, family } = info;
  const kind = settings.kind;
  const pruned = run.pruned!;
  const block = run.block!;
  const bestEpoch = run.trainingSummary?.epochs[Math.max(0, run.trainingSummary.bestEpoch - 1)];
  const after = prunedParameters(pruned);
  const numParameters = { before: info.numParameters, after, replacement: replacementParameters(kind, family, config) };
  const summary: PruneSummary = {
    outDir: options.outDir,
    block,
    removedLayers: run.removedLayers ? [...run.removedLayers].sort((a, b) => a - b) : removedLayers(block),
    replacement: kind,
    netLayersRemoved: config.numLayers - pruned.config.numLayers,
    numLayers: { before: config.numLayers, after: pruned.config.numLayers },
    numParameters,
    sparsity: 1 - after / info.numParameters,
    importance: run.importance,
    training: run.trainingSummary,
    healing: run.healing && { ...run.healing, perplexity: run.perplexityBeforeHealing !== null && run.evaluation ? { before: run.perplexityBeforeHealing, after: run.evaluation.perplexityPruned } : null },
    evaluation: run.evaluation,
    hiddenStateCosine: bestEpoch?.validationCosine ?? null,
    report: run.fullReport,
    seconds: (performance.now() - started) / 1000,
  };
  report('UPLOADING', `writing ${options.outDir}`);
  const dataHash = await sha256OfFile(options.dataPath);
  let lastReported = 0;
  exportPrunedModel(options.outDir, info, pruned, run.layout!, session.tokenizerPath, {
    format: 'streamline-pruned-model/1',
    source: { path: resolve(info.path), ...(options.modelUri ? { uri: options.modelUri } : {}), format: info.format, modelType: config.modelType, numLayers: config.numLayers, numParameters: info.numParameters, dtype: config.dtype },
    removedLayers: summary.removedLayers,
    replacement: kind,
    netLayersRemoved: summary.netLayersRemoved,
    settings: { samples: data.length, seqLen: settings.seqLen, batchSize: settings.batchSize, valFraction: settings.valFraction, seed: settings.seed, pairsDtype: settings.pairsDtype, ...(kind === 'LINEAR' ? { ridge: options.ridge ?? 1e-4 } : {}), ...(kind === 'NONE' || kind === 'LINEAR' ? {} : { training: settings.training }) },
    data: { path: resolve(options.dataPath), sha256: dataHash, samplesSha256: run.samplesHash },
    importance: run.importance,
    training: run.trainingSummary,
    healing: summary.healing,
    evaluation: { ...run.evaluation, hiddenStateCosine: summary.hiddenStateCosine, numParameters: summary.numParameters, sparsity: summary.sparsity, report: run.fullReport },
  }, {
    onTensor: (_name, written, total) => {
      // One line per GiB written (and the last).
      if (written - lastReported < 1024 ** 3 && written !== total) return;
      lastReported = written;
      report('UPLOADING', `${formatBytes(written)} of ${formatBytes(total)} written`, { bytesRead: written });
    },
  });
  return { ...summary, seconds: (performance.now() - started) / 1000 };
}

/** The model's identity in resume keys: the caller's fingerprint (a fetched copy), else its path and mtime. */
export function modelIdentity(options: Pick<PruneOptions, 'modelFingerprint'>, info: ModelInfo): unknown {
  return options.modelFingerprint ?? [resolve(info.path), statSync(info.path).mtimeMs];
}

function checkOptions(options: PruneOptions, kind: ReplacementKind, valFraction: number, batchSize: number, training: TrainingSettings): void {
  if (options.healing) {
    if (kind === 'NONE' || kind === 'LINEAR') throw new EngineError('BAD_INPUT', `healing fine-tunes a trained replacement (FFN, SWIGLU or LAYER); the ${kind} replacement has nothing to heal`);
    checkHealingSettings(options.healing);
  }
  if (!REPLACEMENT_KINDS.includes(kind)) throw new EngineError('BAD_INPUT', `replacement ${JSON.stringify(kind)} is not one of ${REPLACEMENT_KINDS.join(', ')}`);
  if ((options.layers === undefined) === (options.targetSparsity === undefined)) {
    throw new EngineError('BAD_INPUT', 'give exactly one of layers (the block size) and target sparsity');
  }
  if (options.start !== undefined && options.layers === undefined) throw new EngineError('BAD_INPUT', 'a pinned start needs layers (the block size)');
  if (options.trained && options.start === undefined) throw new EngineError('BAD_INPUT', 'a trained replacement needs its block pinned (layers and start)');
  if (!(valFraction >= 0 && valFraction < 1)) throw new EngineError('BAD_INPUT', `val-fraction ${valFraction} must be in [0, 1)`);
  const positiveIntegers: [string, number][] = [['batch-size', batchSize], ['grad-accum', training.gradAccum], ['min-steps', training.minSteps], ['checkpoint-every', training.checkpointEvery]];
  if (training.epochs !== undefined) positiveIntegers.push(['epochs', training.epochs]);
  for (const [name, value] of positiveIntegers) if (!(Number.isInteger(value) && value >= 1)) throw new EngineError('BAD_INPUT', `${name} must be a positive integer, got ${value}`);
  const rates: [string, number][] = [['lr', training.learningRate], ['min-lr', training.minLearningRate], ['weight-decay', training.weightDecay], ['grad-clip', training.gradClip]];
  for (const [name, value] of rates) if (!(Number.isFinite(value) && value >= 0)) throw new EngineError('BAD_INPUT', `${name} must be a non-negative number, got ${value}`);
}

/**
 * Before any work: every evaluation text has at least one window left at its seq-len after the
 * calibration windows (skipped only in the calibration file itself) — the evaluation would otherwise
 * fail after training. The gateway checks the full window count at plan creation.
 */
async function checkEvaluationTexts(options: PruneOptions, tokenizer: Tokenizer | null, calibration: CalibrationSource, maxPositions: number, vocabSize: number): Promise<void> {
  const texts = options.evaluation?.texts ?? [];
  if (texts.length === 0 || !tokenizer) return; // no tokenizer: the evaluation says so
  for (const [i, text] of texts.entries()) {
    const spec = typeof text === 'string' ? { path: text } : text;
    const seqLen = spec.seqLen ?? Math.min(DEFAULT_EVALUATION_SEQ_LEN, maxPositions);
    if (!(Number.isInteger(seqLen) && seqLen >= 2)) continue; // the evaluation names the bad setting
    const count = await countHeldOutWindows(spec.path, tokenizer, { seqLen, wanted: 1, vocabSize, calibration });
    if (count.available === 0) {
      const after = count.skipped > 0 ? `, none left after the ${count.skipped} calibration windows (it is the calibration file)` : '';
      throw new EngineError('BAD_INPUT', `evaluation text ${i} (${spec.path}) yields ${count.windows} windows of ${seqLen} tokens${after}; it needs at least one`);
    }
  }
}

/** Up to `windows` windows of the calibration text after the `skip` calibration ones; none when the file ends first. */
async function heldOutCalibrationWindows(path: string, tokenizer: Tokenizer | null, seqLen: number, windows: number, skip: number, vocabSize: number): Promise<number[][]> {
  const { samples } = await readDataSamples(path, tokenizer, { samples: skip + windows, seqLen, vocabSize });
  return samples.slice(skip);
}

/** Each tensor as it will read back once stored in `dtype` (float32: unchanged). */
function roundedToDtype(weights: Map<string, HostTensor>, dtype: StorageDtype): Map<string, HostTensor> {
  if (dtype === 'F32') return weights;
  return new Map([...weights].map(([name, t]) => [name, hostTensor(t.shape, decodeToFloat32(encodeFromFloat32(t.data, dtype), dtype))]));
}

export function hash(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 32);
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}
