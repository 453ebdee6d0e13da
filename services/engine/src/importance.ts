/**
 * Block importance (LLM-Streamline): for a block of n layers starting at s, the mean over every
 * non-padding calibration token of cos(h[s], h[s+n]). A block whose output is nearly its input does little
 * and is the one to prune: argmax_s. Also reported: angular distance arccos(cos)/π (Gromov et al.) and
 * per-layer Block Influence 1 - cos(h[i], h[i+1]) (ShortGPT).
 *
 * The runtime computes the per-token cosines of every pair of hidden states next to the forward pass;
 * sums are accumulated batch by batch, so memory holds one batch whatever the number of samples.
 */
import { EngineError, throwIfCancelled } from './errors.js';
import type { HostTensor } from './formats/host-tensor.js';
import { isPassRuntime, makeBatch, type ForwardRuntime, type KeptStateReader, type LayerProgress, type PassRuntime, type TokenBatch } from './runtime/runtime.js';

export interface BlockScores {
  readonly blockSize: number;
  /** One per start s = 0 .. L - n. */
  readonly scores: number[];
  /** The start to prune: highest cosine, or lowest angular distance. */
  readonly bestStart: number;
}

export interface ImportanceProfile {
  readonly metric: 'cosine';
  readonly samples: number;
  readonly seqLen: number;
  readonly tokens: number;
  readonly numLayers: number;
  readonly backend: string;
  readonly seconds: number;
  readonly tokensPerSecond: number;
  readonly blocks: BlockScores[];
  readonly angularDistance: BlockScores[];
  readonly blockInfluence: number[];
}

export interface ImportanceProgress {
  /** In a layer-streamed pass every sample advances together: samples × (layers done / layers). */
  readonly samplesDone: number;
  readonly samples: number;
  readonly tokens: number;
  /** Layer-streamed passes: the 0-based layer just computed (-1: embeddings), of `layers`, and weight bytes read so far. */
  readonly layer?: number;
  readonly layers?: number;
  readonly bytesRead?: number;
}

export interface ImportanceOptions {
  /** Block sizes to score; default every size 1..L. */
  readonly blockSizes?: readonly number[];
  readonly batchSize?: number;
  readonly onProgress?: (progress: ImportanceProgress) => void;
  readonly signal?: AbortSignal;
  /** Layer-streamed runtimes: checkpoint the pass here (every hidden state is kept), to resume a pass cut short. */
  readonly checkpoint?: { readonly dir: string; readonly key: string };
  /** Layer-streamed runtimes: called after each layer (time to first layer, bytes read). */
  readonly onLayer?: (progress: LayerProgress) => void;
}

export function parseBlockSizes(value: string, numLayers: number): number[] {
  if (value === 'all') return Array.from({ length: numLayers }, (_, i) => i + 1);
  const sizes = value.split(',').map((part) => Number(part.trim()));
  validateBlockSizes(sizes, numLayers, value);
  return sizes;
}

function validateBlockSizes(sizes: readonly number[], numLayers: number, shown: string = sizes.join(',')): void {
  const bad = sizes.find((n) => !Number.isInteger(n) || n < 1 || n > numLayers);
  if (bad !== undefined || sizes.length === 0) {
    throw new EngineError('BAD_INPUT', `block sizes ${JSON.stringify(shown)}: each must be an integer from 1 to ${numLayers} (the model's layer count), or "all"`);
  }
}

/** Running sums of cos(h[i], h[j]) and arccos(cos)/π over tokens, for every pair i < j of hidden states. */
export class ImportanceAccumulator {
  private readonly cosineSums: Float64Array;
  private readonly angleSums: Float64Array;
  tokens = 0;

  constructor(readonly numLayers: number) {
    const states = numLayers + 1;
    this.cosineSums = new Float64Array(states * states);
    this.angleSums = new Float64Array(states * states);
  }

  /** cosines: [B, T, L+1, L+1] per-token cos(h[i], h[j]) (ForwardRequest.hiddenStateCosines); mask [B·T], 1 for tokens to count. */
  add(cosines: HostTensor, mask: Uint8Array): void {
    const states = this.numLayers + 1;
    const perToken = states * states;
    for (let token = 0; token < mask.length; token++) {
      if (!mask[token]) continue;
      const offset = token * perToken;
      for (let i = 0; i < states; i++) {
        for (let j = i + 1; j < states; j++) {
          const cosine = Math.min(1, Math.max(-1, cosines.data[offset + i * states + j]));
          this.cosineSums[i * states + j] += cosine;
          this.angleSums[i * states + j] += Math.acos(cosine) / Math.PI;
        }
      }
      this.tokens++;
    }
  }

  /** Mean cos(h[s], h[s+n]) for every start s. */
  cosine(blockSize: number): number[] {
    return this.means(this.cosineSums, blockSize);
  }

  angularDistance(blockSize: number): number[] {
    return this.means(this.angleSums, blockSize);
  }

  private means(sums: Float64Array, n: number): number[] {
    const states = this.numLayers + 1;
    return Array.from({ length: this.numLayers - n + 1 }, (_, s) => sums[s * states + s + n] / Math.max(1, this.tokens));
  }
}

function argBest(values: number[], better: (a: number, b: number) => boolean): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (better(values[i], values[best])) best = i;
  return best;
}

export async function computeImportance(
  runtime: ForwardRuntime,
  numLayers: number,
  samples: readonly (readonly number[])[],
  seqLen: number,
  options: ImportanceOptions = {},
): Promise<ImportanceProfile> {
  const blockSizes = options.blockSizes ?? Array.from({ length: numLayers }, (_, i) => i + 1);
  validateBlockSizes(blockSizes, numLayers);
  const batchSize = options.batchSize ?? 8;
  if (!(Number.isInteger(batchSize) && batchSize >= 1)) throw new EngineError('BAD_INPUT', `batch size must be a positive integer, got ${batchSize}`);

  const started = performance.now();
  const accumulator = new ImportanceAccumulator(numLayers);
  if (isPassRuntime(runtime)) {
    await streamedImportance(runtime, accumulator, samples, batchSize, options);
    return profileOf(accumulator, runtime.description, blockSizes, samples.length, seqLen, (performance.now() - started) / 1000);
  }
  const batches: (readonly (readonly number[])[])[] = [];
  for (let i = 0; i < samples.length; i += batchSize) batches.push(samples.slice(i, i + batchSize));

  // The next batch's forward pass runs while this one's cosines are summed.
  let samplesDone = 0;
  let next = batches.length > 0 ? runBatch(runtime, batches[0]) : null;
  for (let b = 0; b < batches.length; b++) {
    const { cosines, mask } = await next!;
    throwIfCancelled(options.signal, 'importance'); // checked with no forward pass in flight
    next = b + 1 < batches.length ? runBatch(runtime, batches[b + 1]) : null;
    accumulator.add(cosines, mask);
    samplesDone += batches[b].length;
    options.onProgress?.({ samplesDone, samples: samples.length, tokens: accumulator.tokens });
  }
  return profileOf(accumulator, runtime.description, blockSizes, samples.length, seqLen, (performance.now() - started) / 1000);
}

function profileOf(accumulator: ImportanceAccumulator, backend: string, blockSizes: readonly number[], samples: number, seqLen: number, seconds: number): ImportanceProfile {
  const numLayers = accumulator.numLayers;
  const blocks = blockSizes.map((n) => {
    const scores = accumulator.cosine(n);
    return { blockSize: n, scores, bestStart: argBest(scores, (a, b) => a > b) };
  });
  const angularDistance = blockSizes.map((n) => {
    const scores = accumulator.angularDistance(n);
    return { blockSize: n, scores, bestStart: argBest(scores, (a, b) => a < b) };
  });
  return {
    metric: 'cosine',
    samples,
    seqLen,
    tokens: accumulator.tokens,
    numLayers,
    backend,
    seconds,
    tokensPerSecond: accumulator.tokens / seconds,
    blocks,
    angularDistance,
    blockInfluence: accumulator.cosine(1).map((cosine) => 1 - cosine),
  };
}

async function runBatch(runtime: ForwardRuntime, sequences: readonly (readonly number[])[]) {
  const batch = makeBatch(sequences);
  const { hiddenStateCosines } = await runtime.forward(batch, { hiddenStateCosines: true });
  return { cosines: hiddenStateCosines!, mask: batch.attentionMask };
}

/**
 * Importance on a layer-streamed runtime: one layer-major pass over every batch (each layer's weights
 * read once, each token embedded once) that keeps every hidden state h[0..L] — in memory when they fit a
 * third of the memory budget, else in the pass's spill files — and then, token rows at a time, the
 * cosines of every pair of states: the full matrix, so every block size comes from the one pass.
 */
async function streamedImportance(
  runtime: PassRuntime,
  accumulator: ImportanceAccumulator,
  samples: readonly (readonly number[])[],
  batchSize: number,
  options: ImportanceOptions,
): Promise<void> {
  const L = runtime.numLayers;
  const S = L + 1;
  const batches: TokenBatch[] = [];
  for (let i = 0; i < samples.length; i += batchSize) batches.push(makeBatch(samples.slice(i, i + batchSize)));
  const rowsOf = (b: number) => batches[b].batchSize * batches[b].seqLen;
  const totalRows = batches.reduce((n, _, b) => n + rowsOf(b), 0);
  const width = runtime.hiddenSize;
  const inMemory = !options.checkpoint && totalRows * S * width * 4 <= runtime.memoryBudget / 3;
  const kept: Float32Array[][] = Array.from({ length: S }, () => []);
  let reader: KeptStateReader | null = null;
  await runtime.pass(batches, { checkpoint: options.checkpoint, spill: !inMemory, keepStates: 'all', signal: options.signal }, {
    onHiddenState: inMemory ? (state, b, hidden) => void (kept[state][b] = hidden.data) : undefined,
    onLayer: (progress) => {
      options.onLayer?.(progress);
      const done = Math.max(0, Math.min(L, progress.layer + 1));
      options.onProgress?.({ samplesDone: Math.floor((samples.length * done) / L), samples: samples.length, tokens: 0, layer: progress.layer, layers: L, bytesRead: progress.bytesRead });
    },
    onComplete: async (keptStates) => {
      reader = keptStates;
      // Rows per chunk: every state's rows together stay within a tenth of the budget.
      const chunk = Math.max(1, Math.floor(runtime.memoryBudget / 10 / (S * width * 4)));
      for (let b = 0; b < batches.length; b++) {
        for (let from = 0; from < rowsOf(b); from += chunk) {
          throwIfCancelled(options.signal, 'importance');
          const to = Math.min(rowsOf(b), from + chunk);
          const states = Array.from({ length: S }, (_, state) =>
            reader ? reader(state, b, { from, to, width }) : kept[state][b].subarray(from * width, to * width),
          );
          accumulator.add({ shape: [to - from, S, S], data: pairCosines(states, width) }, batches[b].attentionMask.subarray(from, to));
        }
      }
    },
  });
}

/** [rows, S, S] (upper triangle): cos(h[i], h[j]) per row for the S states given as [rows, width] each. */
export function pairCosines(states: readonly Float32Array[], width: number): Float32Array {
  const S = states.length;
  const rows = states[0].length / width;
  const out = new Float32Array(rows * S * S);
  const norms = new Float64Array(S);
  for (let row = 0; row < rows; row++) {
    const at = row * width;
    for (let i = 0; i < S; i++) norms[i] = Math.max(Math.sqrt(dot(states[i], states[i], at, width)), 1e-12);
    const base = row * S * S;
    for (let i = 0; i < S; i++) {
      out[base + i * S + i] = 1;
      for (let j = i + 1; j < S; j++) out[base + i * S + j] = dot(states[i], states[j], at, width) / (norms[i] * norms[j]);
    }
  }
  return out;
}

/** x[at..at+n) · y[at..at+n), in four independent sums (a third faster than one chain of additions here). */
function dot(x: Float32Array, y: Float32Array, at: number, n: number): number {
  let a = 0;
  let b = 0;
  let c = 0;
  let d = 0;
  const end = at + n - (n % 4);
  let k = at;
  for (; k < end; k += 4) {
    a += x[k] * y[k];
    b += x[k + 1] * y[k + 1];
    c += x[k + 2] * y[k + 2];
    d += x[k + 3] * y[k + 3];
  }
  for (; k < at + n; k++) a += x[k] * y[k];
  return a + b + c + d;
}
