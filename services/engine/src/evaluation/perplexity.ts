/**
 * Perplexity of a model on token windows: the next-token negative log-likelihood (natural log) summed
 * over every predicted position of every window — position t predicts token t+1, padding excluded —
 * and perplexity = exp(total NLL / predicted tokens).
 *
 * Windows come from a text file cut exactly as calibration data is (`loadCalibrationSamples`): one
 * token stream with BOS at its start, cut into consecutive windows. Held-out text is the windows after
 * the ones calibration used, which `loadTextWindows` gives by skipping the first K.
 */
import { EngineError } from '../errors.js';
import { loadCalibrationSamples } from '../data/calibration.js';
import type { ForwardRuntime, LayerProgress } from '../runtime/runtime.js';
import type { Tokenizer } from '../tokenizers/tokenizer.js';
import { BatchedNllScorer } from './sequence-nll.js';

export interface PerplexityResult {
  /** Predicted tokens: each window of n tokens predicts n - 1. */
  readonly tokens: number;
  /** Mean next-token NLL in nats per predicted token. */
  readonly meanNll: number;
  readonly perplexity: number;
}

export interface PerplexityProgress {
  readonly windowsDone: number;
  readonly windows: number;
  readonly tokens: number;
}

export interface PerplexityOptions {
  /** Windows per forward pass; default 8. */
  readonly batchSize?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: PerplexityProgress) => void;
  /** Layer-streamed runtimes: after each layer of the one pass that scores every window. */
  readonly onLayer?: (progress: LayerProgress) => void;
}

export async function computePerplexity(
  runtime: ForwardRuntime,
  windows: readonly (readonly number[])[],
  options: PerplexityOptions = {},
): Promise<PerplexityResult> {
  const scorer = new BatchedNllScorer(runtime, options.batchSize ?? 8, 'perplexity', options.signal);
  scorer.onLayer = options.onLayer;
  let totalNll = 0;
  let tokens = 0;
  let windowsDone = 0;
  const scoredWindows = windows.filter((window) => window.length >= 2); // a single token predicts nothing
  for (const window of scoredWindows) {
    await scorer.add({ ids: window, firstScored: 1 }, (result) => {
      totalNll += result.nll;
      tokens += result.tokens;
      windowsDone++;
      options.onProgress?.({ windowsDone, windows: scoredWindows.length, tokens });
    });
  }
  await scorer.finish();
  if (tokens === 0) throw new EngineError('BAD_INPUT', 'perplexity needs at least one window of two or more tokens');
  const meanNll = totalNll / tokens;
  return { tokens, meanNll, perplexity: Math.exp(meanNll) };
}

export interface TextWindowOptions {
  readonly seqLen: number;
  /** How many windows to return. */
  readonly windows: number;
  /** How many windows to skip first: the ones calibration used, so that the rest is held out. */
  readonly skipWindows: number;
  /** Token ids must be below this (the model's vocabulary size). */
  readonly vocabSize: number;
}

/**
 * Windows `skipWindows .. skipWindows + windows - 1` of a data file, cut as `loadCalibrationSamples`
 * cuts them (so the windows skipped are exactly the ones calibration with the same seq-len used).
 * Fewer windows come back when the file ends first; none left after the skipped ones is BAD_INPUT.
 */
export async function loadTextWindows(path: string, tokenizer: Tokenizer | null, options: TextWindowOptions): Promise<number[][]> {
  const { seqLen, windows, skipWindows, vocabSize } = options;
  if (!(Number.isInteger(windows) && windows >= 1)) throw new EngineError('BAD_INPUT', `windows must be a positive integer, got ${windows}`);
  if (!(Number.isInteger(skipWindows) && skipWindows >= 0)) throw new EngineError('BAD_INPUT', `skip-windows must be a non-negative integer, got ${skipWindows}`);
  const all = await loadCalibrationSamples(path, tokenizer, { samples: skipWindows + windows, seqLen, vocabSize });
  if (all.length <= skipWindows) {
    throw new EngineError('BAD_INPUT', `${path} yields only ${all.length} windows of ${seqLen} tokens, none left after skipping the first ${skipWindows}`);
  }
  return all.slice(skipWindows);
}
