/**
 * Progress on stderr: on a terminal, one line rewritten in place (bar, stage, step, loss, ETA); in a
 * log or pipe, plain lines — one per stage change (after the last state of the stage before) and at
 * most one a second otherwise.
 */
import type { ProgressEvent } from '../types.js';
import { duration, fixed } from './format.js';

export class ProgressLine {
  private readonly startedAt = Date.now();
  private startProgress: number | null = null;
  private lastStage: string | null = null;
  private lastLineAt = 0;
  private drawn = false;
  /** A plain line held back by the once-a-second limit; finish() prints it so the last state shows. */
  private pending: string | null = null;

  constructor(private readonly stream: NodeJS.WriteStream) {}

  update(event: ProgressEvent): void {
    const text = this.describe(event);
    if (this.stream.isTTY) {
      const width = this.stream.columns || 100;
      this.stream.write(`\r\x1b[2K${text.slice(0, width - 1)}`);
      this.drawn = true;
      return;
    }
    const now = Date.now();
    const stageChanged = event.stage !== this.lastStage;
    // A stage's last state is shown before the next stage's first (a fast stage's steps all fall within a second).
    if (stageChanged && this.pending) this.stream.write(`${this.pending}\n`);
    if (stageChanged || now - this.lastLineAt >= 1000) {
      this.stream.write(`${text}\n`);
      this.lastLineAt = now;
      this.pending = null;
    } else {
      this.pending = text;
    }
    this.lastStage = event.stage;
  }

  /** Ends the in-place line so later output starts on a fresh one. */
  finish(): void {
    if (this.drawn) this.stream.write('\n');
    if (this.pending) this.stream.write(`${this.pending}\n`);
    this.drawn = false;
    this.pending = null;
  }

  private describe(event: ProgressEvent): string {
    const parts = [`${bar(event.progress)} ${(event.progress * 100).toFixed(0).padStart(3)}%`, event.stage];
    if (event.candidateId) parts.push(`[${event.candidateId}]`);
    if (event.layer !== null && event.layers !== null) parts.push(layerPosition(event.layer, event.layers));
    if (event.bytesRead !== null) parts.push(`${gigabytes(event.bytesRead)} read`);
    if (event.step !== null) parts.push(`step ${event.step}${event.totalSteps !== null ? `/${event.totalSteps}` : ''}`);
    if (event.loss !== null) parts.push(`loss ${fixed(event.loss)}`);
    if (event.validationLoss !== null) parts.push(`val ${fixed(event.validationLoss)}`);
    const eta = this.eta(event.progress);
    if (eta !== null) parts.push(`ETA ${duration(eta)}`);
    return parts.join('  ');
  }

  /** Seconds left, extrapolated from the progress made since this command started watching. */
  private eta(progress: number): number | null {
    this.startProgress ??= progress;
    const done = progress - this.startProgress;
    const elapsed = (Date.now() - this.startedAt) / 1000;
    if (done <= 0 || elapsed < 1 || progress >= 1) return null;
    return (elapsed * (1 - progress)) / done;
  }
}

function bar(fraction: number, width = 20): string {
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
}

/** Where a layer-streamed pass is: the embeddings, a decoder layer (0-based) of all, or the LM head. */
function layerPosition(layer: number, layers: number): string {
  if (layer < 0) return 'embeddings';
  if (layer >= layers) return 'LM head';
  return `layer ${layer}/${layers - 1}`;
}

function gigabytes(bytes: number): string {
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(1)} GB` : `${(bytes / 1e6).toFixed(0)} MB`;
}
