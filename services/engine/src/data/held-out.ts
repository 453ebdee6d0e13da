/**
 * Which windows of an evaluation text are held out from calibration. A text that IS the calibration
 * source — the same bytes, whatever its path — has its calibration windows skipped; any other file is
 * held out from its first window. Light (files and tokenizers only, no runtime), so that the gateway can
 * count windows at plan creation exactly as the engine cuts them at run time.
 */
import { stat } from 'node:fs/promises';
import { sha256OfFile } from '../storage/integrity.js';
import type { Tokenizer } from '../tokenizers/tokenizer.js';
import { readDataSamples } from './calibration.js';

/** The calibration a plan ran: its data file, how many samples it took, and their length. */
export interface CalibrationSource {
  readonly path: string;
  /** Samples calibration took from the file (windows of a .txt, records of a .jsonl). */
  readonly windows: number;
  readonly seqLen: number;
  /** The file's sha256 when already known (saves reading it again). */
  readonly sha256?: string;
}

/**
 * Whether `path` holds the same bytes as the calibration file: by content (sha256), not by path string,
 * so a copy under another name is the calibration source and a different file at a similar path is not.
 * Files of different sizes differ without being read.
 */
export async function isCalibrationSource(path: string, calibration: CalibrationSource): Promise<boolean> {
  const [text, calibrationFile] = await Promise.all([stat(path), stat(calibration.path)]);
  if (text.size !== calibrationFile.size) return false;
  const [textHash, calibrationHash] = await Promise.all([sha256OfFile(path), calibration.sha256 ?? sha256OfFile(calibration.path)]);
  return textHash === calibrationHash;
}

/**
 * Windows of `seqLen` tokens to skip at the start of the calibration file so that none of its
 * calibration tokens is evaluated: a .txt file is one token stream, whose first
 * `windows × calibration seqLen` tokens calibration used; a .jsonl file gives one sample per record,
 * whatever the length, so calibration used its first `windows` records.
 */
export function calibrationWindowsToSkip(path: string, calibration: Pick<CalibrationSource, 'windows' | 'seqLen'>, seqLen: number): number {
  if (path.endsWith('.jsonl')) return calibration.windows;
  return Math.ceil((calibration.windows * calibration.seqLen) / seqLen);
}

/** Windows of `seqLen` tokens skipped at the start of `path`: the calibration ones when it is the calibration source, else none. */
export async function heldOutStart(path: string, seqLen: number, calibration: CalibrationSource | null | undefined): Promise<number> {
  if (!calibration) return 0;
  return (await isCalibrationSource(path, calibration)) ? calibrationWindowsToSkip(path, calibration, seqLen) : 0;
}

export interface WindowCount {
  /** Windows the file yields at this seq-len, counted up to `upTo` (the count stops there). */
  readonly windows: number;
  /** Of those, skipped as calibration windows (0 when the file is not the calibration source). */
  readonly skipped: number;
  /** Windows left for evaluation: those after the skipped ones, of two or more tokens. */
  readonly available: number;
}

/**
 * How many evaluation windows `path` yields at `seqLen` after the calibration ones (when it is the
 * calibration source), counting no further than `wanted` of them: the file is read and tokenized only as
 * far as that needs, as the evaluation itself would read it.
 */
export async function countHeldOutWindows(
  path: string,
  tokenizer: Tokenizer | null,
  options: { readonly seqLen: number; readonly wanted: number; readonly vocabSize: number; readonly calibration?: CalibrationSource | null },
): Promise<WindowCount> {
  const skipped = await heldOutStart(path, options.seqLen, options.calibration);
  const { samples } = await readDataSamples(path, tokenizer, { samples: skipped + options.wanted, seqLen: options.seqLen, vocabSize: options.vocabSize });
  const available = samples.slice(skipped).filter((sample) => sample.length >= 2).length; // a single token predicts nothing
  return { windows: samples.length, skipped: Math.min(skipped, samples.length), available };
}
