/**
 * The native trainer: a replacement's forward + backward pass (with gradient accumulation) and the AdamW
 * update run as ONNX graphs (training-graphs.ts) in ONNX Runtime — MLAS on the CPU with the thread count
 * from ../../runtime/threads.ts, or the CUDA provider on GPU pods.
 *
 * Parameters, AdamW moments and the gradient accumulator live in float32 buffers owned here for the whole
 * run; each session writes its outputs into pre-allocated buffers (ping-pong pairs, swapped after each
 * run), so a step allocates nothing and copies nothing besides the batch itself. With the CUDA provider
 * the same buffers are host memory that ORT copies to the device per run (the graphs are the same; keeping
 * the state on the device needs IO binding to device tensors, which onnxruntime-node does not expose for
 * CUDA — untested here, no GPU on this machine).
 */
import * as ort from 'onnxruntime-node';
import { EngineError } from '../../errors.js';
import { transpose2d, type HostTensor } from '../../formats/host-tensor.js';
import { attentionBias, ropeTables } from '../../runtime/attention-inputs.js';
import { defaultProvider } from '../../runtime/onnx/onnx-forward.js';
import type { TokenBatch } from '../../runtime/runtime.js';
import { defaultThreads } from '../../runtime/threads.js';
import type { HostBatch, ReplacementTrainer, TrainerOptions, TrainerState } from '../trainer.js';
import { buildHealingEvaluateGraph, buildHealingStepGraph, frozenWeightNames, type HealingGraphSpec } from './healing-graphs.js';
import { buildAdamWGraph, buildEvaluateGraph, buildStepGraph, type ReplacementGraphSpec } from './training-graphs.js';

/** The frozen part of the model healing backpropagates through: layer indices and a reader of stored tensors. */
export interface FrozenTail {
  /** 0-based indices of the original's layers after the replaced block. */
  readonly layers: readonly number[];
  /** A tensor as stored (float32, matrices [out, in]). */
  read(name: string): HostTensor;
}

/** What the MSE and the healing trainer differ in, besides their graphs. */
interface Objective {
  /** Tensors fed to every step and evaluation (healing: the frozen tail). */
  readonly frozen: Record<string, ort.Tensor>;
  /** Do the graphs take attention_bias and the RoPE tables? */
  readonly attention: boolean;
  readonly lossScale: (batch: HostBatch) => number;
}

/** Replacements larger than this (in parameters) train without ONNX Runtime's memory arena; see setup(). */
const ARENA_MAX_PARAMETERS = 64e6;

function parameterCount(initial: ReadonlyMap<string, HostTensor>): number {
  let n = 0;
  for (const t of initial.values()) n += t.data.length;
  return n;
}

function setup(options: TrainerOptions) {
  const provider = process.env.STREAMLINE_ONNX_PROVIDER ?? defaultProvider();
  if (provider !== 'cpu' && provider !== 'cuda') {
    throw new EngineError('BAD_INPUT', `ONNX execution provider ${JSON.stringify(provider)} is not supported; accepted: cpu, cuda`);
  }
  const threads = options.threads ?? defaultThreads();
  const shapes = new Map([...options.initial].map(([name, t]) => [name, [...t.shape]] as const));
  const sessionOptions: ort.InferenceSession.SessionOptions = {
    executionProviders: [provider],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    logSeverityLevel: 3,
    // Idle pool threads sleep instead of spinning: between runs the main thread has host work (AdamW,
    // the next batch), and spinning threads on a busy machine took the cores it needed (measured here:
    // host AdamW 73 → 40 ms, a stories260K FFN step 10–46 → 4–5 ms on 2 threads).
    extra: { session: { intra_op: { allow_spinning: '0' } } },
    // The arena makes small replacements' steps much faster (d 512 LAYER: 1.38× PyTorch with it, 0.99×
    // without), but its power-of-two growth kept about 0.5 GB more than a 7B-class LAYER step needs
    // (peak 6.29 → 5.79 GiB without it): on for replacements under ARENA_MAX_PARAMETERS only.
    enableCpuMemArena: parameterCount(options.initial) < ARENA_MAX_PARAMETERS,
  };
  return { provider, threads, sessionOptions, shapes };
}

/**
 * A buffer pair: `current` is read by the next run, `next` receives its output; swap() after the run.
 * `next` is allocated on first use: the host AdamW updates parameters and moments in place and never
 * needs it — at a 7B-class LAYER replacement that is 2.4 GB not allocated.
 */
class PingPong {
  current: Float32Array;
  private spare: Float32Array | null = null;
  constructor(size: number, initial?: Float32Array) {
    this.current = initial ? Float32Array.from(initial) : new Float32Array(size);
  }
  get next(): Float32Array {
    return (this.spare ??= new Float32Array(this.current.length));
  }
  swap(): void {
    [this.current, this.spare] = [this.next, this.current];
  }
}

export class OnnxReplacementTrainer implements ReplacementTrainer {
  readonly description: string;
  private readonly names: string[];
  private readonly paramBuffers = new Map<string, PingPong>();
  private readonly firstMoments = new Map<string, PingPong>();
  private readonly secondMoments = new Map<string, PingPong>();
  private readonly accumulated = new Map<string, PingPong>();
  private microBatches = 0;
  private optimizerStep = 0;
  private readonly ropeCache = new Map<number, { cos: ort.Tensor; sin: ort.Tensor }>();

  /** The options less the initial parameters, which are copied into the buffers and not kept. */
  private readonly options: Omit<TrainerOptions, 'initial'>;

  private constructor(
    { initial, ...options }: TrainerOptions,
    private readonly shapes: Map<string, readonly number[]>,
    private readonly stepSession: ort.InferenceSession,
    private readonly evaluateSession: ort.InferenceSession,
    /** null: AdamW runs on the host (one fused pass per tensor; on the CPU this beats ~20 elementwise kernels). */
    private readonly adamSession: ort.InferenceSession | null,
    provider: string,
    threads: number,
    private readonly objective: Objective,
  ) {
    this.options = options;
    this.description = `onnxruntime ${provider}, ${threads} thread${threads === 1 ? '' : 's'}`;
    this.names = [...shapes.keys()];
    for (const [name, t] of initial) {
      const size = t.data.length;
      this.paramBuffers.set(name, new PingPong(size, t.data));
      this.firstMoments.set(name, new PingPong(size));
      this.secondMoments.set(name, new PingPong(size));
      this.accumulated.set(name, new PingPong(size));
    }
  }

  /**
   * `adamw`: where the optimizer step runs — `host` (default on the CPU provider: a fused loop over the
   * buffers, memory-bound either way and ~5× faster than the graph's separate kernels) or `graph` (default
   * on CUDA, where the state would otherwise cross the bus every step).
   */
  static async create(options: TrainerOptions, adamw?: 'host' | 'graph'): Promise<OnnxReplacementTrainer> {
    const { provider, threads, sessionOptions, shapes } = setup(options);
    const spec: ReplacementGraphSpec = { kind: options.kind, model: options.model, shapes };
    const optimizerInGraph = (adamw ?? (provider === 'cpu' ? 'host' : 'graph')) === 'graph';
    const [step, evaluate, adam] = await Promise.all([
      ort.InferenceSession.create(buildStepGraph(spec), sessionOptions),
      ort.InferenceSession.create(buildEvaluateGraph(spec), sessionOptions),
      optimizerInGraph ? ort.InferenceSession.create(buildAdamWGraph(shapes, options.optimizer), sessionOptions) : null,
    ]);
    const d = options.model.config.hiddenSize;
    const objective: Objective = { frozen: {}, attention: options.kind !== 'FFN', lossScale: (batch) => 1 / (batch.tokens * d) };
    return new OnnxReplacementTrainer(options, shapes, step, evaluate, adam, provider, threads, objective);
  }

  /**
   * The healing trainer (healing-graphs.ts): the same parameters, moments and AdamW, with the KL of the
   * pruned model's logits to the original's as the loss; `tail` gives the frozen layers after the block,
   * the final norm and the LM head, fed to every run from buffers made once here.
   */
  static async createHealing(options: TrainerOptions, tail: FrozenTail): Promise<OnnxReplacementTrainer> {
    const { provider, threads, sessionOptions, shapes } = setup(options);
    const frozen: Record<string, ort.Tensor> = {};
    const frozenShapes = new Map<string, number[]>();
    for (const name of frozenWeightNames({ model: options.model, tailLayers: tail.layers })) {
      const stored = tail.read(name);
      const t = stored.shape.length === 2 ? transpose2d(stored) : stored; // [out, in] → [in, out]
      frozen[`frozen.${name}`] = new ort.Tensor('float32', t.data, [...t.shape]);
      frozenShapes.set(name, [...t.shape]);
    }
    const spec: HealingGraphSpec = { kind: options.kind, model: options.model, shapes, tailLayers: tail.layers, frozenShapes };
    const [step, evaluate] = await Promise.all([
      ort.InferenceSession.create(buildHealingStepGraph(spec), sessionOptions),
      ort.InferenceSession.create(buildHealingEvaluateGraph(spec), sessionOptions),
    ]);
    const adam = provider === 'cpu' ? null : await ort.InferenceSession.create(buildAdamWGraph(shapes, options.optimizer), sessionOptions);
    return new OnnxReplacementTrainer(options, shapes, step, evaluate, adam, provider, threads, { frozen, attention: true, lossScale: (batch) => 1 / batch.tokens });
  }

  private tensor(name: string, data: Float32Array): ort.Tensor {
    return new ort.Tensor('float32', data, this.shapes.get(name) as number[]);
  }

  private batchFeeds(batch: HostBatch): Record<string, ort.Tensor> {
    const { config, family } = this.options.model;
    const { batchSize: B, seqLen: T } = batch;
    const d = config.hiddenSize;
    const feeds: Record<string, ort.Tensor> = {
      x: new ort.Tensor('float32', batch.inputs, [B, T, d]),
      target: new ort.Tensor('float32', batch.targets, [B, T, d]),
      mask: new ort.Tensor('float32', Float32Array.from(batch.attentionMask), [B, T, 1]),
    };
    if (this.objective.attention) {
      feeds.attention_bias = new ort.Tensor('float32', attentionBias(batch as unknown as TokenBatch, config.slidingWindow), [B, 1, T, T]);
      if (family.positions === 'rope') {
        let rope = this.ropeCache.get(T);
        if (!rope) {
          const tables = ropeTables(config, T);
          rope = { cos: new ort.Tensor('float32', tables.cos, [T, config.headDim]), sin: new ort.Tensor('float32', tables.sin, [T, config.headDim]) };
          this.ropeCache.set(T, rope);
        }
        feeds.rope_cos = rope.cos;
        feeds.rope_sin = rope.sin;
      }
    }
    for (const name of this.names) feeds[`param.${name}`] = this.tensor(name, this.paramBuffers.get(name)!.current);
    return Object.assign(feeds, this.objective.frozen);
  }

  async accumulate(batch: HostBatch): Promise<number> {
    const feeds = this.batchFeeds(batch);
    feeds.loss_scale = new ort.Tensor('float32', Float32Array.of(this.objective.lossScale(batch)), []);
    const fetches: Record<string, ort.Tensor | null> = { loss: null };
    for (const name of this.names) {
      const buffers = this.accumulated.get(name)!;
      if (this.microBatches === 0) buffers.current.fill(0);
      feeds[`acc.${name}`] = this.tensor(name, buffers.current);
      fetches[`grad.${name}`] = this.tensor(name, buffers.next);
    }
    const results = await this.stepSession.run(feeds, fetches);
    this.accumulated.forEach((buffers) => buffers.swap());
    this.microBatches += 1;
    return (results.loss.data as Float32Array)[0];
  }

  async step(microBatches: number, learningRate: number): Promise<void> {
    if (this.microBatches === 0) throw new Error('AdamW step without an accumulated gradient');
    this.optimizerStep += 1;
    const beta1 = this.options.optimizer.beta1 ?? 0.9;
    const beta2 = this.options.optimizer.beta2 ?? 0.999;
    const correction1 = 1 - beta1 ** this.optimizerStep;
    const correction2 = 1 - beta2 ** this.optimizerStep;
    if (!this.adamSession) {
      this.hostAdamW(microBatches, learningRate, beta1, beta2, correction1, correction2);
      this.microBatches = 0;
      return;
    }
    const scalar = (value: number) => new ort.Tensor('float32', Float32Array.of(value), []);
    const feeds: Record<string, ort.Tensor> = {
      grad_scale: scalar(1 / microBatches),
      lr: scalar(learningRate),
      correction1: scalar(correction1),
      correction2: scalar(correction2),
    };
    const fetches: Record<string, ort.Tensor | null> = { grad_norm: null };
    for (const name of this.names) {
      const [p, m, v] = [this.paramBuffers.get(name)!, this.firstMoments.get(name)!, this.secondMoments.get(name)!];
      feeds[`grad.${name}`] = this.tensor(name, this.accumulated.get(name)!.current);
      feeds[`param.${name}`] = this.tensor(name, p.current);
      feeds[`m.${name}`] = this.tensor(name, m.current);
      feeds[`v.${name}`] = this.tensor(name, v.current);
      fetches[`param_out.${name}`] = this.tensor(name, p.next);
      fetches[`m_out.${name}`] = this.tensor(name, m.next);
      fetches[`v_out.${name}`] = this.tensor(name, v.next);
    }
    await this.adamSession.run(feeds, fetches);
    for (const name of this.names) {
      this.paramBuffers.get(name)!.swap();
      this.firstMoments.get(name)!.swap();
      this.secondMoments.get(name)!.swap();
    }
    this.microBatches = 0;
  }

  /** AdamW as ../../pruning/adamw.ts computes it (clip by the global norm of the averaged gradient), in place. */
  private hostAdamW(microBatches: number, learningRate: number, beta1: number, beta2: number, correction1: number, correction2: number): void {
    const { weightDecay, gradClip } = this.options.optimizer;
    const epsilon = this.options.optimizer.epsilon ?? 1e-8;
    let squares = 0;
    for (const name of this.names) {
      const g = this.accumulated.get(name)!.current;
      for (let i = 0; i < g.length; i++) squares += g[i] * g[i];
    }
    const norm = Math.sqrt(squares) / microBatches;
    const clipScale = gradClip > 0 && norm > gradClip ? gradClip / (norm + 1e-6) : 1;
    const gradScale = clipScale / microBatches;
    const decay = 1 - learningRate * weightDecay;
    const stepSize = learningRate / correction1;
    const rootCorrection2 = Math.sqrt(correction2);
    for (const name of this.names) {
      const g = this.accumulated.get(name)!.current;
      const p = this.paramBuffers.get(name)!.current;
      const m = this.firstMoments.get(name)!.current;
      const v = this.secondMoments.get(name)!.current;
      for (let i = 0; i < g.length; i++) {
        const grad = g[i] * gradScale;
        const mi = beta1 * m[i] + (1 - beta1) * grad;
        const vi = beta2 * v[i] + (1 - beta2) * grad * grad;
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] * decay - (stepSize * mi) / (Math.sqrt(vi) / rootCorrection2 + epsilon);
      }
    }
  }

  /** The accumulated gradient sum so far (tests compare it with TensorFlow.js autodiff). */
  accumulatedGradients(): Map<string, Float32Array> {
    return new Map(this.names.map((name) => [name, Float32Array.from(this.accumulated.get(name)!.current)]));
  }

  async evaluate(batch: HostBatch): Promise<{ squaredError: number; cosineSum: number }> {
    const results = await this.evaluateSession.run(this.batchFeeds(batch));
    return { squaredError: (results.squared_error.data as Float32Array)[0], cosineSum: (results.cosine_sum.data as Float32Array)[0] };
  }

  /** Healing trainers: Σ over the batch's real tokens of KL(original ‖ pruned). */
  async klSum(batch: HostBatch): Promise<number> {
    const feeds = this.batchFeeds(batch);
    feeds.loss_scale = new ort.Tensor('float32', Float32Array.of(1), []);
    const results = await this.evaluateSession.run(feeds);
    return (results.kl_sum.data as Float32Array)[0];
  }

  private copyOut(buffers: Map<string, PingPong>): Map<string, HostTensor> {
    return new Map(this.names.map((name) => [name, { shape: [...this.shapes.get(name)!], data: Float32Array.from(buffers.get(name)!.current) }]));
  }

  async params(): Promise<Map<string, HostTensor>> {
    return this.copyOut(this.paramBuffers);
  }

  /** Views of the live buffers, not copies: at 7B a LAYER's parameters and moments are 2.4 GB. */
  async state(): Promise<TrainerState> {
    const views = (buffers: Map<string, PingPong>) => new Map(this.names.map((name) => [name, { shape: [...this.shapes.get(name)!], data: buffers.get(name)!.current }]));
    return { params: views(this.paramBuffers), firstMoments: views(this.firstMoments), secondMoments: views(this.secondMoments), step: this.optimizerStep };
  }

  async restore(state: TrainerState): Promise<void> {
    for (const name of this.names) {
      this.paramBuffers.get(name)!.current.set(state.params.get(name)!.data);
      this.firstMoments.get(name)!.current.set(state.firstMoments.get(name)!.data);
      this.secondMoments.get(name)!.current.set(state.secondMoments.get(name)!.data);
    }
    this.optimizerStep = state.step;
    this.microBatches = 0;
  }

  async dispose(): Promise<void> {
    await Promise.all([this.stepSession.release(), this.evaluateSession.release(), this.adamSession?.release()]);
  }
}
