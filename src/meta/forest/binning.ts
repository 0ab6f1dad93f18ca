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
  /**
   * row-major: row i's bins are [i * stride, i * stride + nFeatures); backed by a SharedArrayBuffer.
   * Rows are padded to a multiple of 16 bytes so a tree can copy a row as groups of four int32 words.
   */
  bins: Uint8Array
  stride: number
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
  // Works on the sorted array itself: position i ends a run of equal values when sorted[i] !==
  // sorted[i + 1], with i + 1 values at or below it (no per-value arrays: at 100k mostly distinct
  // values those were a sixth of the binning time)
  let distinct = 1
  for (let i = 1; i < n && distinct <= maxRealBins; i++) if (sorted[i] !== sorted[i - 1]) distinct++
  if (distinct <= maxRealBins) {
    for (let i = 1; i < n; i++) if (sorted[i] !== sorted[i - 1]) edges.push(midpoint(sorted[i - 1], sorted[i]))
    return edges
  }
  // greedy equal-frequency cuts at the first run end reaching the target; a heavy value keeps
  // its own bin instead of being split
  let nextCut = n / maxRealBins
  let i = 0
  while (edges.length < maxRealBins - 1) {
    i = Math.max(i, Math.ceil(nextCut) - 1)
    while (i + 1 < n && sorted[i] === sorted[i + 1]) i++
    if (i + 1 >= n) break
    edges.push(midpoint(sorted[i], sorted[i + 1]))
    // recompute the target from what is left so a few heavy values don't starve the tail
    const cum = i + 1
    nextCut = cum + (n - cum) / (maxRealBins - edges.length)
    i++
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

/**
 * Row stride of a binned matrix with nFeatures features: padded to whole groups of four int32
 * words, so a tree moves a row with an unrolled copy (a short per-word loop cost 5x more).
 */
export function binStride (nFeatures: number): number {
  return (nFeatures + 15) & ~15
}

/** Bin every value of X (row-major number[][]) into a row-major uint8 matrix. */
export function binMatrix (X: number[][], nFeatures: number, maxBins = MAX_BINS): BinnedMatrix {
  const nRows = X.length
  const stride = binStride(nFeatures)
  const bins = new Uint8Array(new SharedArrayBuffer(Math.max(4, nRows * stride)))
  const nBins = new Uint16Array(nFeatures)
  // one pass over the row objects into columns: reading X a column at a time would miss the cache
  // on every row object, twice per feature (measured: most of the binning time at 100k rows)
  const cols = new Float64Array(nRows * nFeatures)
  for (let i = 0; i < nRows; i++) {
    const x = X[i]
    for (let f = 0, o = i; f < nFeatures; f++, o += nRows) cols[o] = x[f]
  }
  const perFeature: number[][] = []
  for (let f = 0; f < nFeatures; f++) {
    const sorted = cols.slice(f * nRows, (f + 1) * nRows).sort() // typed-array sort is numeric and puts NaN last
    let nReal = nRows
    while (nReal > 0 && Number.isNaN(sorted[nReal - 1])) nReal--
    const nan = nReal < nRows
    const edges = quantileEdges(sorted.subarray(0, nReal), maxBins - (nan ? 1 : 0))
    if (nan && nReal > 0) edges.push(Infinity)
    perFeature.push(edges)
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
    for (let i = 0, o = f; i < nRows; i++, o += stride) {
      const v = cols[base + i]
      bins[o] = v !== v ? nanBin : binOf(edges, lo, hi, v) // eslint-disable-line no-self-compare
    }
  }
  return { nRows, nFeatures, bins, stride, nBins, edges, edgeOffset }
}
