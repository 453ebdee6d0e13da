/**
 * The importance heat map: one row per block size n, one column per start layer s, coloured by the raw
 * cosine of h[s] and h[s+n] (viridis over the map's own range: the higher, the more redundant the
 * block). Each cell is a button — hover or focus shows cosine, angular distance and the layers the block
 * covers; the best (most redundant) start of each size carries a star.
 */
import { useMemo, useState } from 'react';
import type { LayerImportance } from '@streamline/sdk/browser';
import { formatNumber, layerSpan } from '../format.js';
import { ScrollTable } from './Table.js';
import { textOn, viridis, viridisGradient } from './viridis.js';

export interface BlockChoice {
  readonly size: number;
  readonly start: number;
}

interface Cell extends BlockChoice {
  readonly cosine: number;
  readonly angular: number | null;
  readonly best: boolean;
}

export function Heatmap({
  profiles,
  numLayers,
  selected,
  onSelect,
}: {
  profiles: readonly LayerImportance[];
  numLayers: number;
  selected?: BlockChoice | null;
  onSelect?: (choice: BlockChoice) => void;
}) {
  const { rows, min, max } = useMemo(() => heatmapRows(profiles), [profiles]);
  const [hovered, setHovered] = useState<Cell | null>(null);
  if (rows.length === 0) return <p>No importance profile yet: run a dry run to measure one.</p>;
  const scale = (cosine: number) => (max > min ? (cosine - min) / (max - min) : 1);
  const starts = Array.from({ length: numLayers }, (_, s) => s);
  return (
    <figure className="heatmap-figure">
      <ScrollTable label="Importance heat map" className="heatmap" describedBy="heatmap-caption" columns={['size \\ start', ...starts]}>
        {rows.map(({ size, cells }) => (
          <tr key={size}>
            <th scope="row">{size}</th>
            {starts.map((s) => {
              const cell = cells[s];
              if (!cell) return <td key={s} className="empty" />;
              const t = scale(cell.cosine);
              const isSelected = selected?.size === size && selected.start === s;
              const label = `block size ${size}, start layer ${s} (${layerSpan(s, size)}): cosine `;
              return (
                <td key={s}>
                  <button
                    type="button"
                    className={`cell${isSelected ? ' selected' : ''}`}
                    style={{ background: viridis(t), color: textOn(t) }}
                    aria-pressed={onSelect ? isSelected : undefined}
                    data-size={size}
                    data-start={s}
                    data-best={cell.best ? 'true' : undefined}
                    onMouseEnter={() => setHovered(cell)}
                    onMouseLeave={() => setHovered(null)}
                    onFocus={() => setHovered(cell)}
                    onBlur={() => setHovered(null)}
                    onClick={() => onSelect?.({ size, start: s })}
                  >
                    {/* the accessible name contains the visible text: "block size 2, start layer 2 (layers 2–3): cosine 0.75, best" */}
                    <span className="visually-hidden">{label}</span>
                    {cell.cosine.toFixed(2)}
                    {cell.best ? (
                      <>
                        <span aria-hidden="true">★</span>
                        <span className="visually-hidden">, best for this size</span>
                      </>
                    ) : null}
                  </button>
                </td>
              );
            })}
          </tr>
        ))}
      </ScrollTable>
      <div className="heatmap-tooltip" role="status" aria-live="polite">
        {hovered ? (
          <>
            <strong>
              Block of {hovered.size} at start {hovered.start}
            </strong>{' '}
            — {layerSpan(hovered.start, hovered.size)}; cosine {formatNumber(hovered.cosine)}; angular distance {formatNumber(hovered.angular)}
            {hovered.best ? '; the best block of this size' : ''}
          </>
        ) : (
          'Hover or focus a cell for its cosine, angular distance and layers.'
        )}
      </div>
      <figcaption id="heatmap-caption">
        <span className="legend">
          <span>{formatNumber(min, 3)}</span>
          <span className="legend-bar" style={{ background: viridisGradient() }} aria-hidden="true" />
          <span>{formatNumber(max, 3)}</span>
        </span>{' '}
        Raw cosine of a block's input and output hidden states (the reference code prints 0.5 + 0.5·cos); ★ marks the
        most redundant start of each size.
      </figcaption>
    </figure>
  );
}

/** The COSINE profiles as rows (one per block size), with each cell's angular distance beside it. */
export function heatmapRows(profiles: readonly LayerImportance[]): { rows: { size: number; cells: Record<number, Cell> }[]; min: number; max: number } {
  const angular = new Map(profiles.filter((p) => p.metric === 'ANGULAR_DISTANCE').map((p) => [p.blockSize, p]));
  const rows = profiles
    .filter((p) => p.metric === 'COSINE')
    .sort((a, b) => a.blockSize - b.blockSize)
    .map((profile) => {
      const cells: Record<number, Cell> = {};
      const angles = angular.get(profile.blockSize)?.scores;
      for (const score of profile.scores) {
        cells[score.startLayer] = {
          size: profile.blockSize,
          start: score.startLayer,
          cosine: score.score,
          angular: angles?.find((a) => a.startLayer === score.startLayer)?.score ?? null,
          best: score.startLayer === profile.best.startLayer,
        };
      }
      return { size: profile.blockSize, cells };
    });
  const all = rows.flatMap((row) => Object.values(row.cells).map((cell) => cell.cosine));
  return { rows, min: Math.min(...all), max: Math.max(...all) };
}
