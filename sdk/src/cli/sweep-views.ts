/**
 * A sweep's candidates for the terminal: a table, an ASCII chart of the trade-off (parameters removed
 * against perplexity, the Pareto front in capitals) and CSV. Rows and chart points share their labels
 * (a, b, c …), so a point on the chart is found in the table.
 */
import type { PlanCandidate } from '../types.js';
import { count, fixed, layers, percent, table } from './format.js';

/** Parameters removed as a fraction of the original; null for a cancelled candidate. */
function removedShare(c: PlanCandidate): number | null {
  return c.parametersAfter === null ? null : 1 - c.parametersAfter / c.parametersBefore;
}

/** a … z, then aa, ab …: the candidate's label in the table and on the chart. */
export function candidateLabel(index: number): string {
  return index < 26 ? String.fromCharCode(97 + index) : `${candidateLabel(Math.floor(index / 26) - 1)}${candidateLabel(index % 26)}`;
}

export function candidatesTable(candidates: readonly PlanCandidate[]): string {
  if (!candidates.length) return '(no candidates: the plan is not a finished sweep)';
  const taskNames = [...new Set(candidates.flatMap((c) => c.tasks.map((t) => t.task)))];
  return table(
    ['#', 'CANDIDATE', 'STATUS', 'REMOVED LAYERS', 'REPLACEMENT', 'PARAMETERS', 'REMOVED', 'PPL', 'PPL ORIG', 'TRAIN LOSS', ...taskNames.map((t) => `ACC ${t}`), ...taskNames.map((t) => `STAB ${t}`), 'PARETO'],
    candidates.map((c, i) => {
      const task = (name: string) => c.tasks.find((t) => t.task === name);
      return [
        candidateLabel(i),
        c.id,
        c.status,
        layers(c.removedLayers),
        c.iterative ? 'iterative' : c.replacement,
        count(c.parametersAfter),
        percent(removedShare(c)),
        fixed(c.perplexity, 3),
        fixed(c.perplexityOriginal, 3),
        c.trainingLoss === null ? '—' : c.trainingLoss.toExponential(2),
        ...taskNames.map((t) => percent(task(t)?.accuracy)),
        ...taskNames.map((t) => fixed(task(t)?.stability)),
        c.pareto ? '*' : '',
      ];
    }),
  );
}

const ORIGINAL = '=';

function rank(label: string): number {
  return label === ORIGINAL ? 2 : label === label.toUpperCase() ? 0 : 1;
}

/**
 * Perplexity (up) against parameters removed (right): each candidate is its label, capitalised when it
 * is on the Pareto front; the original model is `=` at 0 % removed. Points that fall on one cell show
 * one label: a Pareto one first.
 */
export function tradeoffChart(candidates: readonly PlanCandidate[], size: { width: number; height: number } = { width: 56, height: 16 }): string {
  const points = candidates
    .map((c, i) => ({ x: removedShare(c), y: c.perplexity, label: c.pareto ? candidateLabel(i).toUpperCase() : candidateLabel(i) }))
    .filter((p): p is { x: number; y: number; label: string } => p.x !== null && p.y !== null);
  const original = candidates.find((c) => c.perplexityOriginal !== null)?.perplexityOriginal ?? null;
  if (original !== null) points.push({ x: 0, y: original, label: ORIGINAL });
  // Where points share a cell, the front wins, then the table's order; the original only shows on a free cell.
  points.sort((a, b) => rank(a.label) - rank(b.label));
  if (!points.length) return '(nothing to chart)';
  const { width, height } = size;
  const xMax = Math.max(...points.map((p) => p.x), 0.01);
  const yMin = Math.min(...points.map((p) => p.y));
  const yMax = Math.max(...points.map((p) => p.y), yMin + 1e-9);
  // Perplexities that span more than tenfold (a collapsed candidate) go on a log scale.
  const log = yMin > 0 && yMax / yMin > 10;
  const scale = (y: number) => (log ? Math.log(y) : y);
  const grid = Array.from({ length: height }, () => Array.from({ length: width }, () => ' '));
  for (const p of points) {
    const col = Math.round((Math.max(0, p.x) / xMax) * (width - 1));
    const row = height - 1 - Math.round(((scale(p.y) - scale(yMin)) / (scale(yMax) - scale(yMin))) * (height - 1));
    if (grid[row][col] === ' ') grid[row][col] = p.label;
  }
  const yLabel = (row: number) => (row === 0 ? yMax : row === height - 1 ? yMin : null);
  const axisWidth = Math.max(fixed(yMax, 2).length, fixed(yMin, 2).length);
  const lines = grid.map((cells, row) => {
    const label = yLabel(row);
    return `${(label === null ? '' : fixed(label, 2)).padStart(axisWidth)} |${cells.join('').trimEnd()}`;
  });
  const xAxis = `${' '.repeat(axisWidth)} +${'-'.repeat(width)}`;
  const xLabels = `${' '.repeat(axisWidth + 2)}${'0%'.padEnd(width - percent(xMax).length)}${percent(xMax)}`;
  return [
    `perplexity (up${log ? ', log scale' : ''}) vs parameters removed (right); CAPITALS = Pareto front, ${ORIGINAL} = original model`,
    ...lines,
    xAxis,
    xLabels,
  ].join('\n');
}

export function candidatesCsv(candidates: readonly PlanCandidate[]): string {
  const taskNames = [...new Set(candidates.flatMap((c) => c.tasks.map((t) => t.task)))];
  const header = ['id', 'status', 'start', 'block_size', 'replacement', 'iterative', 'removed_layers', 'parameters_before', 'parameters_after', 'perplexity_original', 'perplexity', 'training_loss', 'validation_loss', 'pareto', ...taskNames.flatMap((t) => [`accuracy_${t}`, `stability_${t}`])];
  const cell = (value: unknown) => {
    if (value === null || value === undefined) return '';
    const text = String(value);
    return /[",\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  };
  const rows = candidates.map((c) => [
    c.id, c.status, c.start, c.blockSize, c.replacement, c.iterative, c.removedLayers.join(' '), c.parametersBefore, c.parametersAfter, c.perplexityOriginal, c.perplexity, c.trainingLoss, c.validationLoss, c.pareto,
    ...taskNames.flatMap((t) => {
      const task = c.tasks.find((x) => x.task === t);
      return [task?.accuracy, task?.stability];
    }),
  ]);
  return [header, ...rows].map((row) => row.map(cell).join(',')).join('\n');
}
