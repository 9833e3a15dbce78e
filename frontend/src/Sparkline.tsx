/** A small line of changes per minute, oldest first. */
export function Sparkline({ perMinute }: { perMinute: readonly number[] }) {
  const width = 120;
  const height = 28;
  const highest = Math.max(1, ...perMinute);
  const step = perMinute.length > 1 ? width / (perMinute.length - 1) : width;
  const points = perMinute.map((n, i) => `${(i * step).toFixed(1)},${(height - 2 - (n / highest) * (height - 4)).toFixed(1)}`);
  const total = perMinute.reduce((sum, n) => sum + n, 0);
  const label = `${total} ${total === 1 ? 'change' : 'changes'} in the last ${perMinute.length} minutes; ${perMinute.at(-1) ?? 0} in the last minute`;
  return (
    <figure className="sparkline">
      <svg role="img" aria-label={label} viewBox={`0 0 ${width} ${height}`} width={width} height={height}>
        <polyline points={points.join(' ')} fill="none" stroke="currentColor" strokeWidth="2" />
      </svg>
      <figcaption>changes per minute</figcaption>
    </figure>
  );
}
