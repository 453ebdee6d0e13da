/**
 * The frozen model's forward pass in ONNX Runtime, streamed layer by layer: only the layer being
 * computed is in memory. A *pass* runs a set of batches through the model layer-major — the embeddings of
 * every batch (only the rows the batch uses are read), then layer 0 on every batch, then layer 1, … — so
 * each layer's weights are read from disk once per pass (positioned reads, in their stored dtype),
 * widened to float32 one tensor at a time, fed to the layer graph as inputs, and dropped before the next
 * layer is read. One ONNX session per graph
 * (decoder layer, head, inserted replacement) serves every layer and batch of the pass.
 *
 * The activations of the pass (one hidden state per batch) stay in memory when they fit the memory
 * budget, else they live in files in a spill directory; with a checkpoint directory they always do, and
 * each completed layer is recorded there, so that a pass cut short resumes from its last complete layer.
 *
 * CUDA: with the cuda provider the same graphs run on the GPU, the weights uploaded per layer as float32
 * (onnxruntime-node has no bfloat16 tensors). Untested here: no GPU with Node on this machine.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFully } from '../../formats/file-writes.js';
import * as ort from 'onnxruntime-node';
import { checkFreeSpace } from '../../disk-space.js';
import { EngineError, throwIfCancelled } from '../../errors.js';
import { readFully } from '../../formats/file-reads.js';
import type { HostTensor } from '../../formats/host-tensor.js';
import { elementCount } from '../../formats/host-tensor.js';
import type { ArchitectureFamily, ModelConfig } from '../../models/architecture.js';
import { layerPrefix } from '../../models/architecture.js';
import type { WeightReader } from '../../models/weight-reader.js';
import type { InsertedModule } from '../../models/inserted-module.js';
import { attentionBias, ropeTables } from '../attention-inputs.js';
import type { ForwardRequest, ForwardResult, LayerProgress, PassRequest, PassRuntime, PassVisitor, TokenBatch } from '../runtime.js';
import { buildHeadGraph, buildInsertedGraph, buildLayerGraph, type LayerGraph } from './layer-graph.js';
import { defaultProvider } from './onnx-forward.js';

/** A model as the streamed pass runs it: its sizes, a reader of its weights (in its own numbering). */
export interface StreamedModel {
  readonly family: ArchitectureFamily;
  readonly config: ModelConfig;
  readonly weights: WeightReader;
  /** A LINEAR or FFN replacement, applied before decoder layer `position` (after h[position] is reported). */
  readonly inserted?: InsertedModule;
}

export interface StreamedForwardOptions {
  readonly threads?: number;
  readonly provider?: string;
  /** Bytes the pass may hold besides one layer (activations, kept hidden states); see ../memory-budget.ts. */
  readonly memoryBudget: number;
  /** Where activations go when they do not fit the budget; default a temporary directory. */
  readonly spillDir?: string;
  /** Close the weight reader on dispose. */
  readonly ownsWeights?: boolean;
  /**
   * Feed an F16 model's layer weights as float16, cast to float32 inside the graph (default: with the
   * cuda provider, so they stay narrow on the GPU). BF16 weights are always widened on the host:
   * onnxruntime-node has no bfloat16 tensors.
   */
  readonly narrowWeights?: boolean;
  /**
   * Float32 buffers for widened layer weights, shared by the runtimes of one calibration session (the
   * original and the pruned model) so that a 7B-class layer's 0.8 GB is held once, not once per runtime.
   * Runtimes sharing a pool must not run passes at the same time; the owner frees it.
   */
  readonly layerBuffers?: Map<string, Float32Array>;
}

/** The pass's activations: one [B, T, d] float32 array per batch, in memory or in a file per hidden state. */
interface ActivationStore {
  read(batch: number): Float32Array;
  write(batch: number, data: Float32Array): void;
  /** The state index whose activations the store holds is complete. */
  commit(state: number): void;
  close(): void;
}

class MemoryActivations implements ActivationStore {
  private readonly data: Float32Array[] = [];
  read(batch: number) {
    return this.data[batch];
  }
  write(batch: number, data: Float32Array) {
    this.data[batch] = data;
  }
  commit() {}
  close() {
    this.data.length = 0;
  }
}

/** One file per hidden state (`state-00012.f32`: every batch's [B, T, d] in order), `pass.json` naming the last complete one. */
class FileActivations implements ActivationStore {
  private fd = -1;
  private current = -1;
  private readonly offsets: number[] = [];

  constructor(
    readonly dir: string,
    private readonly key: string,
    private readonly sizes: readonly number[],
    private readonly keep: (state: number) => boolean,
    private readonly temporary: boolean,
  ) {
    let offset = 0;
    for (const size of sizes) {
      this.offsets.push(offset);
      offset += size * 4;
    }
    mkdirSync(dir, { recursive: true });
  }

  private file(state: number) {
    return join(this.dir, `state-${String(state).padStart(5, '0')}.f32`);
  }

  /** The last complete state of an earlier run of the same pass, or -1. */
  resumable(): number {
    const marker = join(this.dir, 'pass.json');
    if (!existsSync(marker)) return -1;
    try {
      const { key, state } = JSON.parse(readFileSync(marker, 'utf8'));
      return key === this.key && existsSync(this.file(state)) ? state : -1;
    } catch {
      return -1;
    }
  }

  /** Starts writing state `state` (the reads come from state - 1). */
  begin(state: number) {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = guarded(this.dir, () => openSync(this.file(state), 'w'));
    this.current = state;
  }

  read(batch: number): Float32Array {
    return this.readState(this.current - 1, batch);
  }

  /** A batch's activations of a kept state, or only rows [from, to) of its B·T rows. */
  readState(state: number, batch: number, rows?: { from: number; to: number; width: number }): Float32Array {
    const from = rows ? rows.from * rows.width : 0;
    const data = new Float32Array(rows ? (rows.to - rows.from) * rows.width : this.sizes[batch]);
    const fd = openSync(this.file(state), 'r');
    try {
      readFully(fd, new Uint8Array(data.buffer), this.offsets[batch] + from * 4, this.file(state), `spilled activations end before batch ${batch}'s`);
    } finally {
      closeSync(fd);
    }
    return data;
  }

  write(batch: number, data: Float32Array) {
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    guarded(this.dir, () => writeFully(this.fd, bytes, this.offsets[batch]));
  }

  commit(state: number) {
    fsyncSync(this.fd);
    closeSync(this.fd);
    this.fd = -1;
    const marker = join(this.dir, 'pass.json');
    writeFileSync(`${marker}.tmp`, JSON.stringify({ key: this.key, state }));
    renameSync(`${marker}.tmp`, marker);
    if (state > 0 && !this.keep(state - 1)) rmSync(this.file(state - 1), { force: true });
  }

  close() {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
    if (this.temporary) rmSync(this.dir, { recursive: true, force: true });
  }
}

function guarded<T>(dir: string, action: () => T): T {
  try {
    return action();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') throw new EngineError('STORAGE', `the disk filled up while writing activations to ${dir}; free space or choose another work directory`);
    throw error;
  }
}

/** Per-batch inputs that every layer uses: the attention bias and the RoPE tables, computed once per pass. */
interface BatchInputs {
  readonly batch: TokenBatch;
  readonly feeds: Record<string, ort.Tensor>;
}

export class StreamedOnnxForward implements PassRuntime {
  readonly name = 'onnx' as const;
  readonly description: string;
  private readonly provider: string;
  private readonly threads: number;
  private readonly sessions = new Map<string, Promise<ort.InferenceSession>>();
  /** Widened layer weights, by graph input, reused by every layer (the layers are read one after another). */
  private readonly layerBuffers: Map<string, Float32Array>;

  constructor(
    readonly model: StreamedModel,
    private readonly options: StreamedForwardOptions,
  ) {
    this.provider = options.provider ?? defaultProvider();
    if (this.provider !== 'cpu' && this.provider !== 'cuda') {
      throw new EngineError('BAD_INPUT', `ONNX execution provider ${JSON.stringify(this.provider)} is not supported; accepted: cpu, cuda`);
    }
    this.threads = options.threads ?? availableParallelism();
    this.layerBuffers = options.layerBuffers ?? new Map();
    this.description = `onnxruntime-node ${ort.env.versions.node} ${this.provider} (${this.threads} threads), layer-streamed`;
  }

  get numLayers(): number {
    return this.model.config.numLayers;
  }

  get hiddenSize(): number {
    return this.model.config.hiddenSize;
  }

  get memoryBudget(): number {
    return this.options.memoryBudget;
  }

  /** Float32 bytes of decoder layer `layer`'s weights: what the pass holds while computing it. */
  layerBytes(layer = 0): number {
    const prefix = layerPrefix(this.model.family, layer);
    return this.layerGraphSpec().weights.reduce((sum, w) => sum + elementCount(this.model.weights.shape(`${prefix}${w.tensor}`)) * 4, 0);
  }

  private layerGraph: LayerGraph | null = null;
  private layerGraphSpec(): LayerGraph {
    this.layerGraph ??= buildLayerGraph(this.model.family, this.model.config, this.narrow ? 'float16' : 'float');
    return this.layerGraph;
  }

  /** Layer weights go to the graph as float16 (see StreamedForwardOptions.narrowWeights). */
  private get narrow(): boolean {
    return (this.options.narrowWeights ?? this.provider === 'cuda') && this.model.weights.dtype === 'F16';
  }

  private session(key: string, graph: () => LayerGraph): Promise<ort.InferenceSession> {
    let session = this.sessions.get(key);
    if (!session) {
      session = ort.InferenceSession.create(graph().bytes, {
        executionProviders: [this.provider],
        graphOptimizationLevel: 'all',
        intraOpNumThreads: this.threads,
        interOpNumThreads: 1,
        logSeverityLevel: 3,
      });
      this.sessions.set(key, session);
    }
    return session;
  }

  /** One batch, as the whole-model runtime answers it (a pass of one batch: every weight is read once for it). */
  async forward(batch: TokenBatch, request: ForwardRequest): Promise<ForwardResult> {
    const L = this.model.config.numLayers;
    const hiddenStates: HostTensor[] = [];
    let logits: HostTensor | undefined;
    const wantStates = Boolean(request.hiddenStates || request.hiddenStateCosines);
    await this.pass([batch], { logits: request.logits, lastState: request.logits ? L : wantStates ? L : 0 }, {
      onHiddenState: wantStates ? (state, _b, hidden) => void (hiddenStates[state] = { shape: hidden.shape, data: hidden.data.slice() }) : undefined,
      onLogits: (_b, result) => void (logits = result),
    });
    return {
      logits: request.logits ? logits : undefined,
      hiddenStates: request.hiddenStates ? hiddenStates : undefined,
      hiddenStateCosines: request.hiddenStateCosines ? tokenCosines(hiddenStates) : undefined,
    };
  }

  /** Runs `batches` through the model layer-major (see the file comment); the visitor sees each state and the logits. */
  async pass(batches: readonly TokenBatch[], request: PassRequest, visitor: PassVisitor): Promise<void> {
    const started = performance.now();
    const { family, config, weights, inserted } = this.model;
    const L = config.numLayers;
    const d = config.hiddenSize;
    const lastState = request.logits ? L : Math.min(L, request.lastState ?? L);
    const bytesAtStart = weights.bytesRead;
    const progress = (layer: number, resumed?: boolean) =>
      visitor.onLayer?.({ layer, layers: L, bytesRead: weights.bytesRead - bytesAtStart, seconds: (performance.now() - started) / 1000, ...(resumed ? { resumed } : {}) });
    const sizes = batches.map((b) => b.batchSize * b.seqLen * d);
    const activationBytes = sizes.reduce((a, b) => a + b, 0) * 4;
    const layerBytes = lastState > 0 ? this.layerBytes(0) : 0;
    const keep = request.keepStates === 'all' ? () => true : (state: number) => (request.keepStates as readonly number[] | undefined)?.includes(state) ?? false;

    let store: ActivationStore;
    let files: FileActivations | null = null;
    if (request.checkpoint || request.spill || activationBytes * 2 + layerBytes > this.options.memoryBudget) {
      const parent = this.options.spillDir ?? tmpdir();
      mkdirSync(parent, { recursive: true });
      const keptStates = request.keepStates === 'all' ? lastState + 1 : 2 + (request.keepStates?.length ?? 0);
      checkFreeSpace(request.checkpoint?.dir ?? parent, activationBytes * keptStates, 'spilling the activations of a forward pass');
      const dir = request.checkpoint?.dir ?? mkdtempSync(join(parent, 'streamline-pass-'));
      files = new FileActivations(dir, request.checkpoint?.key ?? 'temporary', sizes, keep, !request.checkpoint);
      store = files;
    } else {
      store = new MemoryActivations();
    }
    const inputs = batches.map((batch) => this.batchInputs(batch));
    try {
      let startState = files ? files.resumable() : -1;
      if (startState > lastState) startState = -1;
      if (startState >= 0) {
        // Resume: kept states up to the resume point are the visitor's again, read from their files.
        for (let state = 0; state <= startState; state++) {
          if (state !== startState && !keep(state)) continue;
          for (let b = 0; b < batches.length; b++) await visitor.onHiddenState?.(state, b, { shape: [batches[b].batchSize, batches[b].seqLen, d], data: files!.readState(state, b) });
        }
        progress(startState - 1, true);
      } else {
        files?.begin(0);
        batches.forEach((batch, b) => store.write(b, this.embed(batch)));
        store.commit(0);
        for (let b = 0; b < batches.length; b++) await visitor.onHiddenState?.(0, b, { shape: [batches[b].batchSize, batches[b].seqLen, d], data: files ? files.readState(0, b) : store.read(b) });
        progress(-1);
        startState = 0;
      }

      const layerSession = lastState > startState ? await this.session('layer', () => this.layerGraphSpec()) : null;
      const graph = this.layerGraphSpec();
      // One layer's weights at a time. (No read-ahead: onnxruntime-node runs a session on the main
      // thread, so reading the next layer could not overlap the computation anyway.)
      for (let layer = startState; layer < lastState; layer++) {
        throwIfCancelled(request.signal, 'the forward pass');
        const feeds = this.readLayerFeeds(graph, layer);
        files?.begin(layer + 1);
        const insertedFeeds = inserted?.position === layer ? await this.insertedFeeds() : null;
        for (let b = 0; b < batches.length; b++) {
          let hidden = files ? files.readState(layer, b) : store.read(b);
          const shape = [batches[b].batchSize, batches[b].seqLen, d];
          if (insertedFeeds) hidden = await this.runInserted(insertedFeeds, hidden, shape);
          const out = (await layerSession!.run({ ...inputs[b].feeds, ...feeds, hidden: new ort.Tensor('float32', hidden, shape) })).hidden_out;
          const data = out.data as Float32Array;
          store.write(b, data);
          await visitor.onHiddenState?.(layer + 1, b, { shape, data });
        }
        store.commit(layer + 1);
        progress(layer);
      }

      if (request.logits) {
        throwIfCancelled(request.signal, 'the forward pass');
        const headGraph = buildHeadGraph(family, config);
        const head = await this.session('head', () => headGraph);
        const feeds: Record<string, ort.Tensor> = {};
        for (const w of headGraph.weights) {
          // The LM head (0.5 GB at Llama-2-7B's vocabulary) is widened into the pool too: the original's and
          // the pruned model's evaluation passes would otherwise each hold a copy until garbage collection.
          const key = `head.${w.input}`;
          let buffer = this.layerBuffers.get(key);
          if (!buffer && weights.readsInto) this.layerBuffers.set(key, (buffer = new Float32Array(elementCount(weights.shape(w.tensor)))));
          const t = weights.readFloat32(w.tensor, buffer);
          feeds[w.input] = new ort.Tensor('float32', t.data, [...t.shape]);
        }
        const insertedFeeds = inserted?.position === L ? await this.insertedFeeds() : null;
        for (let b = 0; b < batches.length; b++) {
          const shape = [batches[b].batchSize, batches[b].seqLen, d];
          let hidden = files ? files.readState(L, b) : store.read(b);
          if (insertedFeeds) hidden = await this.runInserted(insertedFeeds, hidden, shape);
          const out = (await head.run({ ...feeds, hidden: new ort.Tensor('float32', hidden, shape) })).logits;
          await visitor.onLogits?.(b, { shape: out.dims, data: out.data as Float32Array });
        }
        progress(L);
      }
      if (visitor.onComplete) {
        const reader = files;
        await visitor.onComplete(reader ? (state, b, rows) => reader.readState(state, b, rows) : null);
      }
    } finally {
      store.close();
    }
  }

  /** Embeddings of a batch: only the rows of the tokens it holds, plus learned positions (OPT). */
  private embed(batch: TokenBatch): Float32Array {
    const { family, config, weights } = this.model;
    const d = config.hiddenSize;
    const distinct = [...new Set(batch.inputIds)].sort((a, b) => a - b);
    for (const id of distinct) if (!(id >= 0 && id < config.vocabSize)) throw new EngineError('BAD_INPUT', `token id ${id} is outside the model's vocabulary [0, ${config.vocabSize})`);
    const rows = weights.readRows(family.weights.embedTokens, distinct);
    const rowOf = new Map(distinct.map((id, i) => [id, i]));
    const out = new Float32Array(batch.batchSize * batch.seqLen * d);
    for (let i = 0; i < batch.inputIds.length; i++) {
      const r = rowOf.get(batch.inputIds[i])!;
      out.set(rows.data.subarray(r * d, (r + 1) * d), i * d);
    }
    if (family.weights.embedPositions) {
      const T = batch.seqLen;
      const positions = weights.readRows(family.weights.embedPositions, Array.from({ length: T }, (_, t) => t + family.learnedPositionOffset));
      for (let b = 0; b < batch.batchSize; b++) {
        for (let t = 0; t < T; t++) {
          const at = (b * T + t) * d;
          for (let j = 0; j < d; j++) out[at + j] += positions.data[t * d + j];
        }
      }
    }
    return out;
  }

  private batchInputs(batch: TokenBatch): BatchInputs {
    const { family, config } = this.model;
    const { batchSize: B, seqLen: T } = batch;
    const feeds: Record<string, ort.Tensor> = { attention_bias: new ort.Tensor('float32', attentionBias(batch, config.slidingWindow), [B, 1, T, T]) };
    if (family.positions === 'rope') {
      const { cos, sin } = ropeTables(config, T);
      feeds.rope_cos = new ort.Tensor('float32', cos, [T, config.headDim]);
      feeds.rope_sin = new ort.Tensor('float32', sin, [T, config.headDim]);
    }
    return { batch, feeds };
  }

  /** Decoder layer `layer`'s weights as the layer graph's inputs, each widened to float32 as it is read. */
  private readLayerFeeds(graph: LayerGraph, layer: number): Record<string, ort.Tensor> {
    const prefix = layerPrefix(this.model.family, layer);
    const feeds: Record<string, ort.Tensor> = {};
    for (const w of graph.weights) {
      const name = `${prefix}${w.tensor}`;
      if (this.narrow) {
        const raw = this.model.weights.readRaw(name);
        feeds[w.input] = new ort.Tensor('float16', checkedHalf(name, raw.bytes), [...raw.shape]);
      } else {
        // Every layer has the same shapes: one set of float32 buffers serves them all (no allocation per layer).
        let buffer = this.layerBuffers.get(w.input);
        if (!buffer && this.model.weights.readsInto) {
          buffer = new Float32Array(elementCount(this.model.weights.shape(name)));
          this.layerBuffers.set(w.input, buffer);
        }
        const t = this.model.weights.readFloat32(name, buffer);
        feeds[w.input] = new ort.Tensor('float32', t.data, [...t.shape]);
      }
    }
    return feeds;
  }

  private async insertedFeeds(): Promise<{ session: ort.InferenceSession; feeds: Record<string, ort.Tensor> }> {
    const inserted = this.model.inserted!;
    const graph = buildInsertedGraph(inserted.kind, this.model.config);
    const session = await this.session(`inserted-${inserted.kind}`, () => graph);
    const feeds: Record<string, ort.Tensor> = {};
    for (const w of graph.weights) {
      const t = inserted.weights.get(w.tensor)!;
      feeds[w.input] = new ort.Tensor('float32', t.data, [...t.shape]);
    }
    return { session, feeds };
  }

  private async runInserted(inserted: { session: ort.InferenceSession; feeds: Record<string, ort.Tensor> }, hidden: Float32Array, shape: number[]): Promise<Float32Array> {
    const out = await inserted.session.run({ ...inserted.feeds, hidden: new ort.Tensor('float32', hidden, shape) });
    return out.hidden_out.data as Float32Array;
  }

  async dispose(): Promise<void> {
    const sessions = [...this.sessions.values()];
    this.sessions.clear();
    for (const session of sessions) await (await session).release();
    if (!this.options.layerBuffers) this.layerBuffers.clear();
    if (this.options.ownsWeights) this.model.weights.close();
  }
}

/** float16 bits as they are, refused when one is NaN or infinite (exponent all ones). */
function checkedHalf(name: string, bytes: Uint8Array): Uint16Array {
  const half = bytes.byteOffset % 2 === 0 ? new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2) : new Uint16Array(bytes.slice().buffer);
  for (let i = 0; i < half.length; i++) if ((half[i] & 0x7c00) === 0x7c00) throw new EngineError('INVALID_WEIGHTS', `tensor ${name} holds NaN/infinite values`);
  return half;
}

/** [B, T, S, S]: per token, cos(h[i], h[j]) of every pair of the S hidden states (as the whole-model graph computes it). */
export function tokenCosines(states: readonly HostTensor[]): HostTensor {
  const S = states.length;
  const [B, T, d] = states[0].shape;
  const out = new Float32Array(B * T * S * S);
  const norms = new Float64Array(S);
  for (let token = 0; token < B * T; token++) {
    const at = token * d;
    for (let i = 0; i < S; i++) {
      let sum = 0;
      const x = states[i].data;
      for (let j = 0; j < d; j++) sum += x[at + j] * x[at + j];
      norms[i] = Math.max(Math.sqrt(sum), 1e-12);
    }
    const base = token * S * S;
    for (let i = 0; i < S; i++) {
      out[base + i * S + i] = 1;
      for (let j = i + 1; j < S; j++) {
        let dot = 0;
        const x = states[i].data;
        const y = states[j].data;
        for (let k = 0; k < d; k++) dot += x[at + k] * y[at + k];
        out[base + i * S + j] = out[base + j * S + i] = dot / (norms[i] * norms[j]);
      }
    }
  }
  return { shape: [B, T, S, S], data: out };
}
