/** Small order statistics used by the runner and features (pure). */

export function mean (xs: readonly number[]): number {
  if (xs.length === 0) return 0
  let s = 0
  for (const x of xs) s += x
  return s / xs.length
}

/**
 * Percentile with linear interpolation between closest ranks (numpy's default), p in [0, 100].
 * Empty input gives 0 so that a metric is always a finite number.
 */
export function percentile (xs: readonly number[], p: number): number {
  if (xs.length === 0) return 0
  const s = [...xs].sort((a, b) => a - b)
  const q = Math.min(100, Math.max(0, p)) / 100 * (s.length - 1)
  const lo = Math.floor(q)
  const hi = Math.ceil(q)
  return s[lo] + (s[hi] - s[lo]) * (q - lo)
}

export function median (xs: readonly number[]): number {
  return percentile(xs, 50)
}

/** Relative spread (max - min) / median; 0 for fewer than two values or a zero median. */
export function spread (xs: readonly number[]): number {
  if (xs.length < 2) return 0
  const m = median(xs)
  if (m === 0) return 0
  return (Math.max(...xs) - Math.min(...xs)) / m
}
