/**
 * The console's pure parts, without a browser: the heat map's rows (one per block size, the best start
 * marked, angular distance paired by start), viridis text that stays readable on every cell, and the
 * report's CSV, and the Compare page's points for sweep candidates.
 */
import { describe, expect, it } from 'vitest';
import type { LayerImportance, Plan } from '@streamline/sdk/browser';
import { heatmapRows } from '../src/components/Heatmap.js';
import { textOn, viridis } from '../src/components/viridis.js';
import { reportCsv } from '../src/pages/report-files.js';
import { candidatePoints, tableRows, type Candidate } from '../src/pages/compare-points.js';

const profile = (metric: LayerImportance['metric'], blockSize: number, scores: number[], best: number): LayerImportance => ({
  id: `${metric}-${blockSize}`,
  metric,
  blockSize,
  samples: 32,
  seqLen: 256,
  scores: scores.map((score, s) => ({ startLayer: s, endLayer: s + blockSize - 1, score })),
  best: { startLayer: best, endLayer: best + blockSize - 1, score: scores[best] },
});

describe('heatmapRows', () => {
  it('has one row per block size, the best start marked, and each cell’s angular distance', () => {
    const { rows, min, max } = heatmapRows([
      profile('COSINE', 2, [0.56, 0.73, 0.75, 0.73], 2),
      profile('ANGULAR_DISTANCE', 2, [0.31, 0.24, 0.22, 0.24], 2),
      profile('COSINE', 1, [0.77, 0.86, 0.88, 0.88, 0.85], 2),
      profile('BLOCK_INFLUENCE', 1, [0.23, 0.14, 0.12, 0.12, 0.15], 2),
    ]);
    expect(rows.map((row) => row.size)).toEqual([1, 2]);
    expect(Object.values(rows[1].cells).filter((cell) => cell.best).map((cell) => cell.start)).toEqual([2]);
    expect(rows[1].cells[2]).toMatchObject({ cosine: 0.75, angular: 0.22 });
    expect(rows[0].cells[0].angular).toBeNull(); // no angular profile for size 1
    expect([min, max]).toEqual([0.56, 0.88]);
  });
});

describe('viridis', () => {
  const luminance = (rgb: string) => {
    const [r, g, b] = rgb.match(/\d+/g)!.map((c) => {
      const v = Number(c) / 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  it('runs dark to light, with cell text at WCAG AA contrast (4.5:1) everywhere', () => {
    expect(luminance(viridis(0))).toBeLessThan(luminance(viridis(1)));
    for (let t = 0; t <= 1; t += 0.01) {
      const background = luminance(viridis(t));
      const text = textOn(t) === '#000' ? 0 : 1;
      const contrast = (Math.max(background, text) + 0.05) / (Math.min(background, text) + 0.05);
      expect(contrast, `t = ${t.toFixed(2)}`).toBeGreaterThanOrEqual(4.5);
    }
  });
});

describe('reportCsv', () => {
  it('has one row per measurement, quoting names with commas', () => {
    const plan = {
      originalParameters: 260032,
      prunedParameters: 214592,
      stability: {
        id: 's',
        stability: 0.9,
        hiddenStateCosine: 0.89,
        parameterReduction: 0.175,
        perplexity: [{ dataset: 'calibration data (held-out windows)', tokens: 4080, original: 4.3, pruned: 8.4 }],
        tasks: [{ task: 'arc, easy', samples: 10, accuracyOriginal: 0.5, accuracyPruned: 0.4, agreement: 0.8, stability: 0.7 }],
      },
    } as unknown as Plan;
    expect(reportCsv(plan).split('\n')).toEqual([
      'measure,dataset_or_task,original,pruned,agreement,stability,samples_or_tokens',
      'perplexity,calibration data (held-out windows),4.3,8.4,,,4080',
      'accuracy,"arc, easy",0.5,0.4,0.8,0.7,10',
      'parameters,,260032,214592,,,',
      'parameter_reduction,,,0.175,,,',
      'stability,,,,,0.9,',
      'hidden_state_cosine,,,0.89,,,',
      '',
    ]);
  });
});

describe('the Compare page', () => {
  const candidate = (id: string, over: Partial<Candidate>): Candidate => ({
    id,
    status: 'DONE',
    start: 2,
    blockSize: 2,
    replacement: 'LAYER',
    iterative: false,
    removedLayers: [2, 3],
    parametersBefore: 1000,
    parametersAfter: 800,
    perplexityOriginal: 4.3,
    perplexity: 7.4,
    trainingLoss: 0.1,
    validationLoss: 0.1,
    pareto: true,
    tasks: [],
    ...over,
  });
  const sweep = { id: 'p1', candidates: [candidate('n2-s2-LAYER', {}), candidate('n1-iterative', { iterative: true, removedLayers: [3], parametersAfter: 900, perplexity: 5.1, pareto: false }), candidate('n3-s1-LAYER', { status: 'CANCELLED', perplexity: null, parametersAfter: null })] } as unknown as Plan;

  it('plots each finished sweep candidate by the share of parameters it removes, the cancelled ones not at all', () => {
    expect(candidatePoints(sweep, 'perplexity')).toEqual([
      { id: 'p1/n2-s2-LAYER', label: 'LAYER, layers 2, 3 (Pareto)', removed: expect.closeTo(0.2, 12), value: 7.4 },
      { id: 'p1/n1-iterative', label: 'one at a time, layers 3', removed: expect.closeTo(0.1, 12), value: 5.1 },
    ]);
    // no task scores: no accuracy points
    expect(candidatePoints(sweep, 'accuracy')).toEqual([]);
  });

  it('lists one row per candidate of a sweep and one per plain plan', () => {
    const plain = { id: 'p2', candidates: [] } as unknown as Plan;
    expect(tableRows([sweep, plain]).map(({ plan, c }) => `${plan.id}:${c?.id ?? '-'}`)).toEqual(['p1:n2-s2-LAYER', 'p1:n1-iterative', 'p1:n3-s1-LAYER', 'p2:-']);
  });
});
