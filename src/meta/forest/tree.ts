/**
 * One regression tree grown on the binned matrix (pure: no I/O, no globals), used both in-thread
 * and inside the worker threads. Everything a tree depends on is (data, params, seed), which is
 * what makes the forest deterministic whatever the number of workers.
 */
import { createRng } from '../../util/random.js'
import { binStride, MAX_BINS } from './binning.js'

export interface TreeData {
  nRows: number
  nFeatures: number
  /** row-major bins, binStride(nFeatures) bytes per row (BinnedMatrix.bins) */
  bins: Uint8Array
  nBins: Uint16Array
  y: Float64Array
}

export interface TreeParams {
  /** features examined per split (at least this many non-constant ones, as sklearn does) */
  mtry: number
  maxDepth: number
  /** minimum bootstrap weight (= samples counted with repetition) in each leaf */
  minSamplesLeaf: number
  /** bootstrap sample (with replacement); false trains every tree on all rows */
  bootstrap: boolean
  /** rows drawn per tree when bootstrapping (ForestOptions.sampleSize); 0 = as many as rows */
  sampleSize: number
  /** keep full-feature histograms down the tree and derive the larger child by subtraction */
  subtraction: boolean
}

/** Preorder flat tree: the left child of internal node i is i + 1. */
export interface TreeArrays {
  /** split feature, -1 for a leaf */
  feature: Int32Array
  /** split bin (left = bins <= bin); the raw threshold is the binning's edge for it */
  bin: Uint8Array
  /** index of the right child (internal nodes) */
  right: Int32Array
  /** leaf value (float32: what snapshots store, so a reloaded forest predicts identically) */
  value: Float32Array
}

/** Per-tree seed: a forest seed and a tree index map to an independent stream. */
export function treeSeed (seed: number, tree: number): number {
  let h = (seed ^ Math.imul(tree + 1, 0x9e3779b1)) >>> 0
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0
  return (h ^ (h >>> 16)) >>> 0
}

interface Pending {
  start: number
  end: number
  depth: number
  /** node index of the parent whose `right` must point here; -1 for the root or a left child */
  patchRight: number
  /** full histograms (count, sum) for every feature, when carried down the subtraction chain */
  hist: Float64Array | null
  /** the node's weight, weighted sum of y and of y^2 (summed by the parent's partition) */
  W: number
  S: number
  SS: number
}

const HSTRIDE = MAX_BINS * 2 // per feature: [count, sum] interleaved per bin
const MASK_WORDS = MAX_BINS / 32

// The hot loops are small top-level functions rather than one big loop body: each is optimized on
// its own after a few calls, where one large function would only be compiled on-stack and deopt
// again every time a branch it had not seen yet ran (measured: the worker threads, which start
// cold, spent half their time there).

/** Adds rows [start, end) of feature f (row stride rs) into h at hb: per bin [weight, weight * y]. */
function addColumn (rows: Uint8Array, rs: number, f: number, start: number, end: number, ow: Float64Array, owy: Float64Array, h: Float64Array, hb: number): void {
  for (let i = start, p = start * rs + f; i < end; i++, p += rs) {
    const o = hb + (rows[p] << 1)
    h[o] += ow[i]; h[o + 1] += owy[i]
  }
}

/** addColumn into a scratch histogram at 0 that also marks each occupied bin in a 256-bit mask. */
function addColumnMasked (rows: Uint8Array, rs: number, f: number, start: number, end: number, ow: Float64Array, owy: Float64Array, h: Float64Array, mask: Int32Array): void {
  for (let i = start, p = start * rs + f; i < end; i++, p += rs) {
    const b = rows[p]
    mask[b >> 5] |= 1 << (b & 31)
    const o = b << 1
    h[o] += ow[i]; h[o + 1] += owy[i]
  }
}

/** The marked bins in ascending order into occ (clearing the mask); returns how many. */
function takeMasked (mask: Int32Array, occ: Int32Array): number {
  let n = 0
  for (let wi = 0; wi < MASK_WORDS; wi++) {
    let word = mask[wi]
    while (word !== 0) {
      const low = word & -word
      occ[n++] = (wi << 5) + 31 - Math.clz32(low)
      word ^= low
    }
    mask[wi] = 0
  }
  return n
}

/** The bins of h (at hb, nb of them) with any weight, ascending, into occ; returns how many. */
function takeOccupied (h: Float64Array, hb: number, nb: number, occ: Int32Array): number {
  let n = 0
  for (let b = 0; b < nb; b++) if (h[hb + (b << 1)] !== 0) occ[n++] = b
  return n
}

/**
 * Best split of one feature between two consecutive occupied bins (variance reduction, as
 * sum^2 / weight on both sides). Improves best = [gain, bin] in place; returns true if it did.
 * With `clear`, zeroes the occupied bins it reads.
 */
function bestSplit (h: Float64Array, hb: number, occ: Int32Array, nOcc: number, W: number, S: number, minLeaf: number, parentScore: number, best: Float64Array, clear: boolean): boolean {
  let bestGain = best[0]
  let bestB = -1
  // Division-free screen: sl^2/wl + sr^2/wr > bar  <=>  sl^2 wr + sr^2 wl > bar wl wr. Slightly
  // permissive (rounding is ~1e-15 relative), so the exact test below decides alone, as before,
  // and the two divisions run only for the rare candidate that may beat the best so far.
  let bar = (bestGain + parentScore) * (1 - 1e-12)
  let wl = 0; let sl = 0
  for (let j = 0; j < nOcc; j++) {
    const b = occ[j]
    const o = hb + (b << 1)
    if (j > 0 && wl >= minLeaf && W - wl >= minLeaf) {
      const wr = W - wl; const sr = S - sl
      if (sl * sl * wr + sr * sr * wl > bar * wl * wr) {
        const gain = sl * sl / wl + sr * sr / wr - parentScore
        if (gain > bestGain) {
          bestGain = gain
          bar = (bestGain + parentScore) * (1 - 1e-12)
          // any edge between the two occupied bins splits the node alike: take the middle one
          bestB = (occ[j - 1] + b - 1) >> 1
        }
      }
    }
    wl += h[o]; sl += h[o + 1]
    // a scratch histogram is left all zero for the next feature
    if (clear) { h[o] = 0; h[o + 1] = 0 }
  }
  if (bestB < 0) return false
  best[0] = bestGain; best[1] = bestB
  return true
}

/** One of a tree's two node-ordered copies of its rows (row-major, stride rs bytes) and weights. */
interface RowBuffer {
  rows: Uint8Array
  rows32: Int32Array
  /** bootstrap weight, weight * y and weight * y^2 of each row */
  ow: Float64Array
  owy: Float64Array
  owyy: Float64Array
}

function rowBuffer (m: number, rs: number): RowBuffer {
  const rows = new Uint8Array(m * rs)
  return { rows, rows32: new Int32Array(rows.buffer), ow: new Float64Array(m), owy: new Float64Array(m), owyy: new Float64Array(m) }
}

/**
 * Partitions [start, end) of src into the same range of dst: rows whose feature f is in a bin <=
 * bin go forward from start, the others backward from end - 1 (order inside a node does not
 * matter: its rows are contiguous either way). Returns the first index of the right side and puts
 * both sides' [W, S, SS] in sums. The children then live in dst and partition back into src:
 * every row is written once per level, with no copy-back of a temporary.
 */
function partition (src: RowBuffer, dst: RowBuffer, rs: number, start: number, end: number, f: number, bin: number, sums: Float64Array): number {
  const { rows, rows32: s32, ow, owy, owyy } = src
  const { rows32: d32, ow: dW, owy: dWy, owyy: dWyy } = dst
  const sw = rs >> 2
  let a = start
  let z = end - 1
  let wL = 0; let sL = 0; let ssL = 0; let wR = 0; let sR = 0; let ssR = 0
  for (let i = start; i < end; i++) {
    const wi = ow[i]; const wyi = owy[i]; const wyyi = owyy[i]
    let k: number
    if (rows[i * rs + f] <= bin) {
      k = a++
      wL += wi; sL += wyi; ssL += wyyi
    } else {
      k = z--
      wR += wi; sR += wyi; ssR += wyyi
    }
    dW[k] = wi; dWy[k] = wyi; dWyy[k] = wyyi
    const x = k * sw; const y = i * sw
    // rows are whole groups of four words (binStride): an unrolled copy, 5x a per-word loop
    for (let q = 0; q < sw; q += 4) {
      d32[x + q] = s32[y + q]; d32[x + q + 1] = s32[y + q + 1]; d32[x + q + 2] = s32[y + q + 2]; d32[x + q + 3] = s32[y + q + 3]
    }
  }
  sums[0] = wL; sums[1] = sL; sums[2] = ssL; sums[3] = wR; sums[4] = sR; sums[5] = ssR
  return a
}

/** Full histograms of every feature over [start, end), row by row: each row's bytes are read once. */
function addAllColumns (r: RowBuffer, rs: number, F: number, start: number, end: number, h: Float64Array): void {
  const { rows, ow, owy } = r
  const F2 = F & ~1
  for (let i = start; i < end; i++) {
    const w = ow[i]; const wy = owy[i]; const p = i * rs
    let f = 0
    for (; f < F2; f += 2) {
      // two features per step: independent updates the CPU can overlap
      const o0 = f * HSTRIDE + (rows[p + f] << 1)
      const o1 = (f + 1) * HSTRIDE + (rows[p + f + 1] << 1)
      h[o0] += w; h[o0 + 1] += wy; h[o1] += w; h[o1 + 1] += wy
    }
    if (f < F) { const o = f * HSTRIDE + (rows[p + f] << 1); h[o] += w; h[o + 1] += wy }
  }
}

/** Everything growNode needs: the tree's rows, its parameters, the output arrays and scratch. */
interface Grower {
  /** the rows of a node at depth d are in buf[d & 1] */
  buf: [RowBuffer, RowBuffer]
  rs: number
  F: number
  nBins: Uint16Array
  mtry: number
  minLeaf: number
  maxDepth: number
  rng: () => number
  feature: Int32Array
  splitBin: Uint8Array
  right: Int32Array
  value: Float32Array
  nNodes: number
  scratch: Float64Array
  mask: Int32Array
  occ: Int32Array
  best: Float64Array
  perm: Int32Array
  sums: Float64Array
  /** full-feature histograms no longer in use */
  pool: Float64Array[]
  stack: Pending[]
}

function takeHist (g: Grower): Float64Array {
  return g.pool.pop()?.fill(0) ?? new Float64Array(g.F * HSTRIDE)
}

/** Makes `node` a leaf, or splits it and pushes its two children on the stack. */
function growNode (g: Grower, node: Pending): void {
  const { rs, F, nBins, mtry, minLeaf, rng, feature, splitBin, right, value, scratch, mask, occ, best, perm, sums } = g
  const id = g.nNodes++
  if (node.patchRight >= 0) right[node.patchRight] = id
  const { start, end, depth, W, S, SS } = node
  const cur = g.buf[depth & 1]
  const next = g.buf[(depth + 1) & 1]
  const { rows, ow, owy } = cur
  const mean = W > 0 ? S / W : 0
  const sse = SS - S * mean
  feature[id] = -1
  value[id] = mean
  if (depth >= g.maxDepth || W < 2 * minLeaf || !(sse > 1e-12 * Math.max(SS, 1e-300))) {
    if (node.hist != null) g.pool.push(node.hist)
    return
  }

  const parentScore = S * mean
  best[0] = 1e-10 * sse
  let bestF = -1
  let informative = 0
  for (let k = 0; k < F && informative < mtry; k++) {
    const j = k + Math.floor(rng() * (F - k))
    const f = perm[j]; perm[j] = perm[k]; perm[k] = f
    const nb = nBins[f]
    if (nb < 2) continue
    let nOcc: number
    if (node.hist != null) {
      nOcc = takeOccupied(node.hist, f * HSTRIDE, nb, occ)
      if (bestSplit(node.hist, f * HSTRIDE, occ, nOcc, W, S, minLeaf, parentScore, best, false)) bestF = f
    } else if (end - start < 2 * nb) {
      // few rows: record occupied bins in a 256-bit mask instead of scanning every bin
      addColumnMasked(rows, rs, f, start, end, ow, owy, scratch, mask)
      nOcc = takeMasked(mask, occ)
      if (bestSplit(scratch, 0, occ, nOcc, W, S, minLeaf, parentScore, best, true)) bestF = f
    } else {
      addColumn(rows, rs, f, start, end, ow, owy, scratch, 0)
      nOcc = takeOccupied(scratch, 0, nb, occ)
      if (bestSplit(scratch, 0, occ, nOcc, W, S, minLeaf, parentScore, best, true)) bestF = f
    }
    if (nOcc >= 2) informative++
  }

  if (bestF < 0) {
    if (node.hist != null) g.pool.push(node.hist)
    return
  }
  const bestB = best[1]
  const mid = partition(cur, next, rs, start, end, bestF, bestB, sums)
  feature[id] = bestF
  splitBin[id] = bestB
  value[id] = 0

  const nL = mid - start
  const nR = end - mid
  let histL: Float64Array | null = null
  let histR: Float64Array | null = null
  if (node.hist != null) {
    // keep the chain while building the smaller child's full histograms and subtracting costs
    // less than twice the children's mtry column passes (factor 2 against 1: 0.94-0.96 of the
    // time per tree, `bench-forest-ab.js tree`, docs/BENCHMARKS.md)
    const nSmall = Math.min(nL, nR)
    if (nSmall * F + F * MAX_BINS < 2 * (nL + nR) * mtry) {
      const small = takeHist(g)
      if (nL <= nR) addAllColumns(next, rs, F, start, mid, small)
      else addAllColumns(next, rs, F, mid, end, small)
      const big = node.hist
      for (let i = 0; i < big.length; i++) big[i] -= small[i]
      if (nL <= nR) { histL = small; histR = big } else { histL = big; histR = small }
    } else {
      g.pool.push(node.hist)
    }
  }
  // right is pushed first so the left child is popped next and gets index id + 1
  g.stack.push({ start: mid, end, depth: depth + 1, patchRight: id, hist: histR, W: sums[3], S: sums[4], SS: sums[5] })
  g.stack.push({ start, end: mid, depth: depth + 1, patchRight: -1, hist: histL, W: sums[0], S: sums[1], SS: sums[2] })
}

export function buildTree (data: TreeData, params: TreeParams, seed: number): TreeArrays {
  const { nRows, nFeatures: F, bins, nBins, y } = data
  const rng = createRng(seed)
  const minLeaf = Math.max(1, params.minSamplesLeaf)
  const mtry = Math.max(1, Math.min(F, Math.floor(params.mtry)))

  // bootstrap as integer weights over the distinct drawn rows: fewer rows to scan than duplicates
  const w = new Uint32Array(nRows)
  const draws = params.sampleSize > 0 ? params.sampleSize : nRows
  if (params.bootstrap) for (let i = 0; i < draws; i++) w[Math.floor(rng() * nRows)]++
  else w.fill(1)
  let m = 0
  for (let i = 0; i < nRows; i++) if (w[i] > 0) m++
  // Node-ordered copies, partitioned as the tree grows, so every hot loop reads memory
  // sequentially: each drawn row's bins are copied (rs / 4 int32 words) from the shared matrix,
  // instead of being gathered by row id on every visit, which misses the cache once nodes get
  // small and their rows scatter over a 100k-row matrix. Two copies: each level partitions from
  // one into the other.
  const rs = binStride(F)
  if (bins.length < nRows * rs) throw new RangeError(`binned matrix has ${bins.length} bytes, ${nRows} rows of ${rs} need ${nRows * rs}`)
  const buf: [RowBuffer, RowBuffer] = [rowBuffer(m, rs), rowBuffer(m, rs)]
  const { ow, owy, owyy, rows32 } = buf[0]
  {
    const ord = new Uint32Array(m)
    for (let i = 0, k = 0; i < nRows; i++) {
      if (w[i] === 0) continue
      ord[k] = i; ow[k] = w[i]; owy[k] = w[i] * y[i]; owyy[k] = w[i] * y[i] * y[i]; k++
    }
    const sw = rs >> 2
    const src32 = new Int32Array(bins.buffer, bins.byteOffset, nRows * sw)
    for (let k = 0; k < m; k++) {
      const s = ord[k] * sw; const d = k * sw
      for (let q = 0; q < sw; q += 4) {
        rows32[d + q] = src32[s + q]; rows32[d + q + 1] = src32[s + q + 1]; rows32[d + q + 2] = src32[s + q + 2]; rows32[d + q + 3] = src32[s + q + 3]
      }
    }
  }

  const cap = Math.max(1, 2 * m)
  const feature = new Int32Array(cap)
  const splitBin = new Uint8Array(cap)
  const right = new Int32Array(cap)
  const value = new Float32Array(cap)

  const g: Grower = {
    buf,
    rs,
    F,
    nBins,
    mtry,
    minLeaf,
    maxDepth: params.maxDepth,
    rng,
    feature,
    splitBin,
    right,
    value,
    nNodes: 0,
    scratch: new Float64Array(HSTRIDE), // one feature's histogram when no full one is carried
    mask: new Int32Array(MASK_WORDS),
    occ: new Int32Array(MAX_BINS),
    best: new Float64Array(2),
    perm: Int32Array.from({ length: F }, (_, f) => f),
    sums: new Float64Array(6),
    pool: [],
    stack: []
  }

  let W0 = 0; let S0 = 0; let SS0 = 0
  for (let i = 0; i < m; i++) { W0 += ow[i]; S0 += owy[i]; SS0 += owyy[i] }
  g.stack.push({ start: 0, end: m, depth: 0, patchRight: -1, hist: null, W: W0, S: S0, SS: SS0 })
  if (params.subtraction && m > 0) { const h = takeHist(g); addAllColumns(buf[0], rs, F, 0, m, h); g.stack[0].hist = h }
  // The loop stays tiny on purpose: it runs once per tree, so V8 can only compile it on-stack, and
  // code inlined into an on-stack compilation that deopts is re-entered as is (measured: ~2,000
  // deopts per tree, ~20% of the time). growNode is called per node and is optimized normally.
  while (g.stack.length > 0) growNode(g, g.stack.pop() as Pending)
  const nNodes = g.nNodes

  return {
    feature: feature.slice(0, nNodes),
    bin: splitBin.slice(0, nNodes),
    right: right.slice(0, nNodes),
    value: value.slice(0, nNodes)
  }
}
