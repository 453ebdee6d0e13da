/**
 * Viridis (matplotlib's default sequential map): perceptually uniform and readable with the common
 * colour-vision deficiencies and in greyscale. 11 stops, interpolated linearly.
 */
const STOPS: readonly [number, number, number][] = [
  [68, 1, 84], [72, 36, 117], [65, 68, 135], [53, 95, 141], [42, 120, 142], [33, 145, 140],
  [34, 168, 132], [68, 190, 112], [122, 209, 81], [189, 223, 38], [253, 231, 37],
];

/** The colour of t in [0, 1] (clamped), as [r, g, b]. */
function viridisRgb(t: number): [number, number, number] {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(x));
  const f = x - i;
  const [a, b] = [STOPS[i], STOPS[i + 1]];
  const channel = (k: number) => Math.round(a[k] + (b[k] - a[k]) * f);
  return [channel(0), channel(1), channel(2)];
}

/** The colour of t in [0, 1] (clamped), as rgb(). */
export function viridis(t: number): string {
  return `rgb(${viridisRgb(t).join(', ')})`;
}

/** Black or white text on viridis(t): whichever contrasts more (WCAG relative luminance). */
export function textOn(t: number): string {
  const [r, g, b] = viridisRgb(t).map((c) => {
    const v = c / 255;
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  });
  const luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b;
  return (luminance + 0.05) / 0.05 >= 1.05 / (luminance + 0.05) ? '#000' : '#fff';
}

/** The gradient of the legend. */
export function viridisGradient(): string {
  return `linear-gradient(to right, ${STOPS.map(([r, g, b]) => `rgb(${r}, ${g}, ${b})`).join(', ')})`;
}
