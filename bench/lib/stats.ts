// Percentiles, medians and the spread of repeated runs.

/** Nearest rank of percentile p in sorted samples. */
function atRank(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** Nearest-rank percentile of unsorted samples (copied, not changed). */
export function percentile(samples: ArrayLike<number>, p: number): number {
  return samples.length === 0 ? NaN : atRank(Float64Array.from(samples).sort(), p);
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
  return { p50: atRank(sorted, 50), p95: atRank(sorted, 95), p99: atRank(sorted, 99), n: sorted.length };
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/** Repeated rounds of one path as one figure: the median of each percentile, and every sample counted. */
export function medianOfRounds(rounds: readonly Percentiles[]): Percentiles {
  return {
    p50: median(rounds.map((r) => r.p50)),
    p95: median(rounds.map((r) => r.p95)),
    p99: median(rounds.map((r) => r.p99)),
    n: rounds.reduce((sum, r) => sum + r.n, 0),
  };
}

/** (max - min) / median of repeated measurements, in percent: how noisy a figure was. */
export function spreadPercent(values: readonly number[]): number {
  if (values.length < 2) return NaN;
  const m = median(values);
  return m === 0 ? NaN : ((Math.max(...values) - Math.min(...values)) / m) * 100;
}
