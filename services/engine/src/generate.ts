/**
 * Text generation as llama2.c's run.c does it: the prompt (with BOS) is fed, then tokens are sampled one
 * at a time until `maxTokens` new tokens or BOS (run.c's end-of-text marker for these models).
 * A runtime that decodes incrementally (the whole-model ONNX runtime) keeps a KV cache: the prompt runs
 * once, then each new token alone. Any other (the layer-streamed runtime, TensorFlow.js) recomputes the
 * whole sequence at each step: exact, quadratic in length — and, streamed, a read of every layer per token.
 */
import { EngineError, throwIfCancelled } from './errors.js';
import type { ForwardRuntime } from './runtime/runtime.js';
import { isDecodingRuntime, makeBatch, type KvCache } from './runtime/runtime.js';
import { Sampler, type SamplerSettings } from './sampling.js';
import type { Tokenizer } from './tokenizers/tokenizer.js';

export interface GenerateOptions extends SamplerSettings {
  readonly prompt: string;
  readonly maxTokens: number;
  /** The model's context length; generation stops there. */
  readonly maxPositions: number;
  /** Receives each piece of text as it is produced. */
  readonly onText?: (text: string) => void;
  readonly signal?: AbortSignal;
}

export interface Generation {
  /** The prompt followed by the generated text, as run.c prints it. */
  readonly text: string;
  readonly tokens: number[];
  readonly newTokens: number;
}

export async function generate(runtime: ForwardRuntime, tokenizer: Tokenizer, options: GenerateOptions): Promise<Generation> {
  if (!(Number.isInteger(options.maxTokens) && options.maxTokens >= 0)) {
    throw new EngineError('BAD_INPUT', `max-tokens must be a non-negative integer, got ${options.maxTokens}`);
  }
  if (!(options.temperature >= 0)) throw new EngineError('BAD_INPUT', `temperature must be ≥ 0, got ${options.temperature}`);
  const tokens = tokenizer.encode(options.prompt, { bos: true });
  if (tokens.length === 0) throw new EngineError('BAD_INPUT', 'the tokenizer has no BOS token and the prompt is empty: nothing to start from');
  const sampler = new Sampler(options);
  const pieces: string[] = [];
  const emit = (prev: number, id: number) => {
    const piece = tokenizer.decodeNext(prev, id);
    pieces.push(piece);
    options.onText?.(piece);
  };
  for (let i = 1; i < tokens.length; i++) emit(tokens[i - 1], tokens[i]);

  let newTokens = 0;
  let cache: KvCache | null = null;
  while (newTokens < options.maxTokens && tokens.length < options.maxPositions) {
    throwIfCancelled(options.signal, 'generation');
    let last: Float32Array;
    if (isDecodingRuntime(runtime)) {
      const step = await runtime.step(tokens.slice(cache?.length ?? 0), cache);
      cache = step.cache;
      const vocab = step.logits.shape[2];
      const rows = step.logits.shape[1];
      last = step.logits.data.subarray((rows - 1) * vocab, rows * vocab);
    } else {
      const { logits } = await runtime.forward(makeBatch([tokens]), { logits: true });
      const vocab = logits!.shape[2];
      last = logits!.data.subarray((tokens.length - 1) * vocab, tokens.length * vocab);
    }
    const next = sampler.sample(last);
    newTokens++;
    if (next === tokenizer.bosId) break; // run.c: BOS delimits sequences
    emit(tokens[tokens.length - 1], next);
    tokens.push(next);
  }
  return { text: pieces.join(''), tokens, newTokens };
}
