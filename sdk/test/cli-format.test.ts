/** The CLI's terminal renderings, without a gateway: heat map, progress line, tables. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { duration, jsonForDisplay, table } from '../src/cli/format.js';
import { heatmap } from '../src/cli/heatmap.js';
import { ProgressLine } from '../src/cli/progress-line.js';
import { planView } from '../src/cli/views.js';
import type { LayerImportance, Plan, ProgressEvent } from '../src/index.js';

function profile(blockSize: number, scores: number[], metric: LayerImportance['metric'] = 'COSINE'): LayerImportance {
  const entries = scores.map((score, startLayer) => ({ startLayer, endLayer: startLayer + blockSize - 1, score }));
  const best = metric === 'COSINE' ? entries.reduce((a, b) => (b.score > a.score ? b : a)) : entries.reduce((a, b) => (b.score < a.score ? b : a));
  return { id: `p${blockSize}`, metric, blockSize, samples: 8, seqLen: 64, best, scores: entries };
}

/** A stand-in for process.stderr that keeps what is written. */
function stream(isTTY: boolean) {
  const written: string[] = [];
  return { written, stream: { isTTY, columns: 200, write: (text: string) => written.push(text) } as unknown as NodeJS.WriteStream };
}

const event = (seq: number, stage: ProgressEvent['stage'], progress: number, extra: Partial<ProgressEvent> = {}): ProgressEvent => ({
  planId: 'p', seq, at: '2026-01-01T00:00:00Z', stage, progress, step: null, totalSteps: null, loss: null, validationLoss: null, learningRate: null, tokensPerSecond: null, message: null, layer: null, layers: null, bytesRead: null, candidateId: null, ...extra,
});

describe('heatmap', () => {
  const profiles = [profile(2, [0.56, 0.73, 0.75, 0.73]), profile(1, [0.77, 0.86, 0.88, 0.88, 0.85])];

  it('lays out block size × start layer, marks each row best, and shades without colour', () => {
    const lines = heatmap(profiles, { color: false }).split('\n');
    expect(lines[0]).toMatch(/^COSINE: raw mean cos/);
    const rows = lines.filter((line) => /^\d\s/.test(line));
    expect(rows.map((row) => row[0])).toEqual(['1', '2']); // sorted by block size
    expect(rows[0]).toContain('0.880*█');
    expect(rows[1]).toContain('0.750*');
    expect(rows[1]).toContain('0.560  '); // the coldest cell: no shade
    expect(lines.join('\n')).not.toContain('\x1b[');
  });

  it('uses ANSI backgrounds on a colour terminal', () => {
    expect(heatmap(profiles, { color: true })).toMatch(/\x1b\[48;5;\d+m/);
  });

  it('shades low distances as redundant for ANGULAR_DISTANCE', () => {
    const rows = heatmap([profile(1, [0.2, 0.1, 0.3], 'ANGULAR_DISTANCE')], { color: false }).split('\n').filter((line) => /^\d\s/.test(line));
    expect(rows[0]).toContain('0.100*█');
  });
});

describe('ProgressLine', () => {
  it('rewrites one line on a terminal, with stage, step, loss', () => {
    const { written, stream: tty } = stream(true);
    const line = new ProgressLine(tty);
    line.update(event(1, 'TRAINING', 0.3, { step: 5, totalSteps: 300, loss: 0.3658 }));
    line.finish();
    expect(written[0]).toMatch(/^\r\x1b\[2K\[######\.+\]\s+30%\s+TRAINING\s+step 5\/300\s+loss 0\.3658/);
    expect(written.at(-1)).toBe('\n');
  });

  it('shows an ETA from the measured step time (see eta.test.ts)', () => {
    vi.useFakeTimers({ now: new Date('2026-01-01T00:00:00Z') });
    const { written, stream: tty } = stream(true);
    const line = new ProgressLine(tty);
    line.update(event(1, 'TRAINING', 0.2, { step: 60, totalSteps: 300 }));
    expect(written.at(-1)).not.toContain('ETA'); // nothing to extrapolate from yet
    vi.advanceTimersByTime(10_000);
    line.update(event(2, 'TRAINING', 0.4, { step: 120, totalSteps: 300, loss: 0.5 }));
    // 60 steps in 10 s: the remaining 180 take 30 s (and bring the plan to 100 %).
    expect(written.at(-1)).toMatch(/TRAINING\s+step 120\/300\s+loss 0\.5000\s+ETA 0:30$/);
  });

  afterEach(() => {
    vi.useRealTimers();
  });

  it('writes plain lines elsewhere: each stage change, and the last state at the end', () => {
    const { written, stream: log } = stream(false);
    const line = new ProgressLine(log);
    line.update(event(1, 'LOADING', 0));
    line.update(event(2, 'TRAINING', 0.3, { step: 1, totalSteps: 3 }));
    line.update(event(3, 'TRAINING', 0.31, { step: 2, totalSteps: 3 })); // within a second: held back
    line.update(event(4, 'TRAINING', 0.32, { step: 3, totalSteps: 3 }));
    line.finish();
    expect(written.every((text) => text.endsWith('\n') && !text.includes('\r'))).toBe(true);
    expect(written.map((text) => /LOADING|step \d/.exec(text)?.[0])).toEqual(['LOADING', 'step 1', 'step 3']);
  });

  it('shows where a layer-streamed pass is and the bytes it has read', () => {
    const { written, stream: tty } = stream(true);
    const line = new ProgressLine(tty);
    line.update(event(1, 'PROFILING', 0.1, { layer: 3, layers: 32, bytesRead: 1.7e9 }));
    expect(written.at(-1)).toMatch(/PROFILING\s+layer 3\/31\s+1\.7 GB read/);
    line.update(event(2, 'COLLECTING', 0.2, { layer: -1, layers: 32, bytesRead: 2.6e8 }));
    expect(written.at(-1)).toMatch(/COLLECTING\s+embeddings\s+260 MB read/);
    line.update(event(3, 'EVALUATING', 0.9, { layer: 32, layers: 32, bytesRead: 1.35e10 }));
    expect(written.at(-1)).toMatch(/EVALUATING\s+LM head\s+13\.5 GB read/);
  });

  it("shows a fast stage's last state before the next stage's first line", () => {
    const { written, stream: log } = stream(false);
    const line = new ProgressLine(log);
    line.update(event(1, 'TRAINING', 0.3, { message: 'training: onnxruntime cpu, 2 threads' }));
    line.update(event(2, 'TRAINING', 0.5, { step: 150, totalSteps: 300, loss: 0.4 })); // within a second: held back
    line.update(event(3, 'TRAINING', 0.85, { step: 300, totalSteps: 300, loss: 0.2 }));
    line.update(event(4, 'ASSEMBLING', 0.85));
    line.finish();
    expect(written.map((text) => /ASSEMBLING|step \d+/.exec(text)?.[0] ?? 'TRAINING')).toEqual(['TRAINING', 'step 300', 'ASSEMBLING']);
  });
});

describe('the end of a watch', () => {
  it('draws a SUCCEEDED plan at 100 % even when its last event said 97 %, with the time taken', () => {
    let now = 0;
    const { written, stream: log } = stream(false);
    const line = new ProgressLine(log, () => now);
    line.update(event(1, 'UPLOADING', 0.97));
    now = 125_000;
    line.end('SUCCEEDED', 0.97);
    expect(written.at(-1)).toBe('[####################] 100%  SUCCEEDED  in 2:05\n');
  });

  it('draws a failed plan where it stopped', () => {
    const { written, stream: log } = stream(false);
    const line = new ProgressLine(log, () => 0);
    line.end('FAILED', 0.4);
    expect(written.at(-1)).toBe('[########............]  40%  FAILED  in 0:00\n');
  });
});

describe('planView', () => {
  const dryRun = {
    id: 'p1', status: 'SUCCEEDED', stage: 'DONE', progress: 1, model: { id: 'm1', name: 'stories260K' }, layersToPrune: 2, startLayer: null,
    replacement: 'LAYER', dryRun: true, removedLayers: [], originalParameters: 260032, prunedParameters: null, outputUri: null, error: null, errorCode: null,
    profiles: [profile(1, [0.77, 0.86, 0.88, 0.88, 0.85]), profile(2, [0.561, 0.732, 0.7492, 0.73])],
  } as unknown as Plan;

  it("names the block a dry run would remove, not a replacement it does not train", () => {
    const text = planView(dryRun);
    expect(text).toContain('  would remove    layers 2-3 (0-based; cosine 0.7492, most redundant block of this size)');
    expect(text).toContain('2 layer(s), dry run (nothing trained or removed)');
    expect(text).not.toMatch(/replacement|removed layers  —/);
  });

  it('names the start layer asked for, with the best one beside it', () => {
    expect(planView({ ...dryRun, startLayer: 0 } as Plan)).toContain('would remove    layers 0-1 (0-based; cosine 0.5610, the start layer asked for; best is 2-3)');
  });
});

describe('format', () => {
  it('rounds floating-point noise away in --json output, keeping measured digits', () => {
    expect(JSON.parse(jsonForDisplay({ stability: 1.0000000000000002, cosine: 0.9195416768391927, steps: 300, none: null }))).toEqual({ stability: 1, cosine: 0.919541676839, steps: 300, none: null });
  });

  it('aligns table columns, numbers to the right', () => {
    expect(table(['NAME', 'PARAMETERS'], [['a', '260,032'], ['long name', '9']])).toBe('NAME       PARAMETERS\na             260,032\nlong name           9');
  });

  it('formats durations', () => {
    expect([duration(5), duration(75), duration(3725)]).toEqual(['0:05', '1:15', '1:02:05']);
  });
});
