/**
 * The ONNX trainer against its oracles: gradients of every trained kind on every family equal TensorFlow.js
 * autodiff (float32, norm-wise relative error ≤ 1e-4) and finite differences of the same graphs in float64;
 * the AdamW graph equals ../src/pruning/adamw.ts; a run resumed on the other trainer ends where an
 * uninterrupted one does.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { transpose2d, type HostTensor } from '../src/formats/host-tensor.js';
import { loadModel, type LoadedModel } from '../src/models/model.js';
import { fitLinearReplacement } from '../src/pruning/linear-fit.js';
import { solveCholesky } from '../src/training/cholesky.js';
import { blockedCholeskySolve, Float64Gemm } from '../src/training/onnx/blocked-cholesky.js';
import { prune, type PruneEvent } from '../src/pruning/prune.js';
import { initialParameters, type TrainedKind } from '../src/pruning/replacement.js';
import { trainReplacement, type TrainingSettings } from '../src/pruning/train.js';
import { cgroupCpuQuota, defaultThreads } from '../src/runtime/threads.js';
import { attentionBias, ropeTables } from '../src/runtime/attention-inputs.js';
import type { TokenBatch } from '../src/runtime/runtime.js';
import { OnnxReplacementTrainer } from '../src/training/onnx/onnx-trainer.js';
import { buildStepGraph } from '../src/training/onnx/training-graphs.js';
import { DiffGraph } from '../src/training/onnx/diff-graph.js';
import { attentionInputs, decoderLayer, lmHead } from '../src/training/onnx/decoder-ops.js';
import { layerWeightName, type LayerPart } from '../src/models/architecture.js';
import { TfjsReplacementTrainer } from '../src/training/tfjs-trainer.js';
import { createTrainer, requestedTrainer, type HostBatch, type TrainerName } from '../src/training/trainer.js';
import { tinyLlamaPairs } from './fixtures/tiny-pairs.js';
import { seededRandom, TINY_CONFIGS, writeTinyModel } from './fixtures/tiny-models.js';

const FAMILIES = Object.keys(TINY_CONFIGS);
const OPTIMIZER = { weightDecay: 0.01, gradClip: 1 };

function kindsOf(model: LoadedModel): TrainedKind[] {
  return model.family.mlp === 'gated' ? ['FFN', 'SWIGLU', 'LAYER'] : ['FFN', 'LAYER'];
}

/** Initial parameters as trained ([in, out]); FFN's zero fc2 is made random so every gradient is non-zero. */
function trainedInitial(kind: TrainedKind, model: LoadedModel): Map<string, HostTensor> {
  const random = seededRandom(11);
  const initial = initialParameters(kind, model, 1, 5);
  if (kind === 'FFN') for (const name of ['fc2.weight', 'fc2.bias', 'fc1.bias']) initial.get(name)!.data.forEach((_, i, a) => (a[i] = 0.1 * random()));
  return new Map([...initial].map(([name, t]) => [name, t.shape.length === 2 ? transpose2d(t) : t]));
}

/** Two sequences of 7 positions, the second padded after 5. */
function randomBatch(d: number, seed: number): HostBatch {
  const random = seededRandom(seed);
  const B = 2;
  const T = 7;
  const attentionMask = new Uint8Array(B * T).fill(1);
  attentionMask.fill(0, T + 5, 2 * T);
  return {
    inputs: Float32Array.from({ length: B * T * d }, () => random()),
    targets: Float32Array.from({ length: B * T * d }, () => random()),
    attentionMask,
    batchSize: B,
    seqLen: T,
    tokens: 12,
  };
}

function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let difference = 0;
  let norm = 0;
  for (let i = 0; i < b.length; i++) {
    difference += (a[i] - b[i]) ** 2;
    norm += b[i] ** 2;
  }
  return Math.sqrt(difference) / Math.sqrt(norm);
}

describe.each(FAMILIES)('%s: ONNX training graphs', (family) => {
  const model = loadModel(writeTinyModel(family));

  it.each(kindsOf(model))('%s gradients equal TensorFlow.js autodiff (float32)', async (kind) => {
    const initial = trainedInitial(kind, model);
    const options = { kind, model, initial, optimizer: OPTIMIZER, threads: 1 };
    const onnx = await OnnxReplacementTrainer.create(options);
    const tfjs = await TfjsReplacementTrainer.create(options);
    const batch = randomBatch(model.config.hiddenSize, 3);
    const onnxLoss = await onnx.accumulate(batch);
    const { loss, grads } = tfjs.gradients(batch);
    expect(Math.abs(onnxLoss - loss) / loss).toBeLessThan(1e-5);
    const onnxGrads = onnx.accumulatedGradients();
    const norm = (data: ArrayLike<number>) => Math.sqrt(Array.from(data).reduce((sum, v) => sum + v * v, 0));
    const total = Math.sqrt([...grads.values()].reduce((sum, g) => sum + norm(g.dataSync()) ** 2, 0));
    for (const [name, g] of grads) {
      const expected = g.dataSync();
      if (norm(expected) < 1e-7 * total) {
        // Exactly zero in exact arithmetic — OPT's key bias: softmax ignores the q·b added to every score of a row.
        expect(norm(onnxGrads.get(name)!), `${family} ${kind} ${name}`).toBeLessThan(1e-6 * total);
      } else {
        expect(relativeError(onnxGrads.get(name)!, expected), `${family} ${kind} ${name}`).toBeLessThanOrEqual(1e-4);
      }
      g.dispose();
    }
    await onnx.dispose();
    await tfjs.dispose();
  });

  it.each(kindsOf(model))('%s gradients equal finite differences (float64)', async (kind) => {
    const initial = trainedInitial(kind, model);
    const shapes = new Map([...initial].map(([name, t]) => [name, [...t.shape]] as const));
    const session = await ort.InferenceSession.create(buildStepGraph({ kind, model, shapes, elem: 'double' }), { intraOpNumThreads: 1 });
    const { config } = model;
    const d = config.hiddenSize;
    const batch = randomBatch(d, 4);
    const { batchSize: B, seqLen: T } = batch;
    const f64 = (data: ArrayLike<number>, dims: readonly number[]) => new ort.Tensor('float64', Float64Array.from(data), dims as number[]);
    const base: Record<string, ort.Tensor> = {
      x: f64(batch.inputs, [B, T, d]),
      target: f64(batch.targets, [B, T, d]),
      mask: f64(batch.attentionMask, [B, T, 1]),
      loss_scale: f64([1 / (batch.tokens * d)], []),
    };
    if (kind !== 'FFN') {
      base.attention_bias = f64(attentionBias(batch as unknown as TokenBatch, config.slidingWindow), [B, 1, T, T]);
      if (model.family.positions === 'rope') {
        const rope = ropeTables(config, T);
        base.rope_cos = f64(rope.cos, [T, config.headDim]);
        base.rope_sin = f64(rope.sin, [T, config.headDim]);
      }
    }
    const run = async (params: Map<string, Float64Array>) => {
      const feeds = { ...base };
      for (const [name, data] of params) {
        feeds[`param.${name}`] = new ort.Tensor('float64', data, [...shapes.get(name)!]);
        feeds[`acc.${name}`] = new ort.Tensor('float64', new Float64Array(data.length), [...shapes.get(name)!]);
      }
      return session.run(feeds);
    };
    const params = new Map([...initial].map(([name, t]) => [name, Float64Array.from(t.data)]));
    const analytic = await run(params);
    // Per parameter tensor: the directional derivative along a random direction u, by central differences,
    // against ⟨g, u⟩; the error is measured against ‖g‖‖u‖ (the largest ⟨g, u⟩ can be), with ‖g‖ at least
    // 1e-3 of the whole gradient's norm, so a tensor whose gradient is exactly zero (OPT's key bias:
    // softmax ignores the q·b added to every score of a row) is held to the loss's rounding, not to 0/0.
    const gradientNorm = (name: string) => Math.sqrt((analytic[`grad.${name}`].data as Float64Array).reduce((sum, g) => sum + g * g, 0));
    const totalNorm = Math.sqrt([...params.keys()].reduce((sum, name) => sum + gradientNorm(name) ** 2, 0));
    const random = seededRandom(21);
    const epsilon = 1e-6;
    for (const [name, data] of params) {
      const direction = Float64Array.from(data, () => random());
      const shifted = (sign: number) => new Map([...params].map(([n, p]) => [n, n === name ? p.map((v, i) => v + sign * epsilon * direction[i]) : p]));
      const plus = ((await run(shifted(1))).loss.data as Float64Array)[0];
      const minus = ((await run(shifted(-1))).loss.data as Float64Array)[0];
      const numeric = (plus - minus) / (2 * epsilon);
      const gradient = analytic[`grad.${name}`].data as Float64Array;
      const exact = gradient.reduce((sum, g, i) => sum + g * direction[i], 0);
      const scale = Math.max(gradientNorm(name), 1e-3 * totalNorm) * Math.sqrt(direction.reduce((sum, u) => sum + u * u, 0));
      expect(Math.abs(numeric - exact) / scale, `${family} ${kind} ${name}`).toBeLessThan(1e-7);
    }
    await session.release();
  });
});

describe('the two trainers together', () => {
  const work = mkdtempSync(join(tmpdir(), 'streamline-onnx-training-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));
  let counter = 0;
  const fresh = (name: string) => join(work, `${name}-${counter++}`);
  const settings: TrainingSettings = { minSteps: 10, batchSize: 2, gradAccum: 2, learningRate: 1e-2, minLearningRate: 1e-3, weightDecay: 1e-3, gradClip: 1, seed: 3, checkpointEvery: 2 };

  // A block of two layers, so the replacement (initialised from the first) starts with a real error to
  // reduce: with one layer it starts exact, and Adam turns rounding noise into lr-sized steps.
  const setup = () => tinyLlamaPairs(fresh('pairs'), 2);

  it.each([
    ['tfjs', 'onnx'],
    ['onnx', 'tfjs'],
  ] as [TrainerName, TrainerName][])('a LAYER run started on %s and resumed on %s ends within 1%% of the loss of an uninterrupted run', async (first, second) => {
    const { model, pairs } = await setup();
    const job = (trainer: TrainerName, dir: string, signal?: AbortSignal, onStep?: (step: number) => void) =>
      trainReplacement({ kind: 'LAYER', model, initial: () => initialParameters('LAYER', model, 1, 3), pairs, dir, key: 'same', settings, signal, trainer, onProgress: (p) => onStep?.(p.step) });
    const uninterrupted = await job(second, fresh('train'));
    const dir = fresh('train');
    const controller = new AbortController();
    await expect(job(first, dir, controller.signal, (step) => step === 5 && controller.abort())).rejects.toThrow(/training was cancelled/);
    const resumed = await job(second, dir);
    expect(resumed.resumedFromStep).toBe(5);
    expect(resumed.steps).toBe(uninterrupted.steps);
    const last = (r: typeof resumed) => r.epochs.at(-1)!;
    expect(Math.abs(last(resumed).trainLoss - last(uninterrupted).trainLoss) / last(uninterrupted).trainLoss).toBeLessThan(0.01);
    expect(Math.abs(last(resumed).validationLoss! - last(uninterrupted).validationLoss!) / last(uninterrupted).validationLoss!).toBeLessThan(0.01);
    pairs.close();
  });

  it('LINEAR: the closed-form fit is the same with its products in ONNX Runtime and in TensorFlow.js', async () => {
    const { pairs } = await setup();
    const described: string[] = [];
    const onnx = await fitLinearReplacement(pairs, 1e-4, undefined, { trainer: 'onnx', onStart: (d) => described.push(d) });
    const tfjs = await fitLinearReplacement(pairs, 1e-4, undefined, { trainer: 'tfjs', onStart: (d) => described.push(d) });
    expect(described[0]).toMatch(/^onnxruntime cpu, \d+ threads?$/);
    expect(described[1]).toMatch(/^tensorflow\.js /);
    for (const [name, t] of tfjs.weights) expect(relativeError(onnx.weights.get(name)!.data, t.data), name).toBeLessThan(1e-4);
    expect(onnx.trainLoss).toBeCloseTo(tfjs.trainLoss, 6);
    expect(onnx.validationCosine!).toBeCloseTo(tfjs.validationCosine!, 5);
    // the training loss is the fitted map's error, measured (taken from the normal equations instead, it
    // was 0.1–1 % off: float32 products of hidden states with large means cancel)
    const w = onnx.weights.get('linear.weight')!.data; // [out, in]
    const b = onnx.weights.get('linear.bias')!.data;
    const d = pairs.hiddenSize;
    let squaredError = 0;
    let elements = 0;
    for (const index of pairs.indices('train')) {
      const { inputs, targets, length } = pairs.read(index);
      for (let t = 0; t < length; t++) {
        for (let o = 0; o < d; o++) {
          let y = b[o];
          for (let i = 0; i < d; i++) y += w[o * d + i] * inputs[t * d + i];
          squaredError += (y - targets[t * d + o]) ** 2;
        }
      }
      elements += length * d;
    }
    expect(Math.abs(onnx.trainLoss - squaredError / elements) / (squaredError / elements)).toBeLessThan(1e-4);
    pairs.close();
  });

  it('solves the normal equations by blocked Cholesky with ONNX GEMMs as the host Cholesky does', async () => {
    const random = seededRandom(31);
    const n = 70; // 4 blocks of 16, the last one short
    const m = 9;
    const factor = Float64Array.from({ length: n * n }, () => random());
    const matrix = new Float64Array(n * n); // FᵀF + n·I: symmetric positive definite
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
      let sum = i === j ? n : 0;
      for (let k = 0; k < n; k++) sum += factor[k * n + i] * factor[k * n + j];
      matrix[i * n + j] = sum;
    }
    const rhs = Float64Array.from({ length: n * m }, () => random());
    const gemm = new Float64Gemm({ intraOpNumThreads: 1 });
    const blocked = await blockedCholeskySolve(matrix, rhs, n, m, gemm, 16);
    await gemm.dispose();
    expect(relativeError(blocked, solveCholesky(matrix, rhs, n, m))).toBeLessThan(1e-12);
  });

  it('AdamW steps agree: the ONNX trainer (host loop and graph) and adamw.ts from the same gradients', async () => {
    // Llama (no key bias: its near-zero gradient would make Adam's normalised steps compare noise with noise).
    const model = loadModel(writeTinyModel('llama'));
    const initial = trainedInitial('LAYER', model);
    const options = { kind: 'LAYER' as const, model, initial, optimizer: { weightDecay: 0.1, gradClip: 0.05 }, threads: 1 };
    const trainers = [await createTrainer({ ...options, trainer: 'onnx' }), await OnnxReplacementTrainer.create(options, 'graph'), await createTrainer({ ...options, trainer: 'tfjs' })];
    expect(trainers[0].description).toBe('onnxruntime cpu, 1 thread');
    expect(trainers[2].description).toMatch(/^tensorflow\.js /);
    for (const trainer of trainers) {
      for (const step of [1, 2, 3]) {
        await trainer.accumulate(randomBatch(model.config.hiddenSize, 10 + step));
        await trainer.accumulate(randomBatch(model.config.hiddenSize, 20 + step));
        await trainer.step(2, 1e-2 * step); // the clip (0.05) is active: these gradients are larger
      }
    }
    const [host, graph, tfjs] = await Promise.all(trainers.map((t) => t.state()));
    for (const onnx of [host, graph]) expect(onnx.step).toBe(3);
    for (const onnx of [host, graph]) for (const [name, p] of tfjs.params) {
      expect(relativeError(onnx.params.get(name)!.data, p.data), name).toBeLessThan(1e-5);
      expect(relativeError(onnx.firstMoments.get(name)!.data, tfjs.firstMoments.get(name)!.data), name).toBeLessThan(1e-4);
      expect(relativeError(onnx.secondMoments.get(name)!.data, tfjs.secondMoments.get(name)!.data), name).toBeLessThan(1e-4);
    }
    await Promise.all(trainers.map((t) => t.dispose()));
  });

  it.each(['LAYER', 'LINEAR'] as const)('a %s prune names its trainer and threads in its first TRAINING event', async (replacement) => {
    const data = fresh('data') + '.jsonl';
    const random = seededRandom(99);
    writeFileSync(data, Array.from({ length: 6 }, () => JSON.stringify({ input_ids: Array.from({ length: 10 }, () => Math.floor((random() + 1) * 32)) })).join('\n') + '\n');
    const events: PruneEvent[] = [];
    await prune({
      modelPath: writeTinyModel('llama'),
      dataPath: data,
      workDir: fresh('work'),
      outDir: fresh('out'),
      layers: 1,
      replacement,
      samples: 6,
      seqLen: 10,
      batchSize: 2,
      training: { minSteps: 2, checkpointEvery: 2 },
      onProgress: (event) => events.push(event),
    });
    const training = events.filter((e) => e.stage === 'TRAINING');
    expect(training.find((e) => e.message.startsWith('training: '))!.message).toMatch(/^training: onnxruntime cpu, \d+ threads?$/);
    if (replacement === 'LAYER') expect(training[0].message).toMatch(/^training: onnxruntime cpu/);
  });

  it('takes its thread count from STREAMLINE_THREADS, else the cgroup CPU quota, else the cores', () => {
    const cpuMax = join(work, 'cpu.max');
    writeFileSync(cpuMax, '150000 100000\n');
    expect(cgroupCpuQuota(cpuMax)).toBe(1.5);
    expect(defaultThreads({}, cpuMax)).toBe(Math.min(2, defaultThreads({}, join(work, 'absent'))));
    writeFileSync(cpuMax, 'max 100000\n');
    expect(cgroupCpuQuota(cpuMax)).toBeNull();
    expect(defaultThreads({ STREAMLINE_THREADS: '3' }, cpuMax)).toBe(3);
    expect(() => defaultThreads({ STREAMLINE_THREADS: '1.5' }, cpuMax)).toThrow(/STREAMLINE_THREADS=1.5 is not a thread count/);
    expect(requestedTrainer('tfjs')).toBe('tfjs');
    expect(requestedTrainer(undefined)).toBeUndefined();
    expect(() => requestedTrainer('torch')).toThrow(/STREAMLINE_TRAINER=torch is not a trainer; accepted: onnx, tfjs/);
  });
});

it('GELU (erf) gradient equals TensorFlow.js autodiff (float32; ORT has no float64 Erf)', async () => {
  const tf = await import('@tensorflow/tfjs-core');
  await (await import('../src/runtime/tfjs/training.js')).tfjsForTraining();
  const N = 64;
  const dg = new DiffGraph('float');
  const x = dg.input('x', [N, 1], { grad: true });
  const target = dg.input('target', [N, 1]);
  const mask = dg.input('mask', [N, 1]);
  const scale = dg.input('scale', []);
  const loss = dg.maskedSquaredError(dg.gelu(x), target, mask, scale);
  dg.g.output(dg.gradients(loss, [x]).get(x)!, 'grad', [N, 1]);
  const session = await ort.InferenceSession.create(dg.g.encode('gelu-check', 17));
  const random = seededRandom(51);
  const xs = Float32Array.from({ length: N }, () => 3 * random());
  const ts = Float32Array.from({ length: N }, () => random());
  const out = await session.run({
    x: new ort.Tensor('float32', xs, [N, 1]),
    target: new ort.Tensor('float32', ts, [N, 1]),
    mask: new ort.Tensor('float32', new Float32Array(N).fill(1), [N, 1]),
    scale: new ort.Tensor('float32', Float32Array.of(1 / N), []),
  });
  const expected = tf.grad((v: import('@tensorflow/tfjs-core').Tensor) => tf.div(tf.sum(tf.square(tf.sub(tf.mul(tf.mul(v, 0.5), tf.add(1, tf.erf(tf.mul(v, Math.SQRT1_2)))), tf.tensor2d(ts, [N, 1])))), N))(tf.tensor2d(xs, [N, 1]));
  expect(relativeError(out.grad.data as Float32Array, expected.dataSync())).toBeLessThan(1e-4);
  await session.release();
});

describe('the backward library beyond replacements (healing: frozen layers, head, cross-entropy, KL)', () => {
  it.each(['crossEntropy', 'kl'] as const)('%s: d loss / d hidden state through a frozen layer, the final norm and the LM head equals finite differences (float64)', async (objective) => {
    const model = loadModel(writeTinyModel('qwen2'));
    const { config, family } = model;
    const d = config.hiddenSize;
    const V = config.vocabSize;
    const B = 2;
    const T = 5;
    const dg = new DiffGraph('double');
    const hidden = dg.input('hidden', [B, T, d], { grad: true });
    const feeds: Record<string, ort.Tensor> = {};
    const f64 = (data: ArrayLike<number>, dims: number[]) => new ort.Tensor('float64', Float64Array.from(data), dims);
    // Frozen weights: plain (non-trainable) inputs, matrices as [in, out].
    const weight = (name: string) => {
      if (!feeds[name]) {
        const t = model.weights.get(name)!;
        const value = t.shape.length === 2 ? transpose2d(t) : t;
        dg.input(name, [...value.shape]);
        feeds[name] = f64(value.data, [...value.shape]);
      }
      return name;
    };
    const ctx = { config, family, ...attentionInputs(dg, config, family) };
    const layer = (part: LayerPart, kind: 'weight' | 'bias' = 'weight') => weight(layerWeightName(family, 1, part, kind));
    const y = decoderLayer(dg, hidden, layer, ctx);
    const headName = config.tieWordEmbeddings ? family.weights.embedTokens : family.weights.lmHead;
    const logits = dg.reshape(lmHead(dg, y, ctx, weight(`${family.weights.finalNorm}.weight`), null, weight(headName)), [-1, V]);
    const rowWeight = dg.input('row_weight', [B * T]);
    const scale = dg.input('scale', []);
    let loss: string;
    if (objective === 'kl') {
      const teacher = dg.input('teacher', [B * T, V]);
      loss = dg.klDivergence(logits, teacher, rowWeight, scale);
    } else {
      const labels = dg.g.input('labels', 'int64', [B * T]);
      loss = dg.crossEntropy(logits, labels, rowWeight, scale, V);
    }
    const grad = dg.gradients(loss, [hidden]).get(hidden)!;
    dg.g.output(loss, 'loss', [], 'double');
    dg.g.output(grad, 'grad', [B, T, d], 'double');
    const session = await ort.InferenceSession.create(dg.g.encode('healing-check', 17), { intraOpNumThreads: 1 });

    const random = seededRandom(41);
    const mask = new Uint8Array(B * T).fill(1);
    mask[B * T - 1] = 0; // one padding position, weighted 0
    Object.assign(feeds, {
      attention_bias: f64(attentionBias({ batchSize: B, seqLen: T, attentionMask: mask } as unknown as TokenBatch, config.slidingWindow), [B, 1, T, T]),
      rope_cos: f64(ropeTables(config, T).cos, [T, config.headDim]),
      rope_sin: f64(ropeTables(config, T).sin, [T, config.headDim]),
      row_weight: f64(mask, [B * T]),
      scale: f64([1 / (B * T - 1)], []),
    });
    if (objective === 'kl') {
      const teacher = new Float64Array(B * T * V);
      for (let r = 0; r < B * T; r++) {
        const row = Array.from({ length: V }, () => 2 * random());
        const max = Math.max(...row);
        const logSum = Math.log(row.reduce((sum, v) => sum + Math.exp(v - max), 0)) + max;
        row.forEach((v, i) => (teacher[r * V + i] = v - logSum));
      }
      feeds.teacher = new ort.Tensor('float64', teacher, [B * T, V]);
    } else {
      feeds.labels = new ort.Tensor('int64', BigInt64Array.from({ length: B * T }, () => BigInt(Math.floor((random() + 1) * (V / 2)))), [B * T]);
    }
    const base = Float64Array.from({ length: B * T * d }, () => random());
    const run = async (h: Float64Array) => session.run({ ...feeds, hidden: new ort.Tensor('float64', h, [B, T, d]) });
    const analytic = (await run(base)).grad.data as Float64Array;
    const direction = Float64Array.from(base, () => random());
    const epsilon = 1e-6;
    const at = async (sign: number) => ((await run(base.map((v, i) => v + sign * epsilon * direction[i]))).loss.data as Float64Array)[0];
    const numeric = ((await at(1)) - (await at(-1))) / (2 * epsilon);
    const exact = analytic.reduce((sum, g, i) => sum + g * direction[i], 0);
    const scaleOf = Math.sqrt(analytic.reduce((s2, g) => s2 + g * g, 0) * direction.reduce((s2, u) => s2 + u * u, 0));
    expect(Math.abs(numeric - exact) / scaleOf).toBeLessThan(1e-7);
    await session.release();
  });
});
