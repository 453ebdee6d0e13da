/**
 * Progress on stderr: on a terminal, one line rewritten in place (bar, stage, step, loss, ETA); in a
 * log or pipe, plain lines — one per stage change (after the last state of the stage before) and at
 * most one a second otherwise. A final line when the plan ends (end()). The ETA: see eta.ts.
 */
import type { ProgressEvent } from '../types.js';
import { EtaEstimator } from './eta.js';
import { duration, fixed } from './format.js';

export class ProgressLine {
  private readonly startedAt: number;
  private readonly eta = new EtaEstimator();
  private lastStage: string | null = null;
  private lastLineAt = 0;
  private drawn = false;
  /** A plain line held back by the once-a-second limit; finish() prints it so the last state shows. */
  private pending: string | null = null;

  /** `now`: the clock (milliseconds), replaceable in tests. */
  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly now: () => number = Date.now,
  ) {
    this.startedAt = now();
  }

  update(event: ProgressEvent): void {
    this.eta.observe(event, this.now());
    const text = this.describe(event);
    if (this.stream.isTTY) {
      const width = this.stream.columns || 100;
      this.stream.write(`\r\x1b[2K${text.slice(0, width - 1)}`);
      this.drawn = true;
      return;
    }
    const now = this.now();
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

  /**
   * The last line of a watch, once the plan has ended: a SUCCEEDED plan's bar at 100 % (its last
   * progress event may say 97 %: uploading ends with completePlan, not with an event), or how it ended.
   */
  end(status: string, progress: number): void {
    this.finish();
    const shown = status === 'SUCCEEDED' ? 1 : progress;
    this.stream.write(`${bar(shown)} ${(shown * 100).toFixed(0).padStart(3)}%  ${status}  in ${duration((this.now() - this.startedAt) / 1000)}\n`);
  }

  private describe(event: ProgressEvent): string {
    const parts = [`${bar(event.progress)} ${(event.progress * 100).toFixed(0).padStart(3)}%`, event.stage];
    if (event.candidateId) parts.push(`[${event.candidateId}]`);
    if (event.layer !== null && event.layers !== null) parts.push(layerPosition(event.layer, event.layers));
    if (event.bytesRead !== null) parts.push(`${gigabytes(event.bytesRead)} read`);
    if (event.step !== null) parts.push(`step ${event.step}${event.totalSteps !== null ? `/${event.totalSteps}` : ''}`);
    if (event.loss !== null) parts.push(`loss ${fixed(event.loss)}`);
    if (event.validationLoss !== null) parts.push(`val ${fixed(event.validationLoss)}`);
    const eta = this.eta.seconds();
    if (eta !== null) parts.push(`ETA ${duration(eta)}`);
    return parts.join('  ');
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
