/** Order statistics for benchmark samples. */

/** The q-quantile (0..1) of samples, nearest rank; NaN for none. */
export function quantile(samples: readonly number[], q: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

/** The median of samples (the upper one of the middle two for an even count). */
export function median(samples: readonly number[]): number {
  return quantile(samples, 0.5);
}
