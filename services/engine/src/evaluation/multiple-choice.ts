/**
 * Multiple-choice tasks scored in perplexity mode, as in llm-foundry and the LLM-Streamline paper.
 *
 * A task is a JSONL file of items in either of two formats:
 * - llm-foundry: `{"query": "...", "choices": ["...", ...], "gold": 1}`
 * - HellaSwag:   `{"ctx": "...", "endings": ["...", ...], "label": 1}` (label may also be a digit string)
 * In both, a choice follows its context after a single space.
 *
 * For each item and choice: context ids = encode(context) with BOS, full ids = encode(context + " " +
 * choice) with BOS, and the continuation = the full ids after their longest common prefix with the
 * context ids (at least one token: tokenizers may merge across the join). The model's NLL of the
 * continuation given everything before it is the choice's score, summed and per token; the choice's
 * perplexity is exp(mean NLL). The prediction is the choice of lowest perplexity (what stability uses);
 * accuracy with the summed NLL is reported too.
 *
 * Items are read as a stream and their sequences batched as they come, so memory holds the current
 * batch and, per item, only its scores.
 */
import { existsSync, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { EngineError } from '../errors.js';
import { openTextStream } from '../formats/file-reads.js';
import type { ForwardRuntime } from '../runtime/runtime.js';
import type { Tokenizer } from '../tokenizers/tokenizer.js';
import { BatchedNllScorer, checkTokenIds, type ScoredSequence } from './sequence-nll.js';

export interface MultipleChoiceItem {
  /** 0-based position among the file's items (blank lines are not items). */
  readonly index: number;
  /** 1-based line in the file, for messages. */
  readonly line: number;
  readonly context: string;
  readonly choices: readonly string[];
  readonly gold: number;
}

export interface ScoredItem {
  readonly index: number;
  readonly gold: number;
  /** Per choice: the continuation's summed NLL (nats). */
  readonly summedNll: number[];
  /** Per choice: the continuation's mean NLL per token. */
  readonly meanNll: number[];
  /** Per choice: exp(mean NLL). */
  readonly perplexities: number[];
  /** argmin of perplexities (first on ties). */
  readonly prediction: number;
  /** argmin of summedNll (first on ties). */
  readonly predictionSummed: number;
}

export interface MultipleChoiceResult {
  readonly file: string;
  readonly items: ScoredItem[];
  /** Fraction of items whose lowest-perplexity choice is gold. */
  readonly accuracy: number;
  /** Fraction of items whose lowest summed-NLL choice is gold. */
  readonly accuracySummed: number;
}

export interface MultipleChoiceProgress {
  readonly file: string;
  readonly itemsDone: number;
}

export interface MultipleChoiceOptions {
  /** Score only the first `limit` items. */
  readonly limit?: number;
  /** Sequences (item × choice) per forward pass; default 16. */
  readonly batchSize?: number;
  /** The model's context: longer sequences lose tokens from the left. */
  readonly maxPositions: number;
  /** Token ids must be below this (the model's vocabulary size). */
  readonly vocabSize: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: MultipleChoiceProgress) => void;
}

/** Reads a task's items one at a time, refusing the file at the first bad line. */
export async function* readMultipleChoiceItems(path: string, limit?: number): AsyncGenerator<MultipleChoiceItem> {
  if (limit !== undefined && !(Number.isInteger(limit) && limit >= 1)) throw new EngineError('BAD_INPUT', `limit must be a positive integer, got ${limit}`);
  if (!existsSync(path) || !statSync(path).isFile()) throw new EngineError('NOT_FOUND', `task file not found: ${path}`);
  const input = openTextStream(path, 'task file');
  const lines = createInterface({ input, crlfDelay: Infinity });
  let lineNumber = 0;
  let index = 0;
  try {
    for await (const line of lines) {
      lineNumber++;
      if (line.trim() === '') continue;
      yield parseItem(line, path, lineNumber, index);
      index++;
      if (index === limit) break;
    }
  } finally {
    lines.close();
    input.destroy();
  }
  if (index === 0) throw new EngineError('BAD_INPUT', `task file ${path} has no items (expected JSONL lines of {query, choices, gold} or {ctx, endings, label})`);
}

/** Reads the whole task (up to `limit` items) to refuse a bad file before any model work; returns the item count. */
export async function checkMultipleChoiceTask(path: string, limit?: number): Promise<number> {
  let items = 0;
  for await (const _item of readMultipleChoiceItems(path, limit)) items++;
  return items;
}

function parseItem(line: string, path: string, lineNumber: number, index: number): MultipleChoiceItem {
  const where = `${path}:${lineNumber}`;
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line);
  } catch {
    throw new EngineError('BAD_INPUT', `${where} is not valid JSON`); // the parser's message quotes the line
  }
  if (typeof record !== 'object' || record === null || Array.isArray(record)) throw new EngineError('BAD_INPUT', `${where} is not a JSON object`);

  let context: unknown, choices: unknown, gold: unknown;
  let names: [string, string, string];
  if ('query' in record) {
    names = ['query', 'choices', 'gold'];
    ({ query: context, choices, gold } = record);
  } else if ('ctx' in record) {
    names = ['ctx', 'endings', 'label'];
    ({ ctx: context, endings: choices, label: gold } = record);
    // HellaSwag as published on the Hugging Face hub stores the label as a string.
    if (typeof gold === 'string' && /^\d+$/.test(gold)) gold = Number(gold);
  } else {
    throw new EngineError('BAD_INPUT', `${where}: an item needs {"query", "choices", "gold"} or {"ctx", "endings", "label"}`);
  }
  const [contextName, choicesName, goldName] = names;
  if (typeof context !== 'string') throw new EngineError('BAD_INPUT', `${where}: "${contextName}" must be a string`);
  if (!Array.isArray(choices) || choices.length < 2 || !choices.every((choice) => typeof choice === 'string')) {
    throw new EngineError('BAD_INPUT', `${where}: "${choicesName}" must be an array of at least two strings`);
  }
  if (!(typeof gold === 'number' && Number.isInteger(gold) && gold >= 0 && gold < choices.length)) {
    throw new EngineError('BAD_INPUT', `${where}: "${goldName}" is ${JSON.stringify(gold)}; expected an integer index into the ${choices.length} ${choicesName}, 0 to ${choices.length - 1}`);
  }
  return { index, line: lineNumber, context, choices, gold };
}

/**
 * The sequence that scores one choice: the full ids (cut from the left to `maxPositions`) and the
 * position of the first continuation token.
 */
export function choiceSequence(contextIds: readonly number[], fullIds: readonly number[], maxPositions: number, where: string): ScoredSequence {
  if (fullIds.length < 2) throw new EngineError('BAD_INPUT', `${where}: context and choice encode to ${fullIds.length} token(s); at least two are needed to score a continuation`);
  let commonPrefix = 0;
  while (commonPrefix < contextIds.length && commonPrefix < fullIds.length && contextIds[commonPrefix] === fullIds[commonPrefix]) commonPrefix++;
  // At least one continuation token, and never position 0, which nothing predicts.
  let firstScored = Math.max(1, Math.min(commonPrefix, fullIds.length - 1));
  let ids = fullIds;
  const excess = fullIds.length - maxPositions;
  if (excess > 0) {
    ids = fullIds.slice(excess);
    firstScored = Math.max(1, firstScored - excess);
  }
  return { ids, firstScored };
}

function argmin(values: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] < values[best]) best = i;
  return best;
}

export async function scoreMultipleChoice(
  runtime: ForwardRuntime,
  tokenizer: Tokenizer,
  path: string,
  options: MultipleChoiceOptions,
): Promise<MultipleChoiceResult> {
  const scorer = new BatchedNllScorer(runtime, options.batchSize ?? 16, `multiple-choice scoring of ${path}`, options.signal);
  const items: { index: number; gold: number; summedNll: number[]; meanNll: number[]; choicesLeft: number }[] = [];
  let itemsDone = 0;

  for await (const item of readMultipleChoiceItems(path, options.limit)) {
    const where = `${path}:${item.line}`;
    const scores = {
      index: item.index,
      gold: item.gold,
      summedNll: new Array<number>(item.choices.length).fill(NaN),
      meanNll: new Array<number>(item.choices.length).fill(NaN),
      choicesLeft: item.choices.length,
    };
    items.push(scores);
    const contextIds = tokenizer.encode(item.context, { bos: true });
    for (let choice = 0; choice < item.choices.length; choice++) {
      const fullIds = tokenizer.encode(`${item.context} ${item.choices[choice]}`, { bos: true });
      checkTokenIds(fullIds, options.vocabSize, where);
      const sequence = choiceSequence(contextIds, fullIds, options.maxPositions, where);
      await scorer.add(sequence, ({ nll, tokens }) => {
        scores.summedNll[choice] = nll;
        scores.meanNll[choice] = nll / tokens;
        scores.choicesLeft--;
        if (scores.choicesLeft === 0) {
          itemsDone++;
          options.onProgress?.({ file: path, itemsDone });
        }
      });
    }
  }
  await scorer.finish();

  let correct = 0;
  let correctSummed = 0;
  const scored: ScoredItem[] = items.map(({ index, gold, summedNll, meanNll }) => {
    const perplexities = meanNll.map((mean) => Math.exp(mean));
    const prediction = argmin(perplexities);
    const predictionSummed = argmin(summedNll);
    if (prediction === gold) correct++;
    if (predictionSummed === gold) correctSummed++;
    return { index, gold, summedNll, meanNll, perplexities, prediction, predictionSummed };
  });
  return { file: path, items: scored, accuracy: correct / scored.length, accuracySummed: correctSummed / scored.length };
}
