/**
 * The engine's `eval` command: evaluate a model (and, with `compare`, its pruned version against it) on
 * text files and multiple-choice tasks, write the report JSON to `out`, and print a short summary.
 * Here `model` is the original and `compare` the pruned model; stability weights come from `model`.
 */
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { EngineError } from '../errors.js';
import { loadModel } from '../models/model.js';
import { loadTokenizer } from '../tokenizers/tokenizer.js';
import { evaluateModels, type EvaluationProgress, type EvaluationReport } from './evaluate.js';

export interface EvalCommandOptions {
  /** The original model. */
  model: string;
  /** The pruned model, compared with the original. */
  compare?: string;
  /** Default: the tokenizer beside `model`. */
  tokenizer?: string;
  texts: string[];
  tasks: string[];
  limit?: number;
  seqLen?: number;
  out: string;
  progress: (line: string) => void;
}

export async function runEvalCommand(options: EvalCommandOptions): Promise<EvaluationReport> {
  if (options.texts.length === 0 && options.tasks.length === 0) {
    throw new EngineError('BAD_INPUT', 'eval needs at least one --text file (perplexity) or --mc file (multiple choice)');
  }
  const original = loadModel(options.model);
  const tokenizerPath = options.tokenizer ?? original.tokenizerPath;
  if (!tokenizerPath) throw new EngineError('BAD_INPUT', `no tokenizer found beside ${original.path}; pass --tokenizer`);
  const tokenizer = await loadTokenizer(tokenizerPath);
  const pruned = options.compare === undefined ? undefined : loadModel(options.compare);

  const report = await evaluateModels({
    original,
    pruned,
    tokenizer,
    texts: options.texts,
    tasks: options.tasks,
    limit: options.limit,
    seqLen: options.seqLen,
    onProgress: (event) => {
      // One line per finished file (and per latency measurement), not per batch.
      if (event.done === event.total) options.progress(progressLine(event));
    },
  });

  writeReport(options.out, report);
  for (const line of summaryLines(report)) options.progress(line);
  options.progress(`wrote ${options.out}`);
  return report;
}

/** Writes to a temporary name beside `out`, then renames: a reader never sees half a report. */
function writeReport(out: string, report: EvaluationReport): void {
  mkdirSync(dirname(out), { recursive: true });
  const temporary = `${out}.${process.pid}.tmp`;
  try {
    writeFileSync(temporary, `${JSON.stringify(report, null, 2)}\n`);
    renameSync(temporary, out);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
}

function progressLine(event: EvaluationProgress): string {
  if (event.phase === 'latency') return `eval ${event.model}: timed ${event.total} forward passes`;
  const unit = event.phase === 'perplexity' ? 'windows' : 'items';
  return `eval ${event.model}: ${basename(event.file ?? '')} done (${event.total} ${unit})`;
}

const format = (value: number, digits = 3) => (Number.isFinite(value) ? value.toFixed(digits) : String(value));

export function summaryLines(report: EvaluationReport): string[] {
  const lines: string[] = [];
  const { original, pruned } = report.models;
  lines.push(
    `original: ${original.path} (${original.numLayers} layers, ${original.numParameters} parameters)` +
      (pruned ? `; pruned: ${pruned.path} (${pruned.numLayers} layers, ${pruned.numParameters} parameters)` : ''),
  );
  for (const entry of report.perplexity) {
    lines.push(
      `perplexity ${basename(entry.file)} (${entry.windows} windows, ${entry.tokens} tokens): original ${format(entry.original.perplexity, 2)}` +
        (entry.pruned ? `, pruned ${format(entry.pruned.perplexity, 2)}` : ''),
    );
  }
  for (const task of report.tasks) {
    lines.push(
      `task ${task.task} (${task.numItems} items): accuracy original ${format(task.accuracyOriginal)}` +
        (task.accuracyPruned !== undefined ? `, pruned ${format(task.accuracyPruned)}, agreement ${format(task.agreement!)}, stability ${format(task.stability!)}` : ''),
    );
  }
  if (report.averages && report.tasks.length > 1) {
    const { accuracyOriginal, accuracyPruned, agreement, stability } = report.averages;
    lines.push(
      `average over ${report.tasks.length} tasks: accuracy original ${format(accuracyOriginal)}` +
        (accuracyPruned !== undefined ? `, pruned ${format(accuracyPruned)}, agreement ${format(agreement!)}, stability ${format(stability!)}` : ''),
    );
  }
  if (report.latency) {
    const { original: o, pruned: p, speedup, batch } = report.latency;
    lines.push(`latency (${batch.batchSize}×${batch.seqLen} tokens): original ${format(o.msPerBatch, 1)} ms, pruned ${format(p.msPerBatch, 1)} ms, speedup ${format(speedup, 2)}×`);
  }
  return lines;
}
