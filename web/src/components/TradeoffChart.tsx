/** Finished plans as points: parameters removed (x) against a quality measure (y). */
import { formatNumber, formatPercent } from '../format.js';

export interface TradeoffPoint {
  readonly id: string;
  readonly label: string;
  readonly removed: number;
  readonly value: number;
}

const COLOURS = ['#0072b2', '#d55e00', '#009e73', '#cc79a7', '#56b4e9', '#e69f00'];

export function TradeoffChart({ points, measure }: { points: readonly TradeoffPoint[]; measure: string }) {
  if (points.length === 0) return <p>No finished plan has this measure yet.</p>;
  const [width, height, pad] = [560, 300, 48];
  const xs = points.map((p) => p.removed);
  const ys = points.map((p) => p.value);
  const [x0, x1] = [Math.min(0, ...xs), Math.max(...xs) * 1.1 || 1];
  const [yMin, yMax] = [Math.min(...ys), Math.max(...ys)];
  const [y0, y1] = yMin === yMax ? [yMin * 0.9, yMax * 1.1 || 1] : [yMin - (yMax - yMin) * 0.1, yMax + (yMax - yMin) * 0.1];
  const x = (v: number) => pad + ((v - x0) / (x1 - x0)) * (width - 2 * pad);
  const y = (v: number) => height - pad - ((v - y0) / (y1 - y0)) * (height - 2 * pad);
  const kinds = [...new Set(points.map((p) => p.label))];
  return (
    <figure>
      <svg className="tradeoff" viewBox={`0 0 ${width} ${height}`} role="img" aria-labelledby="tradeoff-title">
        <title id="tradeoff-title">
          {measure} against parameters removed: {points.map((p) => `${p.id} (${p.label}) ${formatPercent(p.removed)} removed, ${formatNumber(p.value, 3)}`).join('; ')}
        </title>
        <line x1={pad} y1={height - pad} x2={width - pad} y2={height - pad} stroke="#1a1a1a" />
        <line x1={pad} y1={pad} x2={pad} y2={height - pad} stroke="#1a1a1a" />
        <text x={width / 2} y={height - 10} textAnchor="middle" fontSize="12" fill="#1a1a1a">
          parameters removed
        </text>
        <text x={14} y={height / 2} textAnchor="middle" fontSize="12" fill="#1a1a1a" transform={`rotate(-90 14 ${height / 2})`}>
          {measure}
        </text>
        {[x0, (x0 + x1) / 2, x1].map((v) => (
          <text key={`x${v}`} x={x(v)} y={height - pad + 16} textAnchor="middle" fontSize="11" fill="#1a1a1a">
            {formatPercent(v, 0)}
          </text>
        ))}
        {[y0, (y0 + y1) / 2, y1].map((v) => (
          <text key={`y${v}`} x={pad - 4} y={y(v) + 4} textAnchor="end" fontSize="11" fill="#1a1a1a">
            {formatNumber(v, 2)}
          </text>
        ))}
        {points.map((p) => (
          <circle key={p.id} cx={x(p.removed)} cy={y(p.value)} r={6} fill={COLOURS[kinds.indexOf(p.label) % COLOURS.length]} stroke="#1a1a1a" />
        ))}
      </svg>
      <figcaption className="legend-list">
        {kinds.map((kind, i) => (
          <span key={kind} className={`swatch swatch-${i % COLOURS.length}`}>
            {kind}
          </span>
        ))}
      </figcaption>
    </figure>
  );
}
