/**
 * Evaluation: perplexity, multiple-choice scoring in perplexity mode, agreement and stability between an
 * original and a pruned model, the report and the eval command.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEvalCommand } from '../src/evaluation/eval-command.js';
import { evaluateModels, recomputeStability, type EvaluationReport } from '../src/evaluation/evaluate.js';
import { checkMultipleChoiceTask, choiceSequence, scoreMultipleChoice } from '../src/evaluation/multiple-choice.js';
import { computePerplexity, loadTextWindows } from '../src/evaluation/perplexity.js';
import { nextTokenNll } from '../src/evaluation/sequence-nll.js';
import { computeAgreement, computeStability, populationStandardDeviation, stabilityEffectiveItems, stabilityWeights } from '../src/evaluation/stability.js';
import type { HostTensor } from '../src/formats/host-tensor.js';
import { loadModel, type LoadedModel } from '../src/models/model.js';
import { createRuntime } from '../src/runtime/create-runtime.js';
import { makeBatch, type ForwardRuntime } from '../src/runtime/runtime.js';
import { loadTokenizer, type Tokenizer } from '../src/tokenizers/tokenizer.js';
import { charTokenizer } from './fixtures/char-tokenizer.js';
import { STORIES_BIN, STORIES_TOKENIZER, runWithShared, sharedPath } from '@streamline/testing/shared-data';
import { seededRandom, writeTinyModel } from './fixtures/tiny-models.js';

const work = mkdtempSync(join(tmpdir(), 'streamline-eval-'));
const dirs: string[] = [work];
afterAll(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

const TINYSTORIES = sharedPath('data/text/tinystories_val_excerpt.txt');
const WIKITEXT = sharedPath('data/text/wikitext2_test.txt');
const COPA = sharedPath('data/mc/copa.jsonl');
const HELLASWAG_FOUNDRY = sharedPath('data/mc/hellaswag_small_llmfoundry_tests.jsonl');
const HELLASWAG_ORIGINAL = sharedPath('data/mc/hellaswag_val_first1000.jsonl');

function writeFile(name: string, text: string): string {
  const path = join(work, name);
  writeFileSync(path, text);
  return path;
}


/** -log softmax(row)[target], written the direct way (fine for small logits). */
function directNll(row: readonly number[], target: number): number {
  const denominator = row.reduce((sum, logit) => sum + Math.exp(logit), 0);
  return -Math.log(Math.exp(row[target]) / denominator);
}

/** Mean NLL of every window, one window per forward pass, from the raw logits. */
async function naiveMeanNll(runtime: ForwardRuntime, windows: number[][]): Promise<number> {
  let total = 0;
  let tokens = 0;
  for (const window of windows) {
    const { logits } = await runtime.forward(makeBatch([window]), { logits: true });
    const vocab = logits!.shape[2];
    for (let t = 1; t < window.length; t++) {
      total += directNll(Array.from(logits!.data.subarray((t - 1) * vocab, t * vocab)), window[t]);
      tokens++;
    }
  }
  return total / tokens;
}

describe('next-token NLL', () => {
  it('matches a direct softmax on a hand case', () => {
    const row = [1, 2, 3, -1];
    for (let target = 0; target < row.length; target++) {
      expect(nextTokenNll(new Float32Array(row), 0, 4, target)).toBeCloseTo(directNll(row, target), 12);
    }
    // -log(e / (e + e² + e³ + e⁻¹)) written out
    const e = Math.E;
    expect(nextTokenNll(new Float32Array(row), 0, 4, 0)).toBeCloseTo(-Math.log(e / (e + e ** 2 + e ** 3 + 1 / e)), 12);
  });

  it('reads the row at its offset and stays finite for large logits', () => {
    const logits = new Float32Array([9, 9, 9, 1000, 0, 1000]);
    expect(nextTokenNll(logits, 3, 3, 0)).toBeCloseTo(Math.LN2, 12); // two equal maxima: p = 1/2
    expect(nextTokenNll(logits, 3, 3, 1)).toBeCloseTo(1000 + Math.LN2, 9);
  });
});

describe('perplexity on a tiny model', () => {
  const dir = writeTinyModel('llama');
  dirs.push(dir);

  it('is exp of the mean NLL over predicted positions, padding excluded, whatever the batch size', async () => {
    const runtime = await createRuntime(loadModel(dir), { runtime: 'onnx' });
    try {
      const random = seededRandom(5);
      const windows = [20, 7, 13, 2].map((length) => Array.from({ length }, () => Math.floor((random() + 1) * 32)));
      const expected = await naiveMeanNll(runtime, windows);
      for (const batchSize of [1, 3]) {
        const result = await computePerplexity(runtime, windows, { batchSize });
        expect(result.tokens).toBe(19 + 6 + 12 + 1);
        expect(result.meanNll).toBeCloseTo(expected, 5);
        expect(result.perplexity).toBeCloseTo(Math.exp(expected), 4);
      }
    } finally {
      await runtime.dispose();
    }
  });

  it('stops with CANCELLED when the signal has fired', async () => {
    const runtime = await createRuntime(loadModel(dir), { runtime: 'onnx' });
    try {
      const controller = new AbortController();
      controller.abort();
      await expect(computePerplexity(runtime, [[1, 2, 3]], { signal: controller.signal })).rejects.toMatchObject({ code: 'CANCELLED' });
    } finally {
      await runtime.dispose();
    }
  });
});

describe('choice continuations', () => {
  it('start after the longest common prefix with the context', () => {
    expect(choiceSequence([1, 5, 6], [1, 5, 7, 8], 512, 'x')).toEqual({ ids: [1, 5, 7, 8], firstScored: 2 });
  });

  it('keep at least one token when the context covers the whole sequence', () => {
    expect(choiceSequence([1, 5, 6], [1, 5, 6], 512, 'x')).toEqual({ ids: [1, 5, 6], firstScored: 2 });
  });

  it('lose tokens from the left beyond the model context', () => {
    expect(choiceSequence([1, 5], [1, 5, 7, 8], 3, 'x')).toEqual({ ids: [5, 7, 8], firstScored: 1 });
    expect(choiceSequence([1], [1, 5, 7, 8, 9], 3, 'x')).toEqual({ ids: [7, 8, 9], firstScored: 1 });
  });
});

describe('task files are refused with the file and line named', () => {
  const cases: [string, string, RegExp][] = [
    ['empty.jsonl', '', /empty\.jsonl has no items/],
    ['blank.jsonl', '\n  \n', /blank\.jsonl has no items/],
    ['malformed.jsonl', '{"query": "a", "choices": ["b", "c"], "gold": 0}\n{"query": "a", \n', /malformed\.jsonl:2 is not valid JSON/],
    ['gold.jsonl', '{"query": "a", "choices": ["b", "c"], "gold": 2}\n', /gold\.jsonl:1: "gold" is 2; expected an integer index into the 2 choices, 0 to 1/],
    ['label.jsonl', '\n{"ctx": "a", "endings": ["b", "c", "d"], "label": -1}\n', /label\.jsonl:2: "label" is -1/],
    ['unknown.jsonl', '{"question": "a", "answers": ["b"]}\n', /unknown\.jsonl:1: an item needs \{"query", "choices", "gold"\} or \{"ctx", "endings", "label"\}/],
    ['choices.jsonl', '{"query": "a", "choices": "b", "gold": 0}\n', /choices\.jsonl:1: "choices" must be an array of at least two strings/],
  ];
  it.each(cases)('%s', async (name, content, message) => {
    const path = writeFile(name, content);
    const error = await checkMultipleChoiceTask(path).catch((e) => e);
    expect(error).toMatchObject({ code: 'BAD_INPUT' });
    expect(error.message).toMatch(message);
  });

  it('refuses a missing file and a bad limit', async () => {
    await expect(checkMultipleChoiceTask(join(work, 'absent.jsonl'))).rejects.toMatchObject({ code: 'NOT_FOUND' });
    const path = writeFile('fine.jsonl', '{"query": "a", "choices": ["b", "c"], "gold": 0}\n');
    await expect(checkMultipleChoiceTask(path, 0)).rejects.toMatchObject({ code: 'BAD_INPUT' });
    expect(await checkMultipleChoiceTask(path)).toBe(1);
  });

  it('accepts HellaSwag labels stored as digit strings', async () => {
    const path = writeFile('string-label.jsonl', '{"ctx": "a", "endings": ["b", "c"], "label": "1"}\n');
    expect(await checkMultipleChoiceTask(path)).toBe(1);
  });
});

describe('stability', () => {
  it('uses the population standard deviation (ddof 0)', () => {
    expect(populationStandardDeviation([1, 3])).toBe(1);
    expect(populationStandardDeviation([2, 4, 4, 4, 5, 5, 7, 9])).toBe(2);
  });

  it('weights the items that match, not the first `matches` weights as the reference script does', () => {
    // σ = 1, 0, 2. Only the third item matches (pruned and original both right).
    const items = [
      { gold: 0, predOriginal: 0, predPruned: 1, scoresOriginal: [1, 3] }, // original right, pruned wrong
      { gold: 1, predOriginal: 0, predPruned: 1, scoresOriginal: [2, 2] }, // original wrong, pruned right
      { gold: 1, predOriginal: 1, predPruned: 1, scoresOriginal: [0, 4] }, // both right
    ];
    const e = Math.E;
    const total = e + 1 + e ** 2;
    expect(stabilityWeights([1, 0, 2])).toEqual([e / total, 1 / total, e ** 2 / total].map((w) => expect.closeTo(w, 14)));
    expect(computeStability(items)).toBeCloseTo(e ** 2 / total, 14); // ≈ 0.665
    const referenceScriptValue = e / total; // one match → sum(weights[:1]) ≈ 0.245
    expect(computeStability(items)).not.toBeCloseTo(referenceScriptValue, 2);
    expect(computeAgreement(items)).toBeCloseTo(1 / 3, 14);
  });

  it('counts both-wrong as a match, and agreement is about the choice itself', () => {
    const items = [
      { gold: 0, predOriginal: 1, predPruned: 2, scoresOriginal: [1, 2, 3] }, // both wrong, different choices
      { gold: 0, predOriginal: 0, predPruned: 0, scoresOriginal: [1, 2, 3] },
    ];
    expect(computeStability(items)).toBeCloseTo(1, 14);
    expect(computeAgreement(items)).toBe(0.5);
  });

  it('reports how many items the weights effectively rest on', () => {
    expect(stabilityEffectiveItems([[1, 3], [2, 4], [0, 2]])).toBeCloseTo(3, 12); // equal σ
    expect(stabilityEffectiveItems([[1, 101], [2, 2], [5, 5]])).toBeCloseTo(1, 12); // σ = 50, 0, 0
  });

  it('does not overflow when perplexities are in the thousands', () => {
    const items = [
      { gold: 0, predOriginal: 0, predPruned: 0, scoresOriginal: [1, 2001] }, // σ = 1000: exp(1000) is Infinity
      { gold: 0, predOriginal: 0, predPruned: 1, scoresOriginal: [1, 1] },
    ];
    expect(computeStability(items)).toBe(1);
    expect(stabilityWeights([1000, 0])).toEqual([1, Math.exp(-1000)]);
  });
});

/** Copies a model's weights, changing some: a stand-in for a pruned model that behaves differently. */
function withEditedWeights(model: LoadedModel, edit: (name: string, tensor: HostTensor) => HostTensor): LoadedModel {
  const weights = new Map<string, HostTensor>();
  for (const [name, tensor] of model.weights) weights.set(name, edit(name, tensor));
  return { ...model, path: `${model.path} (edited)`, weights };
}

function expectReportConsistent(report: EvaluationReport): void {
  for (const task of report.tasks) {
    expect(task.numItems).toBe(task.items.length);
    expect(task.accuracyOriginal).toBeCloseTo(task.items.filter((item) => item.predOriginal === item.gold).length / task.numItems, 12);
    for (const item of task.items) {
      expect(item.predOriginal).toBe(item.scoresOriginal.indexOf(Math.min(...item.scoresOriginal)));
    }
    if (task.stability !== undefined) {
      expect(recomputeStability(task.items)).toBe(task.stability);
      expect(task.accuracyPruned).toBeCloseTo(task.items.filter((item) => item.predPruned === item.gold).length / task.numItems, 12);
      expect(task.agreement).toBeCloseTo(task.items.filter((item) => item.predPruned === item.predOriginal).length / task.numItems, 12);
    }
  }
  // What is written is what is read back.
  expect(JSON.parse(JSON.stringify(report))).toEqual(report);
}

describe('evaluateModels on tiny random models', () => {
  const originalDir = writeTinyModel('llama', { seed: 1 });
  const prunedDir = writeTinyModel('llama', { seed: 2, config: { num_hidden_layers: 2 } });
  dirs.push(originalDir, prunedDir);
  const text = writeFile('tiny.txt', 'the quick brown fox jumps over the lazy dog. '.repeat(40));
  const task = writeFile(
    'tiny-task.jsonl',
    Array.from({ length: 9 }, (_, i) => JSON.stringify({ query: `item ${i}: pick`, choices: ['one', 'two words', `three ${i}`], gold: i % 3 })).join('\n'),
  );
  const hellaswagTask = writeFile('tiny-hellaswag.jsonl', JSON.stringify({ ctx: 'a b', endings: ['c', 'd', 'e', 'f'], label: 2 }));

  it('reports perplexity, accuracy, agreement, stability and latency for two models', async () => {
    const original = loadModel(originalDir);
    const pruned = loadModel(prunedDir);
    const events: string[] = [];
    const report = await evaluateModels({
      original,
      pruned,
      tokenizer: charTokenizer,
      texts: [text],
      tasks: [task, hellaswagTask],
      seqLen: 16,
      textWindows: 4,
      skipWindows: 2,
      batchSize: 4,
      runtime: { runtime: 'onnx' },
      onProgress: (event) => events.push(`${event.model} ${event.phase} ${event.done}/${event.total}`),
    });
    expect(report.models).toEqual({
      original: { path: originalDir, numParameters: original.numParameters, numLayers: 3 },
      pruned: { path: prunedDir, numParameters: pruned.numParameters, numLayers: 2 },
    });
    expect(report.settings).toEqual({ seqLen: 16, textWindows: 4, skipWindows: 2, limit: null });
    expect(report.perplexity).toHaveLength(1);
    expect(report.perplexity[0]).toMatchObject({ file: text, windows: 4, tokens: 4 * 15 });
    expect(report.perplexity[0].pruned!.perplexity).not.toBeCloseTo(report.perplexity[0].original.perplexity, 3);
    expect(report.tasks.map((t) => [t.task, t.numItems])).toEqual([['tiny-task', 9], ['tiny-hellaswag', 1]]);
    expect(report.tasks[0].items[0].scoresOriginal).toHaveLength(3);
    expect(report.tasks[0].items[0].scoresPruned).toHaveLength(3);
    expectReportConsistent(report);
    expect(report.averages!.accuracyOriginal).toBeCloseTo((report.tasks[0].accuracyOriginal + report.tasks[1].accuracyOriginal) / 2, 12);
    expect(report.averages!.stability).toBeCloseTo((report.tasks[0].stability! + report.tasks[1].stability!) / 2, 12);
    expect(report.latency!.original.msPerBatch).toBeGreaterThan(0);
    expect(report.latency!.speedup).toBeCloseTo(report.latency!.original.msPerBatch / report.latency!.pruned.msPerBatch, 12);
    expect(report.latency!.batch).toEqual({ batchSize: 4, seqLen: 64, passes: 5 });
    // The original model runs to the end before the pruned one starts.
    const firstPruned = events.findIndex((event) => event.startsWith('pruned'));
    expect(events.slice(firstPruned).every((event) => event.startsWith('pruned'))).toBe(true);
    expect(events).toContain('original task 9/9');
    expect(events).toContain('pruned latency 5/5');
  });

  it('scores a model alone without comparison fields or latency', async () => {
    const report = await evaluateModels({ original: loadModel(originalDir), tokenizer: charTokenizer, texts: [], tasks: [task], limit: 4, runtime: { runtime: 'onnx' } });
    expect(report.models.pruned).toBeUndefined();
    expect(report.latency).toBeUndefined();
    expect(report.tasks[0]).not.toHaveProperty('stability');
    expect(report.tasks[0]).not.toHaveProperty('agreement');
    expect(report.tasks[0].items).toHaveLength(4);
    expect(report.tasks[0].items[0]).not.toHaveProperty('predPruned');
    expect(report.averages).toEqual({ accuracyOriginal: report.tasks[0].accuracyOriginal });
  });

  it('refuses bad settings before any model runs', async () => {
    const original = loadModel(originalDir);
    const base = { original, tokenizer: charTokenizer, runtime: { runtime: 'onnx' as const } };
    await expect(evaluateModels({ ...base, texts: [], tasks: [] })).rejects.toMatchObject({ code: 'BAD_INPUT', message: expect.stringMatching(/at least one text file .* or task file/) });
    await expect(evaluateModels({ ...base, texts: [text], tasks: [], seqLen: 65 })).rejects.toMatchObject({ code: 'BAD_INPUT', message: expect.stringMatching(/seq-len must be an integer from 2 to 64/) });
    await expect(evaluateModels({ ...base, texts: [text], tasks: [], seqLen: 16, skipWindows: 1000 })).rejects.toMatchObject({ code: 'BAD_INPUT', message: expect.stringMatching(/none left after skipping the first 1000/) });
    const empty = writeFile('empty-task.jsonl', '');
    await expect(evaluateModels({ ...base, texts: [], tasks: [empty] })).rejects.toMatchObject({ code: 'BAD_INPUT', message: expect.stringMatching(/empty-task\.jsonl has no items/) });
    const other = withEditedWeights(original, (_, tensor) => tensor);
    const otherVocab = { ...other, config: { ...other.config, vocabSize: 32 } };
    await expect(evaluateModels({ ...base, pruned: otherVocab, texts: [text], tasks: [] })).rejects.toMatchObject({ code: 'BAD_INPUT', message: expect.stringMatching(/vocabulary/) });
  });

  it('refuses token ids beyond the model vocabulary', async () => {
    const wide: Tokenizer = { ...charTokenizer, encode: (value) => [1, ...Array.from(value, () => 100)] };
    await expect(evaluateModels({ original: loadModel(originalDir), tokenizer: wide, texts: [], tasks: [task], runtime: { runtime: 'onnx' } })).rejects.toMatchObject({
      code: 'BAD_INPUT',
      message: expect.stringMatching(/tiny-task\.jsonl:1: token id 100 is outside the model's vocabulary \[0, 64\)/),
    });
  });
});

describe.skipIf(!runWithShared)('on stories260K', () => {
  let stories: LoadedModel;
  let tokenizer: Tokenizer;
  let runtime: ForwardRuntime;
  beforeAll(async () => {
    stories = loadModel(STORIES_BIN);
    tokenizer = await loadTokenizer(STORIES_TOKENIZER);
    runtime = await createRuntime(stories, { runtime: 'onnx' });
  });
  afterAll(() => runtime?.dispose());

  const heldOut = (path: string) => loadTextWindows(path, tokenizer, { seqLen: 256, windows: 64, skipWindows: 32, vocabSize: 512 });

  it('has a TinyStories perplexity near the published figure', async () => {
    // The shared README's independent measurement: 1.34 nats/token, perplexity 3.8. These held-out
    // windows (32 … 95 of the excerpt as one 256-token-window stream) measure 1.43 nats, 4.19.
    const result = await computePerplexity(runtime, await heldOut(TINYSTORIES));
    expect(result.tokens).toBe(64 * 255);
    expect(result.perplexity).toBeGreaterThan(3.5);
    expect(result.perplexity).toBeLessThan(4.5);
    expect(result.perplexity).toBeCloseTo(Math.exp(result.meanNll), 12);
  });

  it('has a much higher perplexity on WikiText-2, which it never saw', async () => {
    const result = await computePerplexity(runtime, await heldOut(WIKITEXT));
    expect(result.perplexity).toBeGreaterThan(100); // about 220 here; the shared README says about 250
  });

  it('skips exactly the calibration windows', async () => {
    const calibration = await loadTextWindows(TINYSTORIES, tokenizer, { seqLen: 256, windows: 40, skipWindows: 0, vocabSize: 512 });
    const after = await loadTextWindows(TINYSTORIES, tokenizer, { seqLen: 256, windows: 8, skipWindows: 32, vocabSize: 512 });
    expect(after).toEqual(calibration.slice(32, 40));
  });

  it('gives the same NLL on both runtimes', async () => {
    const windows = (await heldOut(TINYSTORIES)).slice(0, 3).map((window) => window.slice(0, 64));
    const tfjs = await createRuntime(stories, { runtime: 'tfjs' });
    try {
      const onOnnx = await computePerplexity(runtime, windows);
      const onTfjs = await computePerplexity(tfjs, windows);
      expect(onTfjs.meanNll).toBeCloseTo(onOnnx.meanNll, 4);
      expect(onOnnx.meanNll).toBeCloseTo(await naiveMeanNll(runtime, windows), 5);
    } finally {
      await tfjs.dispose();
    }
  });

  it('scores COPA near the published accuracy', async () => {
    const result = await scoreMultipleChoice(runtime, tokenizer, COPA, { maxPositions: 512, vocabSize: 512 });
    expect(result.items).toHaveLength(100);
    // Measured here: 0.56 by per-choice perplexity, 0.64 by summed NLL (the shared README says 0.64).
    expect(result.accuracy).toBeGreaterThanOrEqual(0.5);
    expect(result.accuracy).toBeLessThanOrEqual(0.8);
    expect(result.accuracySummed).toBeGreaterThanOrEqual(0.5);
    expect(result.accuracySummed).toBeLessThanOrEqual(0.8);
    for (const item of result.items) {
      item.perplexities.forEach((perplexity, c) => expect(perplexity).toBeCloseTo(Math.exp(item.meanNll[c]), 9));
    }
  });

  it('scores each choice by the NLL of its continuation, batched or not', async () => {
    const [item] = (await scoreMultipleChoice(runtime, tokenizer, COPA, { maxPositions: 512, vocabSize: 512, limit: 1, batchSize: 1 })).items;
    const batched = (await scoreMultipleChoice(runtime, tokenizer, COPA, { maxPositions: 512, vocabSize: 512, limit: 3, batchSize: 16 })).items;
    expect(batched).toHaveLength(3);
    batched[0].summedNll.forEach((nll, c) => expect(nll).toBeCloseTo(item.summedNll[c], 4));

    // By hand: "The man turned on the faucet, therefore" + " " + "water flowed from the spout."
    const first = JSON.parse(readFileSync(COPA, 'utf8').split('\n')[0]);
    const context = tokenizer.encode(first.query, { bos: true });
    const full = tokenizer.encode(`${first.query} ${first.choices[1]}`, { bos: true });
    let common = 0;
    while (context[common] === full[common]) common++;
    const { logits } = await runtime.forward(makeBatch([full]), { logits: true });
    let summed = 0;
    for (let t = common; t < full.length; t++) summed += directNll(Array.from(logits!.data.subarray((t - 1) * 512, t * 512)), full[t]);
    expect(item.summedNll[1]).toBeCloseTo(summed, 4);
    expect(item.meanNll[1]).toBeCloseTo(summed / (full.length - common), 4);
  });

  it('reads both task formats the same way', async () => {
    const foundryLines = readFileSync(HELLASWAG_FOUNDRY, 'utf8').trim().split('\n');
    const asHellaswag = writeFile(
      'hellaswag-ctx.jsonl',
      foundryLines.map((line) => {
        const { query, choices, gold } = JSON.parse(line);
        return JSON.stringify({ ctx: query, endings: choices, label: gold });
      }).join('\n'),
    );
    const foundry = await scoreMultipleChoice(runtime, tokenizer, HELLASWAG_FOUNDRY, { maxPositions: 512, vocabSize: 512 });
    const hellaswag = await scoreMultipleChoice(runtime, tokenizer, asHellaswag, { maxPositions: 512, vocabSize: 512 });
    expect(foundry.items).toHaveLength(4);
    expect(hellaswag.items.map((item) => item.perplexities)).toEqual(foundry.items.map((item) => item.perplexities));
    expect(hellaswag.accuracy).toBe(foundry.accuracy);

    const original = await scoreMultipleChoice(runtime, tokenizer, HELLASWAG_ORIGINAL, { maxPositions: 512, vocabSize: 512, limit: 8 });
    expect(original.items).toHaveLength(8);
    expect(original.items.every((item) => item.perplexities.length === 4 && item.perplexities.every(Number.isFinite))).toBe(true);
  });

  it('gives agreement 1 and stability 1 for a model compared with itself', async () => {
    const report = await evaluateModels({ original: stories, pruned: stories, tokenizer, texts: [], tasks: [COPA], limit: 30, latency: false, runtime: { runtime: 'onnx' } });
    expect(report.tasks[0].agreement).toBe(1);
    expect(report.tasks[0].stability).toBeCloseTo(1, 12);
    expect(report.tasks[0].accuracyPruned).toBe(report.tasks[0].accuracyOriginal);
    expect(report.latency).toBeUndefined();
    expectReportConsistent(report);
  });

  it('tells an original from a damaged copy, and the items reproduce the stability', async () => {
    // Layer 2 writes nothing to the residual stream: the model behaves as if that layer were pruned.
    const damaged = withEditedWeights(stories, (name, tensor) =>
      /^model\.layers\.2\.(self_attn\.o_proj|mlp\.down_proj)\.weight$/.test(name) ? { shape: tensor.shape, data: new Float32Array(tensor.data.length) } : tensor,
    );
    const report = await evaluateModels({
      original: stories,
      pruned: damaged,
      tokenizer,
      texts: [TINYSTORIES],
      tasks: [COPA, HELLASWAG_FOUNDRY],
      textWindows: 16,
      runtime: { runtime: 'onnx' },
    });
    const [perplexity] = report.perplexity;
    expect(perplexity.pruned!.perplexity).toBeGreaterThan(perplexity.original.perplexity);
    const copa = report.tasks[0];
    expect(copa.numItems).toBe(100);
    expect(copa.agreement).toBeLessThan(1);
    expect(copa.stability).toBeGreaterThanOrEqual(0);
    expect(copa.stability).toBeLessThanOrEqual(1 + 1e-12);
    // The exp(σ) weights on raw perplexities put nearly all of COPA's weight on one item (σ ≈ 150, the
    // next about 140, so its weight is e^-10 of the first): stability here is about 0 or 1 whatever the agreement.
    expect(copa.stabilityEffectiveItems).toBeLessThan(1.01);
    expectReportConsistent(report);
    expect(report.latency!.batch).toEqual({ batchSize: 4, seqLen: 128, passes: 5 });
  });

  it('runs as the eval command, writing the report where asked', async () => {
    const out = join(work, 'nested', 'dir', 'report.json');
    const lines: string[] = [];
    // No tokenizer given: the tok512.bin beside the checkpoint is used.
    const report = await runEvalCommand({ model: STORIES_BIN, compare: STORIES_BIN, texts: [WIKITEXT], tasks: [COPA], limit: 10, seqLen: 128, out, progress: (line) => lines.push(line) });
    expect(existsSync(out)).toBe(true);
    expect(JSON.parse(readFileSync(out, 'utf8'))).toEqual(report);
    expect(report.tasks[0].numItems).toBe(10);
    expect(report.settings.seqLen).toBe(128);
    expect(lines.some((line) => /^task copa \(10 items\): accuracy original \d\.\d{3}, pruned \d\.\d{3}, agreement 1\.000, stability 1\.000$/.test(line))).toBe(true);
    expect(lines.some((line) => /^perplexity wikitext2_test\.txt \(64 windows, 8128 tokens\): original \d+\.\d\d, pruned \d+\.\d\d$/.test(line))).toBe(true);
    expect(lines.at(-1)).toBe(`wrote ${out}`);
  });

  it('refuses an eval command with neither texts nor tasks', async () => {
    await expect(runEvalCommand({ model: STORIES_BIN, texts: [], tasks: [], out: join(work, 'never.json'), progress: () => undefined })).rejects.toMatchObject({
      code: 'BAD_INPUT',
      message: expect.stringMatching(/at least one --text file .* or --mc file/),
    });
    expect(existsSync(join(work, 'never.json'))).toBe(false);
  });
});
