/**
 * Calibration samples: token sequences of at most `seqLen` tokens, from
 * - a `.txt` file: tokenized as one stream with BOS at its start, cut into consecutive full windows;
 * - a `.jsonl` file of `{"input_ids": [...]}` (used as given) or `{"text": "..."}` (tokenized with BOS)
 *   records, each truncated to `seqLen`.
 * Only as much of the file as the first `samples` samples need is read and tokenized. Blank text records
 * and empty id lists are skipped; a file with no text at all is BAD_INPUT ("… has no text samples").
 */
import { closeSync, existsSync, readSync, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { EngineError } from '../errors.js';
import { openRegularFile, openTextStream } from '../formats/file-reads.js';
import type { Tokenizer } from '../tokenizers/tokenizer.js';

export interface CalibrationOptions {
  readonly samples: number;
  readonly seqLen: number;
  /** Token ids must be below this (the model's vocabulary size). */
  readonly vocabSize: number;
}

export async function loadCalibrationSamples(path: string, tokenizer: Tokenizer | null, options: CalibrationOptions): Promise<number[][]> {
  const { samples, tokens } = await readDataSamples(path, tokenizer, options);
  if (samples.length > 0) return samples;
  if (tokens !== null && tokens > 0) {
    throw new EngineError('BAD_INPUT', `data file ${path} has no usable sample: ${tokens} tokens, fewer than one window of seq-len ${options.seqLen}`);
  }
  throw noTextSamples(path);
}

/**
 * The first `samples` samples of a data file, cut as `loadCalibrationSamples` cuts them, but none at all
 * is an answer rather than an error (for counting windows); `tokens` is the length of a .txt file's token
 * stream when it ended before `samples` windows (null otherwise).
 */
export async function readDataSamples(path: string, tokenizer: Tokenizer | null, options: CalibrationOptions): Promise<{ samples: number[][]; tokens: number | null }> {
  const { samples, seqLen } = options;
  if (!(Number.isInteger(samples) && samples >= 1)) throw new EngineError('BAD_INPUT', `samples must be a positive integer, got ${samples}`);
  if (!(Number.isInteger(seqLen) && seqLen >= 1)) throw new EngineError('BAD_INPUT', `seq-len must be a positive integer, got ${seqLen}`);
  if (!existsSync(path) || !statSync(path).isFile()) throw new EngineError('NOT_FOUND', `data file not found: ${path}`);
  if (path.endsWith('.jsonl')) return { samples: await readJsonl(path, tokenizer, options), tokens: null };
  if (path.endsWith('.txt')) return readTextWindows(path, requireTokenizer(tokenizer, path), options);
  throw new EngineError('BAD_INPUT', `data file ${path} must end in .txt or .jsonl`);
}

/** An empty or all-blank file: refused, rather than "calibrated" on BOS tokens alone. */
function noTextSamples(path: string): EngineError {
  return new EngineError('BAD_INPUT', `data file ${path} has no text samples: it is empty, or every line or record in it is blank (so it has no usable sample)`);
}

function requireTokenizer(tokenizer: Tokenizer | null, path: string): Tokenizer {
  if (!tokenizer) throw new EngineError('BAD_INPUT', `data file ${path} holds text, which needs a tokenizer (--tokenizer)`);
  return tokenizer;
}

/** Reads a growing prefix of the text until it yields enough windows (or the file ends). */
function readTextWindows(path: string, tokenizer: Tokenizer, { samples, seqLen }: CalibrationOptions): { samples: number[][]; tokens: number | null } {
  const fileSize = statSync(path).size;
  const needed = samples * seqLen;
  let prefixBytes = Math.min(fileSize, Math.max(64 * 1024, needed * 8));
  for (;;) {
    const complete = prefixBytes >= fileSize;
    const text = readPrefix(path, prefixBytes, complete);
    if (complete && text.trim() === '') return { samples: [], tokens: 0 };
    let ids = tokenizer.encode(text, { bos: true });
    // The last few tokens of a cut prefix may merge differently once more text follows; drop them.
    if (!complete) ids = ids.slice(0, Math.max(0, ids.length - 16));
    if (ids.length >= needed || complete) {
      const windows: number[][] = [];
      for (let start = 0; start + seqLen <= ids.length && windows.length < samples; start += seqLen) windows.push(ids.slice(start, start + seqLen));
      return { samples: windows, tokens: windows.length < samples ? ids.length : null };
    }
    prefixBytes = Math.min(fileSize, prefixBytes * 2);
  }
}

/** The first `bytes` bytes of the file, cut after its last newline unless that is the whole file. */
function readPrefix(path: string, bytes: number, wholeFile: boolean): string {
  const fd = openRegularFile(path, 'data file');
  try {
    const buffer = Buffer.alloc(bytes);
    const read = readSync(fd, buffer, 0, bytes, 0);
    const lastNewline = wholeFile ? -1 : buffer.lastIndexOf(0x0a, read - 1);
    return buffer.subarray(0, lastNewline > 0 ? lastNewline + 1 : read).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

async function readJsonl(path: string, tokenizer: Tokenizer | null, { samples, seqLen, vocabSize }: CalibrationOptions): Promise<number[][]> {
  const result: number[][] = [];
  const lines = createInterface({ input: openTextStream(path, 'data file'), crlfDelay: Infinity });
  let lineNumber = 0;
  try {
    for await (const line of lines) {
      lineNumber++;
      if (line.trim() === '') continue;
      let record: { input_ids?: unknown; text?: unknown };
      try {
        record = JSON.parse(line);
      } catch {
        throw new EngineError('BAD_INPUT', `${path}:${lineNumber} is not valid JSON`); // the parser's message quotes the line
      }
      let ids: number[];
      if (Array.isArray(record.input_ids)) {
        ids = record.input_ids as number[];
        if (ids.length === 0) continue;
        const bad = ids.find((id) => !Number.isInteger(id) || id < 0 || id >= vocabSize);
        if (bad !== undefined) throw new EngineError('BAD_INPUT', `${path}:${lineNumber}: input_ids holds ${bad}, not a token id in [0, ${vocabSize})`);
      } else if (typeof record.text === 'string') {
        if (record.text.trim() === '') continue; // BOS alone is no sample
        ids = requireTokenizer(tokenizer, path).encode(record.text, { bos: true });
      } else {
        throw new EngineError('BAD_INPUT', `${path}:${lineNumber}: a record needs "input_ids" (array of token ids) or "text" (string)`);
      }
      if (ids.length === 0) continue;
      result.push(ids.slice(0, seqLen));
      if (result.length === samples) break;
    }
  } finally {
    lines.close();
  }
  return result;
}
