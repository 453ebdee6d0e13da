/**
 * Block importance as a terminal heat map: one row per block size n, one column per start layer s,
 * each cell the block's score. On a colour terminal the cell's background runs from blue (low) to red
 * (high redundancy); otherwise a shade character (░▒▓█) beside each number carries the same ranking. The row's
 * best block (the one the engine would prune) is marked with `*`.
 */
import type { LayerImportance } from '../types.js';
import { fixed } from './format.js';

const SHADES = [' ', '░', '▒', '▓', '█'];
// xterm-256 colours from cold to hot.
const GRADIENT = [17, 19, 25, 31, 37, 71, 107, 143, 179, 173, 167, 160];

// Shading always means "more redundant" (a better block to prune): high cosine, low distance or influence.
const HIGHER_IS_REDUNDANT: Record<string, boolean> = { COSINE: true, ANGULAR_DISTANCE: false, BLOCK_INFLUENCE: false };

const METRIC_NOTES: Record<string, string> = {
  COSINE: 'raw mean cos(h[s], h[s+n]) in [-1, 1] (the reference code prints 0.5 + 0.5·cos); higher = the block changes less',
  ANGULAR_DISTANCE: 'arccos(cos)/π in [0, 1]; lower = the block changes less',
  BLOCK_INFLUENCE: '1 − cos(h[i], h[i+1]) per layer; lower = the layer changes less',
};

export function heatmap(profiles: readonly LayerImportance[], options: { color: boolean }): string {
  const rows = [...profiles].sort((a, b) => a.blockSize - b.blockSize);
  if (!rows.length) return '(no importance profiles yet)';
  const all = rows.flatMap((p) => p.scores.map((s) => s.score));
  const [low, high] = [Math.min(...all), Math.max(...all)];
  const higherIsRedundant = HIGHER_IS_REDUNDANT[rows[0].metric] ?? true;
  const level = (score: number) => {
    const fraction = high > low ? (score - low) / (high - low) : 1;
    return higherIsRedundant ? fraction : 1 - fraction;
  };
  const starts = Math.max(...rows.map((p) => p.scores.length ? Math.max(...p.scores.map((s) => s.startLayer)) + 1 : 0));

  const cellWidth = 9;
  const header = `${'n \\ s'.padEnd(6)}${Array.from({ length: starts }, (_, s) => String(s).padStart(cellWidth - 2).padEnd(cellWidth)).join('')}`;
  const lines = rows.map((profile) => {
    const cells = Array.from({ length: starts }, (_, start) => {
      const entry = profile.scores.find((s) => s.startLayer === start);
      if (!entry) return ' '.repeat(cellWidth);
      const mark = entry.startLayer === profile.best.startLayer ? '*' : ' ';
      const text = `${fixed(entry.score, 3).padStart(6)}${mark}`;
      if (options.color) return ` ${paint(text, level(entry.score))} `;
      return ` ${text}${SHADES[Math.round(level(entry.score) * (SHADES.length - 1))]}`;
    });
    return `${String(profile.blockSize).padEnd(6)}${cells.join('')}`.trimEnd();
  });
  const metric = rows[0].metric;
  return [
    `${metric}: ${METRIC_NOTES[metric] ?? ''}`,
    `rows: block size n; columns: start layer s (0-based; the block is layers s..s+n-1); * = best block for its size;`,
    `shading: ${options.color ? 'red' : '█'} = most redundant (best to prune), ${options.color ? 'blue' : 'blank'} = least`,
    header.trimEnd(),
    ...lines,
  ].join('\n');
}

function paint(text: string, level: number): string {
  const colour = GRADIENT[Math.round(level * (GRADIENT.length - 1))];
  return `\x1b[48;5;${colour}m\x1b[97m${text}\x1b[0m`;
}
