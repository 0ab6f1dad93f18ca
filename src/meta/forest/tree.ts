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

/** Per-tree working copies: node-ordered rows (row-major, stride rs bytes) and their weights. */
interface Rows {
  rs: number
  rows: Uint8Array
  rows32: Int32Array
  tRows32: Int32Array
  ow: Float64Array
  owy: Float64Array
  owyy: Float64Array
  tW: Float64Array
  tWy: Float64Array
  tWyy: Float64Array
}

/**
 * Stable partition of [start, end): rows whose feature f is in a bin <= bin first; returns the
 * first index of the right side and puts both sides' [W, S, SS] in sums (summed in the children's
 * row order, so they are what summing each child would give). Keeping rows in ascending order
 * inside every node makes the histogram passes walk memory forward.
 */
function partition (r: Rows, start: number, end: number, f: number, bin: number, sums: Float64Array): number {
  const { rs, rows, rows32, tRows32, ow, owy, owyy, tW, tWy, tWyy } = r
  const sw = rs >> 2
  let a = start
  let nr = 0
  let wL = 0; let sL = 0; let ssL = 0; let wR = 0; let sR = 0; let ssR = 0
  for (let i = start; i < end; i++) {
    const src = i * sw
    const wi = ow[i]; const wyi = owy[i]; const wyyi = owyy[i]
    if (rows[i * rs + f] <= bin) {
      if (a !== i) {
        const dst = a * sw
        for (let q = 0; q < sw; q += 4) {
          const x = dst + q; const y = src + q
          rows32[x] = rows32[y]; rows32[x + 1] = rows32[y + 1]; rows32[x + 2] = rows32[y + 2]; rows32[x + 3] = rows32[y + 3]
        }
        ow[a] = wi; owy[a] = wyi; owyy[a] = wyyi
      }
      wL += wi; sL += wyi; ssL += wyyi
      a++
    } else {
      const dst = nr * sw
      for (let q = 0; q < sw; q += 4) {
        const x = dst + q; const y = src + q
        tRows32[x] = rows32[y]; tRows32[x + 1] = rows32[y + 1]; tRows32[x + 2] = rows32[y + 2]; tRows32[x + 3] = rows32[y + 3]
      }
      tW[nr] = wi; tWy[nr] = wyi; tWyy[nr] = wyyi; nr++
      wR += wi; sR += wyi; ssR += wyyi
    }
  }
  sums[0] = wL; sums[1] = sL; sums[2] = ssL; sums[3] = wR; sums[4] = sR; sums[5] = ssR
  if (nr > 32) {
    // memcpy; for a few rows the subarray objects cost more than a loop
    rows32.set(tRows32.subarray(0, nr * sw), a * sw)
    ow.set(tW.subarray(0, nr), a); owy.set(tWy.subarray(0, nr), a); owyy.set(tWyy.subarray(0, nr), a)
  } else {
    for (let q = 0, d = a * sw, n = nr * sw; q < n; q++) rows32[d + q] = tRows32[q]
    for (let q = 0; q < nr; q++) { ow[a + q] = tW[q]; owy[a + q] = tWy[q]; owyy[a + q] = tWyy[q] }
  }
  return a
}

/** Full histograms of every feature over [start, end). */
function addAllColumns (r: Rows, F: number, start: number, end: number, h: Float64Array): void {
  for (let f = 0; f < F; f++) addColumn(r.rows, r.rs, f, start, end, r.ow, r.owy, h, f * HSTRIDE)
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
  // Node-ordered copies, partitioned (stably) as the tree grows, so every hot loop reads memory
  // sequentially: each drawn row's bins are copied (rs / 4 int32 words) from the shared matrix,
  // instead of being gathered by row id on every visit, which misses the cache once nodes get
  // small and their rows scatter over a 100k-row matrix.
  const rs = binStride(F)
  if (bins.length < nRows * rs) throw new RangeError(`binned matrix has ${bins.length} bytes, ${nRows} rows of ${rs} need ${nRows * rs}`)
  const rows = new Uint8Array(m * rs)
  const r: Rows = {
    rs,
    rows,
    rows32: new Int32Array(rows.buffer),
    tRows32: new Int32Array(m * (rs >> 2)),
    ow: new Float64Array(m),
    owy: new Float64Array(m),
    owyy: new Float64Array(m),
    tW: new Float64Array(m),
    tWy: new Float64Array(m),
    tWyy: new Float64Array(m)
  }
  const { ow, owy, owyy } = r
  {
    const ord = new Uint32Array(m)
    for (let i = 0, k = 0; i < nRows; i++) {
      if (w[i] === 0) continue
      ord[k] = i; ow[k] = w[i]; owy[k] = w[i] * y[i]; owyy[k] = w[i] * y[i] * y[i]; k++
    }
    const sw = rs >> 2
    const src32 = new Int32Array(bins.buffer, bins.byteOffset, nRows * sw)
    const rows32 = r.rows32
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
  let nNodes = 0

  const scratch = new Float64Array(HSTRIDE) // one feature's histogram when no full one is carried
  const mask = new Int32Array(MASK_WORDS)
  const occ = new Int32Array(MAX_BINS)
  const best = new Float64Array(2)
  const perm = new Int32Array(F)
  for (let f = 0; f < F; f++) perm[f] = f
  const pool: Float64Array[] = []
  const takeHist = (): Float64Array => pool.pop()?.fill(0) ?? new Float64Array(F * HSTRIDE)

  let W0 = 0; let S0 = 0; let SS0 = 0
  for (let i = 0; i < m; i++) { W0 += ow[i]; S0 += owy[i]; SS0 += owyy[i] }
  const sums = new Float64Array(6)
  const stack: Pending[] = [{ start: 0, end: m, depth: 0, patchRight: -1, hist: null, W: W0, S: S0, SS: SS0 }]
  if (params.subtraction && m > 0) { const h = takeHist(); addAllColumns(r, F, 0, m, h); stack[0].hist = h }

  while (stack.length > 0) {
    const node = stack.pop() as Pending
    const id = nNodes++
    if (node.patchRight >= 0) right[node.patchRight] = id
    const { start, end, depth, W, S, SS } = node
    const mean = W > 0 ? S / W : 0
    const sse = SS - S * mean
    feature[id] = -1
    value[id] = mean
    if (depth >= params.maxDepth || W < 2 * minLeaf || !(sse > 1e-12 * Math.max(SS, 1e-300))) {
      if (node.hist != null) pool.push(node.hist)
      continue
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
      if (node.hist != null) pool.push(node.hist)
      continue
    }
    const bestB = best[1]
    const mid = partition(r, start, end, bestF, bestB, sums)
    feature[id] = bestF
    splitBin[id] = bestB
    value[id] = 0

    const nL = mid - start
    const nR = end - mid
    let histL: Float64Array | null = null
    let histR: Float64Array | null = null
    if (node.hist != null) {
      // keep the chain while building the smaller child's full histograms and subtracting is
      // cheaper than the children scanning their mtry features directly
      const nSmall = Math.min(nL, nR)
      if (nSmall * F + F * MAX_BINS < (nL + nR) * mtry) {
        const small = takeHist()
        if (nL <= nR) addAllColumns(r, F, start, mid, small)
        else addAllColumns(r, F, mid, end, small)
        const big = node.hist
        for (let i = 0; i < big.length; i++) big[i] -= small[i]
        if (nL <= nR) { histL = small; histR = big } else { histL = big; histR = small }
      } else {
        pool.push(node.hist)
      }
    }
    // right is pushed first so the left child is popped next and gets index id + 1
    stack.push({ start: mid, end, depth: depth + 1, patchRight: id, hist: histR, W: sums[3], S: sums[4], SS: sums[5] })
    stack.push({ start, end: mid, depth: depth + 1, patchRight: -1, hist: histL, W: sums[0], S: sums[1], SS: sums[2] })
  }

  return {
    feature: feature.slice(0, nNodes),
    bin: splitBin.slice(0, nNodes),
    right: right.slice(0, nNodes),
    value: value.slice(0, nNodes)
  }
}
