/**
 * Training and validation loss against the optimizer step, drawn by uPlot and redrawn in place
 * (setData) as progress events arrive. `data-points` on the wrapper counts the steps drawn.
 */
import { useEffect, useRef } from 'react';
import uPlot from 'uplot';

export interface LossPoint {
  readonly step: number;
  readonly loss: number | null;
  readonly validationLoss: number | null;
}

const BLUE = '#0072b2';
const VERMILLION = '#d55e00';

export function LossChart({ points }: { points: readonly LossPoint[] }) {
  const container = useRef<HTMLDivElement>(null);
  const chart = useRef<uPlot | null>(null);

  useEffect(() => {
    const element = container.current!;
    const plot = new uPlot(
      {
        width: Math.max(280, element.clientWidth),
        height: 260,
        scales: { x: { time: false } },
        axes: [{ label: 'step', stroke: '#1a1a1a' }, { label: 'MSE loss', stroke: '#1a1a1a' }],
        series: [
          { label: 'step' },
          { label: 'training loss', stroke: BLUE, width: 2, spanGaps: true },
          { label: 'validation loss', stroke: VERMILLION, width: 2, dash: [6, 4], spanGaps: true, points: { show: true } },
        ],
      },
      [[], [], []],
      element,
    );
    chart.current = plot;
    const resize = new ResizeObserver(() => plot.setSize({ width: Math.max(280, element.clientWidth), height: 260 }));
    resize.observe(element);
    return () => {
      resize.disconnect();
      plot.destroy();
      chart.current = null;
    };
  }, []);

  useEffect(() => {
    chart.current?.setData([points.map((p) => p.step), points.map((p) => p.loss), points.map((p) => p.validationLoss)]);
  }, [points]);

  return (
    <figure className="loss-chart" data-points={points.length}>
      <div ref={container} role="img" aria-label={`Loss curve: ${points.length} steps so far${points.length ? `, last training loss ${points[points.length - 1].loss ?? '—'}` : ''}`} />
      <figcaption>Training loss (solid) and validation loss (dashed, where measured) of the replacement, per optimizer step.</figcaption>
    </figure>
  );
}
