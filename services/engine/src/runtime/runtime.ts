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
