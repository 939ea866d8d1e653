// Percentiles, medians and the spread of repeated runs.

/** Nearest-rank percentile of unsorted samples (copied, not changed). */
export function percentile(samples: ArrayLike<number>, p: number): number {
  if (samples.length === 0) return NaN;
  const sorted = Float64Array.from(samples).sort();
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export interface Percentiles {
  p50: number;
  p95: number;
  p99: number;
  n: number;
}

export function percentiles(samples: ArrayLike<number>): Percentiles {
  if (samples.length === 0) return { p50: NaN, p95: NaN, p99: NaN, n: 0 };
  const sorted = Float64Array.from(samples).sort();
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
  return { p50: at(50), p95: at(95), p99: at(99), n: sorted.length };
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/** (max - min) / median of repeated measurements, in percent: how noisy a figure was. */
export function spreadPercent(values: readonly number[]): number {
  if (values.length < 2) return NaN;
  const m = median(values);
  return m === 0 ? NaN : ((Math.max(...values) - Math.min(...values)) / m) * 100;
}

/** A figure from R repeats: the median, and how far apart the repeats were. */
export interface Repeated {
  median: number;
  spread: number;
  runs: number[];
}

export function repeated(runs: number[]): Repeated {
  return { median: median(runs), spread: spreadPercent(runs), runs };
}
