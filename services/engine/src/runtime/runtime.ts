/**
 * The interface both runtimes implement: a batched, causal forward pass of the frozen model returning
 * logits and, on request, the residual stream h[0..L] (h[0] = embeddings, h[i] = after decoder layer i,
 * before the final norm).
 */
import type { HostTensor } from '../formats/host-tensor.js';

/** Right-padded token ids; `attentionMask` is 1 for real tokens, 0 for padding. */
export interface TokenBatch {
  readonly batchSize: number;
  readonly seqLen: number;
  readonly inputIds: Int32Array;
  readonly attentionMask: Uint8Array;
}

export interface ForwardRequest {
  /** [B, T, vocab] */
  readonly logits?: boolean;
  /** L+1 tensors of [B, T, hidden] */
  readonly hiddenStates?: boolean;
  /**
   * [B, T, L+1, L+1]: per token, cos(h[i], h[j]) for every pair of hidden states — what block importance
   * needs, computed where the hidden states already are instead of copying them all out.
   */
  readonly hiddenStateCosines?: boolean;
}

/** Keys and values of every layer for the positions already run: [B, Hkv, P, headDim] each. */
export interface KvCache {
  readonly length: number;
  readonly keys: readonly unknown[];
  readonly values: readonly unknown[];
}

/**
 * A runtime that decodes incrementally: `step` runs only the new tokens, attending to the cached keys
 * and values of the earlier ones, and returns the new tokens' logits with the grown cache.
 */
export interface DecodingRuntime extends ForwardRuntime {
  step(ids: readonly number[], cache: KvCache | null): Promise<{ logits: HostTensor; cache: KvCache }>;
}

export function isDecodingRuntime(runtime: ForwardRuntime): runtime is DecodingRuntime {
  return typeof (runtime as Partial<DecodingRuntime>).step === 'function';
}

export interface ForwardResult {
  readonly logits?: HostTensor;
  readonly hiddenStates?: HostTensor[];
  readonly hiddenStateCosines?: HostTensor;
}

export type RuntimeName = 'onnx' | 'tfjs';

export interface ForwardRuntime {
  readonly name: RuntimeName;
  /** Where the work runs, for reports: `onnxruntime-node cpu`, `tfjs wasm ×2 workers`, … */
  readonly description: string;
  forward(batch: TokenBatch, request: ForwardRequest): Promise<ForwardResult>;
  dispose(): Promise<void>;
}

/** What a layer-streamed pass computes: hidden states up to `lastState` (default every one), and logits. */
export interface PassRequest {
  readonly logits?: boolean;
  readonly lastState?: number;
  /**
   * A directory to checkpoint the pass in: activations are kept there and each completed layer is
   * recorded, so the same pass (same `key`) resumes from the last complete layer.
   */
  readonly checkpoint?: { readonly dir: string; readonly key: string };
  /** Keep activations in files even when they would fit in memory (for `keepStates`). */
  readonly spill?: boolean;
  /** States whose files a spilled pass keeps (and hands to the visitor again when it resumes past them). */
  readonly keepStates?: 'all' | readonly number[];
  readonly signal?: AbortSignal;
}

/** Reads rows [from, to) (each `width` floats) of a kept state's batch from the spill files. */
export type KeptStateReader = (state: number, batch: number, rows: { from: number; to: number; width: number }) => Float32Array;

export interface PassVisitor {
  /** h[state] of batch `batch`, [B, T, d]. */
  onHiddenState?(state: number, batch: number, hidden: HostTensor): void | Promise<void>;
  onLogits?(batch: number, logits: HostTensor): void | Promise<void>;
  /** After each layer (and the embeddings: layer -1; the head: layer = numLayers). */
  onLayer?(progress: LayerProgress): void;
  /** At the end, before spill files go: a reader of kept states (null when the pass ran in memory). */
  onComplete?(keptStates: KeptStateReader | null): void | Promise<void>;
}

export interface LayerProgress {
  /** 0-based decoder layer just computed; -1 for the embeddings, numLayers for the LM head. */
  readonly layer: number;
  readonly layers: number;
  /** Weight bytes read from disk so far in this pass. */
  readonly bytesRead: number;
  /** Seconds since the pass started. */
  readonly seconds: number;
  /** Set when the pass resumed from a checkpoint: the layers before were not computed again. */
  readonly resumed?: boolean;
}

/**
 * A runtime that can run many batches through the model layer by layer (one read of each layer's weights
 * for all of them): the layer-streamed ONNX runtime.
 */
export interface PassRuntime extends ForwardRuntime {
  readonly memoryBudget: number;
  readonly numLayers: number;
  readonly hiddenSize: number;
  pass(batches: readonly TokenBatch[], request: PassRequest, visitor: PassVisitor): Promise<void>;
}

export function isPassRuntime(runtime: ForwardRuntime): runtime is PassRuntime {
  return typeof (runtime as Partial<PassRuntime>).pass === 'function';
}

/** Packs token sequences into one right-padded batch. */
export function makeBatch(sequences: readonly (readonly number[])[], seqLen?: number): TokenBatch {
  const T = seqLen ?? Math.max(...sequences.map((s) => s.length));
  const B = sequences.length;
  const inputIds = new Int32Array(B * T);
  const attentionMask = new Uint8Array(B * T);
  sequences.forEach((sequence, b) => {
    if (sequence.length > T) throw new Error(`sequence ${b} has ${sequence.length} tokens, more than the batch length ${T}`);
    for (let t = 0; t < sequence.length; t++) {
      inputIds[b * T + t] = sequence[t];
      attentionMask[b * T + t] = 1;
    }
  });
  return { batchSize: B, seqLen: T, inputIds, attentionMask };
}
