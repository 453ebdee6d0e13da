/**
 * The whole LLM-Streamline recipe on one model: choose the block (importance, a pinned start, or a
 * target sparsity), collect the block's input/output hidden states to disk, fit or train the
 * replacement, assemble the pruned model, measure it against the original on held-out text, and export
 * it with its manifest. Stages are reported as they start; a working directory makes a run resumable.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { EngineError, throwIfCancelled } from '../errors.js';
import { loadCalibrationSamples, readDataSamples } from '../data/calibration.js';
import { countHeldOutWindows, type CalibrationSource } from '../data/held-out.js';
import type { PlanStage } from '../contract/plan-stage.js';
import { DEFAULT_EVALUATION_SEQ_LEN, evaluateModels, type EvaluationReport, type EvaluationText } from '../evaluation/evaluate.js';
import { computePerplexity } from '../evaluation/perplexity.js';
import { computeImportance, type BlockScores } from '../importance.js';
import { inspectModel, loadModel } from '../models/model.js';
import { createRuntime } from '../runtime/create-runtime.js';
import type { RuntimeName } from '../runtime/runtime.js';
import { loadTokenizer, type Tokenizer } from '../tokenizers/tokenizer.js';
import { assemblePrunedModel, exportPrunedModel, prunedLoadedModel } from './assemble.js';
import { blockSizeForSparsity, removedLayers, replacementParameters, validateBlock, type Block } from './block-choice.js';
import { collectHiddenStatePairs, PairReader, type PairDtype } from './hidden-state-pairs.js';
import { fitLinearReplacement } from './linear-fit.js';
import { initialParameters } from './replacement.js';
import { DEFAULT_RUN, DEFAULT_TRAINING } from './defaults.js';
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
  /** Held-out windows (after the calibration ones, .txt data only) for the perplexity check; 0 skips it. */
  readonly evalWindows?: number;
  /** A full evaluation of the pruned model against the original (perplexity, multiple choice, stability). */
  readonly evaluation?: { readonly texts?: readonly EvaluationText[]; readonly tasks?: readonly string[]; readonly limit?: number };
  readonly runtime?: RuntimeName;
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
  readonly onProgress?: (event: PruneEvent) => void;
  readonly signal?: AbortSignal;
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
  readonly evaluation: { readonly windows: number; readonly seqLen: number; /** Predicted tokens. */ readonly tokens: number; readonly perplexityOriginal: number; readonly perplexityPruned: number } | null;
  /** Mean cosine of the replacement's output and the original block's output on held-out (validation) samples. */
  readonly hiddenStateCosine: number | null;
  /** The full evaluation, when texts or tasks were given. */
  readonly report: EvaluationReport | null;
  readonly seconds: number;
}

export async function prune(options: PruneOptions): Promise<PruneSummary> {
  const started = performance.now();
  const report = (stage: PruneStage, message: string, training?: TrainingProgress) => options.onProgress?.({ stage, message, training });
  const kind = options.replacement;
  const samples = options.samples ?? DEFAULT_RUN.samples;
  const seqLen = options.seqLen ?? DEFAULT_RUN.seqLen;
  const batchSize = options.batchSize ?? DEFAULT_RUN.batchSize;
  const valFraction = options.valFraction ?? DEFAULT_RUN.valFraction;
  const seed = options.seed ?? DEFAULT_RUN.seed;
  const training = { ...DEFAULT_TRAINING, ...options.training, seed, batchSize };
  checkOptions(options, kind, valFraction, batchSize, training);

  report('LOADING', `inspecting ${options.modelPath}`);
  const info = inspectModel(options.modelPath);
  const { config, family } = info;
  checkReplacementFits(kind, family);
  if (seqLen > config.maxPositionEmbeddings) throw new EngineError('BAD_INPUT', `seq-len ${seqLen} is beyond the model's context of ${config.maxPositionEmbeddings} positions`);
  if (existsSync(options.outDir) && readdirSync(options.outDir).length > 0) {
    throw new EngineError('BAD_INPUT', `output directory ${options.outDir} already exists and is not empty; choose a new --out or remove it`);
  }
  const size = options.layers ?? blockSizeForSparsity(options.targetSparsity!, kind, family, config, info.numParameters).size;
  if (options.start !== undefined) validateBlock({ start: options.start, size }, config.numLayers);
  else validateBlock({ start: 0, size }, config.numLayers);

  const tokenizerPath = options.tokenizerPath ?? info.tokenizerPath;
  const tokenizer = tokenizerPath ? await loadTokenizer(tokenizerPath) : null;
  const data = await loadCalibrationSamples(options.dataPath, tokenizer, { samples, seqLen, vocabSize: config.vocabSize });
  await checkEvaluationTexts(options, tokenizer, { path: options.dataPath, windows: data.length, seqLen }, config.maxPositionEmbeddings, config.vocabSize);
  report('LOADING', `${data.length} calibration samples of ≤${seqLen} tokens; loading weights`);
  const model = loadModel(info.path);
  const runtime = await createRuntime(model, { runtime: options.runtime });
  try {
    let importance: BlockScores | null = null;
    let start = options.start;
    if (start === undefined) {
      report('PROFILING', `scoring blocks of ${size} layers on ${runtime.description}`);
      const profile = await computeImportance(runtime, config.numLayers, data, seqLen, { blockSizes: [size], batchSize, signal: options.signal });
      importance = profile.blocks[0];
      start = importance.bestStart;
    }
    const block = { start, size };
    report('PROFILING', `pruning layers ${block.start}..${block.start + block.size - 1} (0-based) with a ${kind} replacement`);

    const dataHash = await sha256OfFile(options.dataPath);
    const samplesHash = createHash('sha256').update(JSON.stringify(data)).digest('hex');
    let replacementWeights = null;
    let trainingSummary: PruneSummary['training'] = null;
    if (kind !== 'NONE') {
      const validationCount = data.length >= 2 && valFraction > 0 ? Math.max(1, Math.round(valFraction * data.length)) : 0;
      const validation = new Set(shuffled([...data.keys()], seed).slice(0, validationCount));
      const pairsDtype = options.pairsDtype ?? 'F32';
      const modelIdentity = options.modelFingerprint ?? [resolve(info.path), statSync(info.path).mtimeMs];
      const pairsKey = hash([modelIdentity, block, samplesHash, pairsDtype, [...validation]]);
      report('COLLECTING', `collecting hidden states h[${block.start}] → h[${block.start + block.size}]`);
      const manifest = await collectHiddenStatePairs(runtime, data, {
        dir: join(options.workDir, 'pairs'),
        key: pairsKey,
        block,
        hiddenSize: config.hiddenSize,
        dtype: pairsDtype,
        validation,
        batchSize,
        signal: options.signal,
        onEstimate: (bytes) => report('COLLECTING', `hidden-state pairs will take about ${formatBytes(bytes)} in ${join(options.workDir, 'pairs')}`),
        onProgress: (done, total, bytes) => report('COLLECTING', `${done}/${total} samples, ${formatBytes(bytes)} written`),
      });
      const pairs = new PairReader(join(options.workDir, 'pairs'), manifest);
      try {
        if (kind === 'LINEAR') {
          report('TRAINING', 'fitting the linear map in closed form');
          const fit = await fitLinearReplacement(pairs, options.ridge ?? 1e-4, options.signal, { onStart: (trainer) => report('TRAINING', `training: ${trainer}`) });
          replacementWeights = fit.weights;
          trainingSummary = { steps: 0, bestEpoch: 1, resumedFromStep: null, epochs: [{ epoch: 1, trainLoss: fit.trainLoss, validationLoss: null, validationCosine: fit.validationCosine }] };
        } else {
          const trainDir = join(options.workDir, 'train');
          const restored = await options.checkpoints?.restore(join(trainDir, 'checkpoint'));
          if (restored) report('TRAINING', `resuming from the checkpoint of step ${restored.step} (${restored.from})`);
          const result = await trainReplacement({
            kind,
            model,
            initial: initialParameters(kind, model, block.start, seed),
            pairs,
            dir: trainDir,
            key: hash([pairsKey, kind, training]),
            settings: training,
            signal: options.signal,
            onCheckpoint: options.checkpoints && ((step, dir) => options.checkpoints!.saved(step, dir)),
            onStart: (trainer) => report('TRAINING', `training: ${trainer}`),
            onProgress: (p) =>
              report('TRAINING', `step ${p.step}/${p.totalSteps} epoch ${p.epoch}/${p.epochs} loss ${p.loss.toExponential(3)} lr ${p.learningRate.toExponential(2)} ${Math.round(p.tokensPerSecond)} tokens/s`, p),
          }).finally(() => options.checkpoints?.flush()); // stored before a stopping worker releases the plan
          replacementWeights = result.params;
          trainingSummary = { steps: result.steps, bestEpoch: result.bestEpoch, resumedFromStep: result.resumedFromStep, epochs: result.epochs };
        }
      } finally {
        pairs.close();
      }
    }

    throwIfCancelled(options.signal, 'pruning');
    report('ASSEMBLING', 'assembling the pruned model');
    const pruned = assemblePrunedModel(model, block, kind, replacementWeights);
    const prunedModel = prunedLoadedModel(model, pruned, options.outDir);

    let evaluation: PruneSummary['evaluation'] = null;
    const evalWindows = options.evalWindows ?? 16;
    const quickCheck = evalWindows > 0 && options.dataPath.endsWith('.txt');
    const windows = quickCheck ? await heldOutCalibrationWindows(options.dataPath, tokenizer, seqLen, evalWindows, data.length, config.vocabSize) : [];
    // A calibration file that calibration used up has no held-out windows: the quick check is skipped
    // (evaluation stays null) rather than failing a plan that has already trained.
    if (quickCheck && windows.length === 0) report('EVALUATING', 'no held-out windows left in the calibration file after the calibration ones; skipping the quick perplexity check');
    if (windows.length > 0) {
      report('EVALUATING', `perplexity on ${windows.length} held-out windows after the calibration ones`);
      const original = await computePerplexity(runtime, windows, { batchSize, signal: options.signal });
      const prunedRuntime = await createRuntime(prunedModel, { runtime: options.runtime });
      try {
        const after = await computePerplexity(prunedRuntime, windows, { batchSize, signal: options.signal });
        evaluation = { windows: windows.length, seqLen, tokens: original.tokens, perplexityOriginal: original.perplexity, perplexityPruned: after.perplexity };
      } finally {
        await prunedRuntime.dispose();
      }
    }

    let fullReport: EvaluationReport | null = null;
    const { texts = [], tasks = [], limit } = options.evaluation ?? {};
    if (texts.length > 0 || tasks.length > 0) {
      if (!tokenizer) throw new EngineError('BAD_INPUT', 'evaluating texts or tasks needs a tokenizer (--tokenizer)');
      await runtime.dispose(); // the evaluation runs one model at a time
      report('EVALUATING', `evaluating on ${texts.length + tasks.length} text and task files`);
      fullReport = await evaluateModels({
        original: model,
        pruned: prunedModel,
        tokenizer,
        texts,
        tasks,
        limit,
        // Only a text that is the calibration file (by content) skips the calibration windows.
        calibration: { path: options.dataPath, windows: data.length, seqLen, sha256: dataHash },
        runtime: { runtime: options.runtime },
        signal: options.signal,
        onProgress: (p) => p.done === p.total && report('EVALUATING', `${p.model}: ${p.phase}${p.file ? ` ${p.file}` : ''} done`),
      });
    }
    const bestEpoch = trainingSummary?.epochs[Math.max(0, trainingSummary.bestEpoch - 1)];

    const summary: PruneSummary = {
      outDir: options.outDir,
      block,
      removedLayers: removedLayers(block),
      replacement: kind,
      netLayersRemoved: config.numLayers - pruned.numLayers,
      numLayers: { before: config.numLayers, after: pruned.numLayers },
      numParameters: { before: model.numParameters, after: prunedModel.numParameters, replacement: replacementParameters(kind, family, config) },
      sparsity: 1 - prunedModel.numParameters / model.numParameters,
      importance,
      training: trainingSummary,
      evaluation,
      hiddenStateCosine: bestEpoch?.validationCosine ?? null,
      report: fullReport,
      seconds: (performance.now() - started) / 1000,
    };
    report('UPLOADING', `writing ${options.outDir}`);
    exportPrunedModel(options.outDir, model, pruned, tokenizerPath, {
      format: 'streamline-pruned-model/1',
      source: { path: resolve(info.path), ...(options.modelUri ? { uri: options.modelUri } : {}), format: info.format, modelType: config.modelType, numLayers: config.numLayers, numParameters: model.numParameters, dtype: config.dtype },
      removedLayers: summary.removedLayers,
      replacement: kind,
      netLayersRemoved: summary.netLayersRemoved,
      settings: { samples: data.length, seqLen, batchSize, valFraction, seed, pairsDtype: options.pairsDtype ?? 'F32', ...(kind === 'LINEAR' ? { ridge: options.ridge ?? 1e-4 } : {}), ...(kind === 'NONE' || kind === 'LINEAR' ? {} : { training }) },
      data: { path: resolve(options.dataPath), sha256: dataHash, samplesSha256: samplesHash },
      importance,
      training: trainingSummary,
      evaluation: { ...evaluation, hiddenStateCosine: summary.hiddenStateCosine, numParameters: summary.numParameters, sparsity: summary.sparsity, report: fullReport },
    });
    return { ...summary, seconds: (performance.now() - started) / 1000 };
  } finally {
    await runtime.dispose();
  }
}

function checkOptions(options: PruneOptions, kind: ReplacementKind, valFraction: number, batchSize: number, training: TrainingSettings): void {
  if (!REPLACEMENT_KINDS.includes(kind)) throw new EngineError('BAD_INPUT', `replacement ${JSON.stringify(kind)} is not one of ${REPLACEMENT_KINDS.join(', ')}`);
  if ((options.layers === undefined) === (options.targetSparsity === undefined)) {
    throw new EngineError('BAD_INPUT', 'give exactly one of layers (the block size) and target sparsity');
  }
  if (options.start !== undefined && options.layers === undefined) throw new EngineError('BAD_INPUT', 'a pinned start needs layers (the block size)');
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

function hash(value: unknown): string {
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
