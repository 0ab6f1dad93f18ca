/**
 * Quantile binning, done once per training set: every feature value becomes a uint8 bin index, so
 * split search is a histogram pass instead of a sort per node.
 *
 * Convention shared by training and prediction: a split "left = bins <= b" is the raw test
 * `x <= edges[f][b]`. NaN gets its own bin after the real ones (when the feature has NaNs), and
 * `NaN <= t` is false, so NaN goes right both when training and when predicting.
 */

/** At most 256 bins per feature, NaN bin included: indices fit a uint8. */
export const MAX_BINS = 256

export interface BinnedMatrix {
  nRows: number
  nFeatures: number
  /** column-major: feature f occupies [f * nRows, (f + 1) * nRows); backed by a SharedArrayBuffer */
  bins: Uint8Array
  /** bins used per feature (>= 1), NaN bin included */
  nBins: Uint16Array
  /**
   * split thresholds: feature f's edges are edges[edgeOffset[f] .. edgeOffset[f] + nBins[f] - 1);
   * edge b separates bin b (x <= edge) from bin b + 1. For a feature with NaNs the last edge is
   * +Infinity (all real values left, NaN right).
   */
  edges: Float64Array
  edgeOffset: Int32Array
}

/** Threshold between two adjacent distinct sorted values a < b; never NaN, always a <= t < b. */
function midpoint (a: number, b: number): number {
  const m = a / 2 + b / 2
  if (Number.isNaN(m)) return 0 // a = -Inf, b = +Inf
  if (m >= b) return a // adjacent floats, or b = +Inf
  if (m < a) return a
  return m
}

/**
 * Cut points for one feature's sorted non-NaN values: every distinct value gets its own bin when
 * there are few (knob columns, categorical codes), otherwise bins of roughly equal counts.
 */
export function quantileEdges (sorted: Float64Array, maxRealBins: number): number[] {
  const n = sorted.length
  const edges: number[] = []
  if (n === 0) return edges
  // distinct values and their counts
  const values: number[] = []
  const counts: number[] = []
  for (let i = 0; i < n; i++) {
    const v = sorted[i]
    if (values.length > 0 && values[values.length - 1] === v) counts[counts.length - 1]++
    else { values.push(v); counts.push(1) }
  }
  if (values.length <= maxRealBins) {
    for (let i = 0; i + 1 < values.length; i++) edges.push(midpoint(values[i], values[i + 1]))
    return edges
  }
  // greedy equal-frequency cuts; a heavy value keeps its own bin instead of being split
  const target = n / maxRealBins
  let cum = 0
  let nextCut = target
  for (let i = 0; i + 1 < values.length && edges.length < maxRealBins - 1; i++) {
    cum += counts[i]
    if (cum >= nextCut) {
      edges.push(midpoint(values[i], values[i + 1]))
      // recompute the target from what is left so a few heavy values don't starve the tail
      const binsLeft = maxRealBins - edges.length
      nextCut = cum + (n - cum) / binsLeft
    }
  }
  return edges
}

/** Bin index of a non-NaN value: the number of edges strictly below it. */
export function binOf (edges: Float64Array, lo: number, hi: number, v: number): number {
  // first index in [lo, hi) with edges[i] >= v
  let a = lo
  let b = hi
  while (a < b) {
    const mid = (a + b) >>> 1
    if (edges[mid] < v) a = mid + 1
    else b = mid
  }
  return a - lo
}

/** Bin every value of X (row-major number[][]) into a column-major uint8 matrix. */
export function binMatrix (X: number[][], nFeatures: number, maxBins = MAX_BINS): BinnedMatrix {
  const nRows = X.length
  const bins = new Uint8Array(new SharedArrayBuffer(Math.max(1, nRows * nFeatures)))
  const nBins = new Uint16Array(nFeatures)
  const perFeature: number[][] = []
  const col = new Float64Array(nRows)
  const hasNaN: boolean[] = []
  for (let f = 0; f < nFeatures; f++) {
    for (let i = 0; i < nRows; i++) col[i] = X[i][f]
    const sorted = col.slice().sort() // typed-array sort is numeric and puts NaN last
    let nReal = nRows
    while (nReal > 0 && Number.isNaN(sorted[nReal - 1])) nReal--
    const nan = nReal < nRows
    const edges = quantileEdges(sorted.subarray(0, nReal), maxBins - (nan ? 1 : 0))
    if (nan && nReal > 0) edges.push(Infinity)
    perFeature.push(edges)
    hasNaN.push(nan)
    nBins[f] = edges.length + 1
  }
  const edgeOffset = new Int32Array(nFeatures)
  let total = 0
  for (let f = 0; f < nFeatures; f++) { edgeOffset[f] = total; total += perFeature[f].length }
  const edges = new Float64Array(total)
  for (let f = 0; f < nFeatures; f++) edges.set(perFeature[f], edgeOffset[f])
  for (let f = 0; f < nFeatures; f++) {
    const lo = edgeOffset[f]
    const hi = lo + perFeature[f].length
    const nanBin = nBins[f] - 1
    const base = f * nRows
    for (let i = 0; i < nRows; i++) {
      const v = X[i][f]
      bins[base + i] = Number.isNaN(v) ? nanBin : binOf(edges, lo, hi, v)
    }
  }
  return { nRows, nFeatures, bins, nBins, edges, edgeOffset }
}
