/**
 * Next-token negative log-likelihoods of token sequences, batched through a ForwardRuntime. Perplexity
 * (every position of a window) and multiple-choice scoring (the continuation tokens of each choice) are
 * both built on this.
 */
import { EngineError, throwIfCancelled } from '../errors.js';
import { isPassRuntime, makeBatch, type ForwardResult, type ForwardRuntime, type LayerProgress, type TokenBatch } from '../runtime/runtime.js';

/**
 * -log softmax(logits)[target] for the row of `vocabSize` logits starting at `rowOffset`, in float64
 * (JavaScript numbers) with the row's maximum subtracted before exponentiating, so large logits cannot
 * overflow and the float32 logits lose no precision in the sum.
 */
export function nextTokenNll(logits: Float32Array, rowOffset: number, vocabSize: number, target: number): number {
  let max = -Infinity;
  for (let v = 0; v < vocabSize; v++) if (logits[rowOffset + v] > max) max = logits[rowOffset + v];
  let sumOfExps = 0;
  for (let v = 0; v < vocabSize; v++) sumOfExps += Math.exp(logits[rowOffset + v] - max);
  return Math.log(sumOfExps) + max - logits[rowOffset + target];
}

/**
 * A sequence to score: the tokens at positions firstScored .. ids.length-1 are each predicted from every
 * token before them (position t-1's logits predict token t), so firstScored must be at least 1.
 */
export interface ScoredSequence {
  readonly ids: readonly number[];
  readonly firstScored: number;
}

export interface SequenceNll {
  /** Summed NLL (nats) of the scored tokens. */
  readonly nll: number;
  /** How many tokens were scored. */
  readonly tokens: number;
}

interface QueuedSequence {
  readonly sequence: ScoredSequence;
  readonly onScored: (result: SequenceNll) => void;
}

interface BatchInFlight {
  readonly queued: readonly QueuedSequence[];
  readonly result: Promise<ForwardResult>;
}

/**
 * Collects sequences and runs them through the runtime `batchSize` at a time. Each sequence's callback
 * gets its NLL once its batch has run. While one batch's logits are turned into NLLs on this thread, the
 * next batch's forward pass is already running in the runtime (as importance does), and only one batch's
 * logits are held at a time, so memory does not grow with the number of sequences.
 */
export class BatchedNllScorer {
  private queue: QueuedSequence[] = [];
  private inFlight: BatchInFlight | null = null;

  constructor(
    private readonly runtime: ForwardRuntime,
    private readonly batchSize: number,
    /** What is being computed, for the cancellation message. */
    private readonly what: string,
    private readonly signal?: AbortSignal,
  ) {
    if (!(Number.isInteger(batchSize) && batchSize >= 1)) throw new EngineError('BAD_INPUT', `batch size must be a positive integer, got ${batchSize}`);
  }

  /** Layer-streamed runtimes: called after each layer of the one pass `finish` runs. */
  onLayer?: (progress: LayerProgress) => void;

  async add(sequence: ScoredSequence, onScored: (result: SequenceNll) => void): Promise<void> {
    if (!(Number.isInteger(sequence.firstScored) && sequence.firstScored >= 1 && sequence.firstScored <= sequence.ids.length)) {
      throw new Error(`firstScored ${sequence.firstScored} must be in [1, ${sequence.ids.length}] (position 0 has nothing before it)`);
    }
    this.queue.push({ sequence, onScored });
    // A layer-streamed runtime scores everything in one pass at the end (each layer read once for all batches).
    if (this.queue.length >= this.batchSize && !isPassRuntime(this.runtime)) await this.launchQueued();
  }

  /** Runs whatever is queued and waits until every callback has been called. */
  async finish(): Promise<void> {
    if (isPassRuntime(this.runtime)) return this.scoreInOnePass();
    if (this.queue.length > 0) await this.launchQueued();
    await this.collectInFlight();
  }

  /**
   * Every queued sequence, batchSize at a time, through one layer-streamed pass: the activations of all
   * batches are the pass's (spilled to disk beyond the memory budget); one batch's logits at a time.
   */
  private async scoreInOnePass(): Promise<void> {
    if (!isPassRuntime(this.runtime)) return;
    const groups: QueuedSequence[][] = [];
    for (let i = 0; i < this.queue.length; i += this.batchSize) groups.push(this.queue.slice(i, i + this.batchSize));
    this.queue = [];
    if (groups.length === 0) return;
    throwIfCancelled(this.signal, this.what);
    const batches: TokenBatch[] = groups.map((group) => makeBatch(group.map((entry) => entry.sequence.ids)));
    await this.runtime.pass(batches, { logits: true, signal: this.signal }, {
      onLogits: (b, logits) => scoreBatch(groups[b], { logits }),
      onLayer: this.onLayer,
    });
  }

  private async launchQueued(): Promise<void> {
    // Wait for the batch in flight first: one forward pass at a time, one batch of logits in memory.
    const previous = await this.awaitInFlight();
    throwIfCancelled(this.signal, this.what); // checked with no forward pass in flight
    const queued = this.queue;
    this.queue = [];
    const batch = makeBatch(queued.map((entry) => entry.sequence.ids));
    const result = this.runtime.forward(batch, { logits: true });
    // Marks a failure as handled until it is awaited, in case turning `previous` into NLLs throws first.
    result.catch(() => undefined);
    this.inFlight = { queued, result };
    if (previous) scoreBatch(previous.queued, previous.forward);
  }

  private async collectInFlight(): Promise<void> {
    const previous = await this.awaitInFlight();
    if (previous) scoreBatch(previous.queued, previous.forward);
  }

  private async awaitInFlight(): Promise<{ queued: readonly QueuedSequence[]; forward: ForwardResult } | null> {
    const inFlight = this.inFlight;
    if (!inFlight) return null;
    this.inFlight = null;
    return { queued: inFlight.queued, forward: await inFlight.result };
  }
}

function scoreBatch(queued: readonly QueuedSequence[], forward: ForwardResult): void {
  const logits = forward.logits!;
  const [, batchLength, vocabSize] = logits.shape;
  queued.forEach(({ sequence, onScored }, b) => {
    let nll = 0;
    for (let t = sequence.firstScored; t < sequence.ids.length; t++) {
      nll += nextTokenNll(logits.data, (b * batchLength + t - 1) * vocabSize, vocabSize, sequence.ids[t]);
    }
    onScored({ nll, tokens: sequence.ids.length - sequence.firstScored });
  });
}

/** Refuses token ids the model has no embedding for, naming where they came from. */
export function checkTokenIds(ids: readonly number[], vocabSize: number, where: string): void {
  for (const id of ids) {
    if (!(Number.isInteger(id) && id >= 0 && id < vocabSize)) {
      throw new EngineError('BAD_INPUT', `${where}: token id ${id} is outside the model's vocabulary [0, ${vocabSize}); does the tokenizer belong to this model?`);
    }
  }
}
