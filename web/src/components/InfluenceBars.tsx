/** Per-layer Block Influence (ShortGPT: 1 − cos(h[i], h[i+1])) as bars: the lower, the less the layer changes. */
import type { LayerImportance } from '@streamline/sdk/browser';
import { formatNumber } from '../format.js';

export function InfluenceBars({ profile }: { profile: LayerImportance | undefined }) {
  if (!profile) return null;
  const values = profile.scores.map((s) => s.score);
  const max = Math.max(...values, 1e-9);
  const width = 40 * values.length + 40;
  const height = 170;
  const plot = height - 50;
  return (
    <figure>
      <svg className="bars" width={width} height={height} viewBox={`0 0 ${width} ${height}`} role="img" aria-labelledby="influence-title">
        <title id="influence-title">
          Block Influence per layer: {profile.scores.map((s) => `layer ${s.startLayer} ${formatNumber(s.score, 3)}`).join(', ')}
        </title>
        {profile.scores.map((s, i) => {
          const h = (s.score / max) * plot;
          const x = 30 + i * 40;
          return (
            <g key={s.startLayer}>
              <rect x={x} y={20 + plot - h} width={28} height={h} fill="#35608d" />
              <text x={x + 14} y={20 + plot - h - 4} textAnchor="middle" fontSize="10" fill="#1a1a1a">
                {s.score.toFixed(3)}
              </text>
              <text x={x + 14} y={height - 12} textAnchor="middle" fontSize="11" fill="#1a1a1a">
                {s.startLayer}
              </text>
            </g>
          );
        })}
      </svg>
      <figcaption>Block Influence per layer (1 − cosine of a layer's input and output); x: layer (0-based).</figcaption>
    </figure>
  );
}
