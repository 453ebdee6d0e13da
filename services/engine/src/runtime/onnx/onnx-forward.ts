/**
 * The frozen model's forward pass in ONNX Runtime. The graph is built in memory from the architecture
 * table for the outputs asked for (hidden states, logits or both) and one session is kept for the most
 * recent kind of request. Weights go into the model as initializers; past EXTERNAL_DATA_BYTES (protobuf
 * cannot encode messages over 2 GiB) they are written once to a side file that ORT reads directly.
 */
import { closeSync, existsSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { writeFully } from '../../formats/file-writes.js';
import * as ort from 'onnxruntime-node';
import { EngineError } from '../../errors.js';
import type { LoadedModel } from '../../models/model.js';
import { attentionBias, ropeTables } from '../attention-inputs.js';
import type { DecodingRuntime, ForwardRequest, ForwardResult, KvCache, TokenBatch } from '../runtime.js';
import { MASKED } from '../attention-inputs.js';
import type { HostTensor } from '../../formats/host-tensor.js';
import { defaultThreads } from '../threads.js';
import { buildDecoderGraph } from './decoder-graph.js';
import type { ExternalWeights } from './onnx-graph.js';

export const EXTERNAL_DATA_BYTES = 1.5 * 1024 ** 3;

export interface OnnxForwardOptions {
  /** Intra-op threads; default: STREAMLINE_THREADS, else the cgroup CPU quota, else every core (../threads.ts). */
  readonly threads?: number;
  /** 'cpu' or 'cuda'; default: STREAMLINE_ONNX_PROVIDER, else cuda when its provider library is installed. */
  readonly provider?: string;
  /** Weights above this many bytes go to an external data file (tests lower it). */
  readonly externalDataBytes?: number;
}

export class OnnxForward implements DecodingRuntime {
  readonly name = 'onnx' as const;
  readonly description: string;
  private session: ort.InferenceSession | null = null;
  private sessionKey = '';
  private scratchDir: string | null = null;

  constructor(
    private readonly model: LoadedModel,
    private readonly options: OnnxForwardOptions = {},
    private readonly provider = options.provider ?? defaultProvider(),
    private readonly threads = options.threads ?? defaultThreads(),
  ) {
    if (provider !== 'cpu' && provider !== 'cuda') {
      throw new EngineError('BAD_INPUT', `ONNX execution provider ${JSON.stringify(provider)} is not supported; accepted: cpu, cuda`);
    }
    this.description = `onnxruntime-node ${ort.env.versions.node} ${provider} (${this.threads} threads)`;
  }

  async forward(batch: TokenBatch, request: ForwardRequest): Promise<ForwardResult> {
    const session = await this.sessionFor(request);
    const { config, family } = this.model;
    const { batchSize: B, seqLen: T } = batch;
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from(batch.inputIds, (id) => BigInt(id)), [B, T]),
      attention_bias: new ort.Tensor('float32', attentionBias(batch, config.slidingWindow), [B, 1, T, T]),
    };
    if (family.positions === 'rope') {
      const { cos, sin } = ropeTables(config, T);
      feeds.rope_cos = new ort.Tensor('float32', cos, [T, config.headDim]);
      feeds.rope_sin = new ort.Tensor('float32', sin, [T, config.headDim]);
    } else {
      const positions = new BigInt64Array(T);
      for (let t = 0; t < T; t++) positions[t] = BigInt(t + family.learnedPositionOffset);
      feeds.position_ids = new ort.Tensor('int64', positions, [T]);
    }
    const results = await session.run(feeds);
    const host = (t: ort.Tensor) => ({ shape: t.dims, data: t.data as Float32Array });
    return {
      logits: request.logits ? host(results.logits) : undefined,
      hiddenStates: request.hiddenStates
        ? Array.from({ length: config.numLayers + 1 }, (_, i) => host(results[`hidden_${i}`]))
        : undefined,
      hiddenStateCosines: request.hiddenStateCosines ? host(results.hidden_cosines) : undefined,
    };
  }

  /**
   * Incremental decoding of one sequence: runs `ids` (the prompt, then one token at a time) at positions
   * cache.length.., attending to the cached keys and values; returns their logits and the grown cache.
   */
  async step(ids: readonly number[], cache: KvCache | null): Promise<{ logits: HostTensor; cache: KvCache }> {
    const session = await this.sessionFor({ logits: true, kvCache: true });
    const { config, family } = this.model;
    const T = ids.length;
    const P = cache?.length ?? 0;
    const total = P + T;
    const bias = new Float32Array(T * total).fill(MASKED);
    for (let t = 0; t < T; t++) {
      const first = config.slidingWindow === null ? 0 : Math.max(0, P + t - config.slidingWindow + 1);
      for (let j = first; j <= P + t; j++) bias[t * total + j] = 0;
    }
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from(ids, (id) => BigInt(id)), [1, T]),
      attention_bias: new ort.Tensor('float32', bias, [1, 1, T, total]),
    };
    if (family.positions === 'rope') {
      const { cos, sin } = ropeTables(config, total);
      feeds.rope_cos = new ort.Tensor('float32', cos.subarray(P * config.headDim), [T, config.headDim]);
      feeds.rope_sin = new ort.Tensor('float32', sin.subarray(P * config.headDim), [T, config.headDim]);
    } else {
      feeds.position_ids = new ort.Tensor('int64', BigInt64Array.from({ length: T }, (_, t) => BigInt(P + t + family.learnedPositionOffset)), [T]);
    }
    const empty = new ort.Tensor('float32', new Float32Array(0), [1, config.numKeyValueHeads, 0, config.headDim]);
    for (let layer = 0; layer < config.numLayers; layer++) {
      feeds[`past_key_${layer}`] = (cache?.keys[layer] as ort.Tensor | undefined) ?? empty;
      feeds[`past_value_${layer}`] = (cache?.values[layer] as ort.Tensor | undefined) ?? empty;
    }
    const results = await session.run(feeds);
    const keys = Array.from({ length: config.numLayers }, (_, layer) => results[`present_key_${layer}`]);
    const values = Array.from({ length: config.numLayers }, (_, layer) => results[`present_value_${layer}`]);
    return { logits: { shape: results.logits.dims, data: results.logits.data as Float32Array }, cache: { length: total, keys, values } };
  }

  private async sessionFor(request: ForwardRequest & { readonly kvCache?: boolean }): Promise<ort.InferenceSession> {
    const key = `${Boolean(request.logits)}:${Boolean(request.hiddenStates)}:${Boolean(request.hiddenStateCosines)}:${Boolean(request.kvCache)}`;
    if (this.session && this.sessionKey === key) return this.session;
    await this.releaseSession();
    const sessionOptions: ort.InferenceSession.SessionOptions = {
      executionProviders: [this.provider],
      graphOptimizationLevel: 'all',
      intraOpNumThreads: this.threads,
      interOpNumThreads: 1,
      logSeverityLevel: 3, // errors only: ORT's optimizer notes are not the user's business
      // Idle pool threads sleep rather than spin: between runs the host sums cosines and builds the next
      // batch, and on a shared machine spinning threads took the cores it needed.
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    };
    const weightBytes = [...this.model.weights.values()].reduce((sum, t) => sum + t.data.byteLength, 0);
    if (weightBytes > (this.options.externalDataBytes ?? EXTERNAL_DATA_BYTES)) {
      this.scratchDir = mkdtempSync(join(tmpdir(), 'streamline-onnx-'));
      const modelPath = join(this.scratchDir, 'model.onnx');
      const fd = openSync(join(this.scratchDir, 'weights.bin'), 'w');
      let offset = 0;
      const external: ExternalWeights = {
        location: 'weights.bin',
        write(bytes) {
          const at = offset;
          writeFully(fd, bytes);
          offset += bytes.byteLength;
          return at;
        },
      };
      try {
        writeFileSync(modelPath, buildDecoderGraph(this.model, request, external));
      } finally {
        closeSync(fd);
      }
      this.session = await ort.InferenceSession.create(modelPath, sessionOptions);
    } else {
      this.session = await ort.InferenceSession.create(buildDecoderGraph(this.model, request), sessionOptions);
    }
    this.sessionKey = key;
    return this.session;
  }

  private async releaseSession(): Promise<void> {
    await this.session?.release();
    this.session = null;
    if (this.scratchDir) rmSync(this.scratchDir, { recursive: true, force: true });
    this.scratchDir = null;
  }

  async dispose(): Promise<void> {
    await this.releaseSession();
  }
}

/** The CUDA provider ships separately (the GPU image installs it); use it when it is there. */
export function defaultProvider(): string {
  const requested = process.env.STREAMLINE_ONNX_PROVIDER;
  if (requested) return requested;
  const binding = createRequire(import.meta.url).resolve('onnxruntime-node');
  const cudaLibrary = join(dirname(binding), '..', 'bin', 'napi-v6', process.platform, process.arch, 'libonnxruntime_providers_cuda.so');
  return existsSync(cudaLibrary) ? 'cuda' : 'cpu';
}
