/**
 * Calibration samples: token sequences of at most `seqLen` tokens, from
 * - a `.txt` file: tokenized as one stream with BOS at its start, cut into consecutive full windows;
 * - a `.jsonl` file of `{"input_ids": [...]}` (used as given) or `{"text": "..."}` (tokenized with BOS)
 *   records, each truncated to `seqLen`.
 * Only as much of the file as the first `samples` samples need is read and tokenized. Blank text records
 * and empty id lists are skipped; a file with no text at all is BAD_INPUT ("… has no text samples").
 */
import { closeSync, createReadStream, existsSync, openSync, readSync, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { EngineError } from '../errors.js';
import type { Tokenizer } from '../tokenizers/tokenizer.js';

export interface CalibrationOptions {
  readonly samples: number;
  readonly seqLen: number;
  /** Token ids must be below this (the model's vocabulary size). */
  readonly vocabSize: number;
}

export async function loadCalibrationSamples(path: string, tokenizer: Tokenizer | null, options: CalibrationOptions): Promise<number[][]> {
  const { samples, seqLen } = options;
  if (!(Number.isInteger(samples) && samples >= 1)) throw new EngineError('BAD_INPUT', `samples must be a positive integer, got ${samples}`);
  if (!(Number.isInteger(seqLen) && seqLen >= 1)) throw new EngineError('BAD_INPUT', `seq-len must be a positive integer, got ${seqLen}`);
  if (!existsSync(path) || !statSync(path).isFile()) throw new EngineError('NOT_FOUND', `data file not found: ${path}`);
  let result: number[][];
  if (path.endsWith('.jsonl')) result = await readJsonl(path, tokenizer, options);
  else if (path.endsWith('.txt')) result = readTextWindows(path, requireTokenizer(tokenizer, path), options);
  else throw new EngineError('BAD_INPUT', `data file ${path} must end in .txt or .jsonl`);
  if (result.length === 0) throw noTextSamples(path);
  return result;
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
function readTextWindows(path: string, tokenizer: Tokenizer, { samples, seqLen }: CalibrationOptions): number[][] {
  const fileSize = statSync(path).size;
  const needed = samples * seqLen;
  let prefixBytes = Math.min(fileSize, Math.max(64 * 1024, needed * 8));
  for (;;) {
    const complete = prefixBytes >= fileSize;
    const text = readPrefix(path, prefixBytes, complete);
    if (complete && text.trim() === '') throw noTextSamples(path);
    let ids = tokenizer.encode(text, { bos: true });
    // The last few tokens of a cut prefix may merge differently once more text follows; drop them.
    if (!complete) ids = ids.slice(0, Math.max(0, ids.length - 16));
    if (ids.length >= needed || complete) {
      const windows: number[][] = [];
      for (let start = 0; start + seqLen <= ids.length && windows.length < samples; start += seqLen) windows.push(ids.slice(start, start + seqLen));
      if (windows.length === 0) {
        throw new EngineError('BAD_INPUT', `data file ${path} has no usable sample: ${ids.length} tokens, fewer than one window of seq-len ${seqLen}`);
      }
      return windows;
    }
    prefixBytes = Math.min(fileSize, prefixBytes * 2);
  }
}

/** The first `bytes` bytes of the file, cut after its last newline unless that is the whole file. */
function readPrefix(path: string, bytes: number, wholeFile: boolean): string {
  const fd = openSync(path, 'r');
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
  const lines = createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity });
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
