/**
 * At plan creation: every local perplexity text must yield the windows it asks for at its own seq-len —
 * after the calibration windows when it is the calibration file (the same bytes, by sha256, whatever its
 * path), from its first window otherwise — as the engine's evaluation will read it after training. A
 * text too short is refused now (BAD_USER_INPUT naming its field, with how many windows it has and how
 * many are needed) instead of failing the plan after minutes of work.
 *
 * Counting tokenizes the file, so it runs in the gateway's inspection threads (off the event loop, with
 * their deadline and heap limit) and only as far as the count needs. Not checked here, and left to the
 * engine, which checks again before it trains: s3:// texts (not fetched at creation), files over
 * MAX_COUNTED_BYTES, .txt texts of a model whose tokenizer is not local, and counts the thread had to stop.
 */
import { statSync } from 'node:fs';
import { badInput } from '../errors.js';
import { EngineError, type ModelInfo, type PlanSpec } from '../engine.js';
import type { Model } from '../models/model.type.js';
import { ThreadStopped, type ConfinedReads, type CountWindows } from '../models/model-inspection.js';
import { parseSourceUri, type SourceLocation } from '../sources/source-uri.js';
import { DATASET_SCHEMES } from './plan.config.js';

/** Local evaluation texts up to this size are counted at creation; larger ones are left to the engine. */
export const MAX_COUNTED_BYTES = 64 * 1024 * 1024;

/** The tenant's files among `paths`, confined for the thread that reads them (see PlanService). */
export type ConfineReads = (paths: readonly (string | null)[]) => ConfinedReads | undefined;

export async function checkEvaluationWindows(spec: PlanSpec, model: Model, info: ModelInfo, countWindows: CountWindows, confine: ConfineReads = () => undefined): Promise<void> {
  const calibration = localFile('input.calibration.source', spec.calibration.source);
  for (const [i, text] of spec.evaluation.perplexity.entries()) {
    const field = `input.evaluation.perplexity[${i}].source`;
    const file = localFile(field, text.source);
    if (file === null || sizeOf(file) > MAX_COUNTED_BYTES) continue;
    const tokenizer = localTokenizer(model, info);
    if (tokenizer === null && !file.toLowerCase().endsWith('.jsonl')) continue; // the worker fetches the tokenizer; the engine counts
    let count;
    try {
      count = await countWindows({
        file,
        tokenizer,
        seqLen: text.seqLen,
        wanted: text.samples,
        vocabSize: info.config.vocabSize,
        calibration: calibration === null ? null : { path: calibration, windows: spec.calibration.samples, seqLen: spec.calibration.seqLen },
        confined: confine([file, tokenizer, calibration]),
      });
    } catch (error) {
      if (error instanceof ThreadStopped) continue; // past the deadline or the heap limit: the engine checks at run time
      if (error instanceof EngineError && tokenizer === null && /needs a tokenizer/.test(error.message)) continue; // text records, tokenizer not local
      if (error instanceof EngineError) throw badInput(field, `${JSON.stringify(text.source)} cannot be read as evaluation text: ${problemKind(error.message)}`);
      throw error;
    }
    if (count.available >= text.samples) continue;
    const calibrationPart = count.skipped > 0 ? `, ${count.available} of them after the ${count.skipped} calibration windows (it is the calibration file, by content)` : '';
    throw badInput(
      field,
      `${JSON.stringify(text.source)} yields ${count.windows} windows of ${text.seqLen} tokens${calibrationPart}; ${text.samples} are needed (input.evaluation.perplexity[${i}].samples): ` +
        'ask for fewer samples or a shorter seqLen, or give a longer file',
    );
  }
}

/** The path of a file:// source; null for s3:// (not read at creation). */
export function localFile(field: string, uri: string): string | null {
  const location: SourceLocation = parseSourceUri(field, uri, DATASET_SCHEMES);
  return location.kind === 'file' ? location.path : null;
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return Infinity; // not this check's business (the source checks said it exists)
  }
}

/** The model's tokenizer on this machine: its registered file:// tokenizer, else the one beside a local model. */
export function localTokenizer(model: Model, info: ModelInfo): string | null {
  if (model.tokenizer !== null) return model.tokenizer.startsWith('file://') ? localFile('model.tokenizer', model.tokenizer) : null;
  return model.source.startsWith('file://') ? (info.tokenizerPath ?? null) : null;
}

/** What kind of problem the engine met reading the text, in words that carry nothing read from the file. */
function problemKind(message: string): string {
  if (/not valid JSON/.test(message)) return 'a line is not valid JSON';
  if (/not a token id/.test(message)) return "input_ids holds a value that is not a token id of the model's vocabulary";
  if (/a record needs/.test(message)) return 'a record has neither "input_ids" (token ids) nor "text" (a string)';
  if (/tokenizer/.test(message)) return "the model's tokenizer could not be read";
  return 'it could not be read';
}
