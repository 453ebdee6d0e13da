/**
 * At plan creation: every local multiple-choice task file must parse as the engine's evaluation will
 * read it (JSONL items of {query, choices, gold} or {ctx, endings, label}), up to the items the plan
 * scores. A malformed file is refused now (BAD_USER_INPUT naming its field and the line) instead of
 * failing the plan after training.
 *
 * Reading runs in the gateway's inspection threads (off the event loop, with their deadline and heap
 * limit). Not checked here, and left to the engine, which checks again before it trains: s3:// files
 * (not fetched at creation), files over MAX_COUNTED_BYTES, and reads the thread had to stop. The message
 * names the rule a line broke, never what the line holds.
 */
import { statSync } from 'node:fs';
import { EngineError, type PlanSpec } from '../engine.js';
import { badInput } from '../errors.js';
import { ThreadStopped, type CheckTask } from '../models/model-inspection.js';
import { parseSourceUri } from '../sources/source-uri.js';
import { DATASET_SCHEMES } from './plan.config.js';
import { MAX_COUNTED_BYTES, type ConfineReads } from './plan.windows.js';

export async function checkTaskFiles(spec: PlanSpec, maxItems: number, checkTask: CheckTask, confine: ConfineReads = () => undefined): Promise<void> {
  for (const [i, source] of spec.evaluation.tasks.entries()) {
    const field = `input.evaluation.tasks[${i}]`;
    const location = parseSourceUri(field, source, DATASET_SCHEMES);
    if (location.kind !== 'file' || sizeOf(location.path) > MAX_COUNTED_BYTES) continue;
    try {
      await checkTask({ file: location.path, limit: spec.evaluation.limit ?? maxItems, confined: confine([location.path]) });
    } catch (error) {
      if (error instanceof ThreadStopped) continue; // past the deadline or the heap limit: the engine checks at run time
      if (error instanceof EngineError) throw badInput(field, `${JSON.stringify(source)} is not a multiple-choice task file: ${taskProblem(error.message, location.path)}`);
      throw error;
    }
  }
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return Infinity; // not this check's business (the source checks said it exists)
  }
}

/** Where and how the engine found the file malformed, in words that carry nothing read from it. */
function taskProblem(message: string, path: string): string {
  const line = message.startsWith(`${path}:`) ? /^:(\d+)/.exec(message.slice(path.length))?.[1] : undefined;
  const at = line ? `line ${line}: ` : '';
  if (/has no items/.test(message)) return 'it has no items (expected JSONL lines of {"query", "choices", "gold"} or {"ctx", "endings", "label"})';
  if (/is not valid JSON/.test(message)) return `${at}not valid JSON`;
  if (/is not a JSON object/.test(message)) return `${at}not a JSON object`;
  if (/an item needs/.test(message)) return `${at}an item needs {"query", "choices", "gold"} or {"ctx", "endings", "label"}`;
  if (/must be a string/.test(message)) return `${at}the context ("query" or "ctx") must be a string`;
  if (/must be an array of at least two strings/.test(message)) return `${at}the choices ("choices" or "endings") must be an array of at least two strings`;
  if (/expected an integer index/.test(message)) return `${at}the answer ("gold" or "label") must be an integer index into the choices`;
  return 'it could not be read';
}
