/** Small order statistics used by the runner and features (pure). */

export function mean (xs: readonly number[]): number {
  if (xs.length === 0) return 0
  let s = 0
  for (const x of xs) s += x
  return s / xs.length
}

/**
 * Percentile, p in [0, 100]. 'linear' interpolates between closest ranks (numpy's default);
 * 'nearest-rank' is the smallest value with at least p % of the sample at or below it (always a
 * value that was measured: what latency reports quote). Empty input gives 0 so that a metric is
 * always a finite number.
 */
export function percentile (xs: readonly number[], p: number, method: 'linear' | 'nearest-rank' = 'linear'): number {
  if (xs.length === 0) return 0
  const s = [...xs].sort((a, b) => a - b)
  const pc = Math.min(100, Math.max(0, p))
  if (method === 'nearest-rank') return s[Math.min(s.length - 1, Math.max(0, Math.ceil(pc / 100 * s.length) - 1))]
  const q = pc / 100 * (s.length - 1)
  const lo = Math.floor(q)
  const hi = Math.ceil(q)
  return s[lo] + (s[hi] - s[lo]) * (q - lo)
}

/**
 * The middle value, or the mean of the two middle values, computed as such: interpolating
 * (percentile 50) can differ from (a + b) / 2 in the last bit, and aggregated medians feed the
 * training-set hash that peers compare. `ifEmpty` is what an empty sample gives (0 by default,
 * like percentile; NaN where "no value" must stay visible, e.g. a cell without ok records).
 */
export function median (xs: readonly number[], ifEmpty = 0): number {
  if (xs.length === 0) return ifEmpty
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2
}

/** Relative spread (max - min) / median; 0 for fewer than two values or a zero median. */
export function spread (xs: readonly number[]): number {
  if (xs.length < 2) return 0
  const m = median(xs)
  if (m === 0) return 0
  return (Math.max(...xs) - Math.min(...xs)) / m
}
