/**
 * A trained histogram forest: all trees in flat typed arrays for fast prediction, and a compact
 * snapshot (structure bits + split feature/bin + float32 leaf values, base64) for the store.
 */
import { SwarmtuneError } from '../../util/errors.js'
import type { ForestPrediction, RegressionForest } from '../learner.js'
import { binOf, MAX_BINS } from './binning.js'
import type { TreeArrays } from './tree.js'

export const BACKEND_NAME = 'histogram'
export const SNAPSHOT_FORMAT = 'swarmtune-histogram-forest'
export const SNAPSHOT_VERSION = 1
const PREDICT_BLOCK = 4096

export class ForestSnapshotError extends SwarmtuneError {
  constructor (message: string) {
    super('E_BAD_SNAPSHOT', `histogram forest snapshot: ${message}`)
  }
}

/** What a snapshot holds; typed arrays are little-endian base64. */
export interface HistogramForestSnapshot {
  format: typeof SNAPSHOT_FORMAT
  version: number
  backend: typeof BACKEND_NAME
  nFeatures: number
  /** training parameters, informative only */
  params: Record<string, number | boolean>
  /** per feature, how many edges it has (Int32 base64) */
  edgeCounts: string
  /** all features' edges concatenated (Float64 base64) */
  edges: string
  /** nodes per tree (Int32 base64) */
  nodeCounts: string
  /**
   * per node in preorder: split feature, all ones for a leaf; Uint8 when featureBytes is 1
   * (fewer than 255 features), else Uint16
   */
  features: string
  featureBytes?: 1 | 2
  /** per internal node in preorder: split bin (Uint8 base64) */
  bins: string
  /** per leaf in preorder: value (Float32 base64) */
  leaves: string
}

function b64 (a: ArrayBufferView): string {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64')
}

function unb64<T> (s: unknown, ctor: { new (buf: ArrayBuffer): T, BYTES_PER_ELEMENT: number }, field: string): T {
  if (typeof s !== 'string') throw new ForestSnapshotError(`${field} is not a string`)
  const buf = Buffer.from(s, 'base64')
  if (buf.byteLength % ctor.BYTES_PER_ELEMENT !== 0) throw new ForestSnapshotError(`${field} has a truncated length`)
  // copy into a fresh, aligned ArrayBuffer
  const ab = new ArrayBuffer(buf.byteLength)
  new Uint8Array(ab).set(buf)
  return new ctor(ab)
}

/** Node word of a leaf: feature 0, "bin" -1, so `bin(x) <= -1` never holds and a leaf's walk stays put. */
const LEAF_WORD = -1 << 16

/**
 * Walks one tree for rows [0, nb) of the binned block xb, writing leaf values to per[o + row].
 * Branch-free steps (a mispredicted branch per level was most of the cost) over four rows at
 * once, so their independent node loads overlap; a leaf points to itself, so a row that reached
 * one just stays there until the other three do.
 */
function walkTree (nodes: Int32Array, values: Float32Array, root: number, xb: Uint8Array, F: number, nb: number, per: Float64Array): void {
  let r = 0
  for (; r + 4 <= nb; r += 4) {
    const b0 = r * F; const b1 = b0 + F; const b2 = b1 + F; const b3 = b2 + F
    let k0 = root; let k1 = root; let k2 = root; let k3 = root
    let f0 = nodes[2 * root]; let f1 = f0; let f2 = f0; let f3 = f0
    // a node word is negative only for a leaf
    while ((f0 & f1 & f2 & f3) >= 0) {
      let c = ~(((f0 >> 16) - xb[b0 + (f0 & 0xffff)]) >> 31); let rk = nodes[2 * k0 + 1]; k0 = rk + ((k0 + 1 - rk) & c); f0 = nodes[2 * k0]
      c = ~(((f1 >> 16) - xb[b1 + (f1 & 0xffff)]) >> 31); rk = nodes[2 * k1 + 1]; k1 = rk + ((k1 + 1 - rk) & c); f1 = nodes[2 * k1]
      c = ~(((f2 >> 16) - xb[b2 + (f2 & 0xffff)]) >> 31); rk = nodes[2 * k2 + 1]; k2 = rk + ((k2 + 1 - rk) & c); f2 = nodes[2 * k2]
      c = ~(((f3 >> 16) - xb[b3 + (f3 & 0xffff)]) >> 31); rk = nodes[2 * k3 + 1]; k3 = rk + ((k3 + 1 - rk) & c); f3 = nodes[2 * k3]
    }
    per[r] = values[k0]
    per[r + 1] = values[k1]
    per[r + 2] = values[k2]
    per[r + 3] = values[k3]
  }
  for (; r < nb; r++) {
    const b = r * F
    let k = root
    let fb = nodes[2 * k]
    while (fb >= 0) {
      k = xb[b + (fb & 0xffff)] <= (fb >> 16) ? k + 1 : nodes[2 * k + 1]
      fb = nodes[2 * k]
    }
    per[r] = values[k]
  }
}

/**
 * Reads one word per cache line of nodes [lo, hi) and of their values, in order. A forest is
 * larger than the L3 cache (38 MB at 100k rows x 100 trees), so a tree's first walks would miss
 * to memory at random, one dependent load at a time; a sequential pass lets the hardware prefetch
 * it and the walks then hit the cache (21.4 -> 11.2-11.5 us per row per 100 trees at 100k rows,
 * `npm run bench:forest-ab -- predict`).
 */
function touchTree (nodes: Int32Array, values: Float32Array, lo: number, hi: number): number {
  let acc = 0
  for (let i = 2 * lo, e = 2 * hi; i < e; i += 16) acc ^= nodes[i]
  for (let i = lo; i < hi; i += 16) acc += values[i]
  return acc
}

/** Below this many rows in a block, touching the whole tree costs more than the misses it saves. */
const TOUCH_MIN_ROWS = 256

/** Keeps the touch loads observable, so they are not optimized away. */
let touchSink = 0

/** Calls of at most this many rows use the memo (a recommend predicts one row per candidate method). */
const MEMO_MAX_ROWS = 64
/** Memo entries per forest before it starts over (~100 bytes each). */
const MEMO_MAX_ENTRIES = 8192

interface BlockAccumulators { leaf: Float64Array, mu: Float64Array, m2: Float64Array }
function blockAccumulators (n: number): BlockAccumulators {
  const m = Math.max(1, n)
  return { leaf: new Float64Array(m), mu: new Float64Array(m), m2: new Float64Array(m) }
}

export class HistogramForest implements RegressionForest {
  readonly backend = BACKEND_NAME
  readonly nFeatures: number
  readonly nTrees: number
  readonly params: Record<string, number | boolean>
  /** worker threads the training used (0 = in-thread); not part of the snapshot */
  workersUsed = 0
  private readonly edgeCounts: Int32Array
  private readonly edgeOffset: Int32Array
  private readonly edges: Float64Array
  private readonly nodeCounts: Int32Array
  private readonly roots: Int32Array
  // All trees back to back, indices absolute. Prediction runs in bin space: a row's features are
  // binned once (x <= edges[b] exactly when bin(x) <= b); each node is two int32s, [feature |
  // bin << 16, right child] (left = k + 1), a leaf [LEAF_WORD, itself] with its value in values.
  private readonly nodeData: Int32Array
  private readonly values: Float32Array
  private readonly nLeaves: number
  /** binned row (latin1 string of its bins) → [mean, std], for recommend-sized calls */
  private readonly memo = new Map<string, [number, number]>()
  /** predictParts' memo: task columns' bins (with their count) → knob columns' bins → prediction */
  private readonly partsMemo = new Map<string, Map<string, [number, number]>>()
  private partsEntries = 0
  /** predictParts: per knob row array, per starting column, its bins and key part */
  private readonly tails = new WeakMap<readonly number[], Map<number, { bins: Uint8Array, key: string }>>()
  private memoHits = 0
  private memoMisses = 0

  constructor (nFeatures: number, edgeCounts: Int32Array, edges: Float64Array, trees: TreeArrays[], params: Record<string, number | boolean>) {
    this.nFeatures = nFeatures
    this.params = params
    this.edgeCounts = edgeCounts
    this.edges = edges
    this.edgeOffset = new Int32Array(nFeatures)
    let off = 0
    for (let f = 0; f < nFeatures; f++) {
      if (edgeCounts[f] < 0 || edgeCounts[f] >= MAX_BINS) throw new ForestSnapshotError(`feature ${f} has ${edgeCounts[f]} edges`)
      this.edgeOffset[f] = off; off += edgeCounts[f]
    }
    if (off !== edges.length) throw new ForestSnapshotError('edge counts do not match the edges')
    this.nTrees = trees.length
    this.nodeCounts = Int32Array.from(trees, (t) => t.feature.length)
    let total = 0
    let nLeaves = 0
    for (const t of trees) {
      total += t.feature.length
      for (let i = 0; i < t.feature.length; i++) if (t.feature[i] < 0) nLeaves++
    }
    this.roots = new Int32Array(trees.length)
    this.nodeData = new Int32Array(2 * total)
    this.values = new Float32Array(total)
    this.nLeaves = nLeaves
    let base = 0
    for (let t = 0; t < trees.length; t++) {
      const tr = trees[t]
      const n = tr.feature.length
      this.roots[t] = base
      for (let i = 0; i < n; i++) {
        const f = tr.feature[i]
        const k = base + i
        if (f >= 0) {
          if (f >= nFeatures || tr.bin[i] >= edgeCounts[f]) throw new ForestSnapshotError(`tree ${t} node ${i}: split out of range`)
          if (tr.right[i] <= i + 1 || tr.right[i] >= n) throw new ForestSnapshotError(`tree ${t} node ${i}: bad child index`)
          this.nodeData[2 * k] = f | (tr.bin[i] << 16)
          this.nodeData[2 * k + 1] = base + tr.right[i]
        } else {
          this.nodeData[2 * k] = LEAF_WORD
          this.nodeData[2 * k + 1] = k
          this.values[k] = tr.value[i]
        }
      }
      base += n
    }
  }

  /** Bins rows [r0, r1) of X into xb (row-major, nFeatures per row); NaN goes to 255 (right of every split). */
  private binRows (X: number[][], r0: number, r1: number, xb: Uint8Array): void {
    const F = this.nFeatures
    const { edges, edgeOffset, edgeCounts } = this
    for (let r = r0, o = 0; r < r1; r++, o += F) {
      const x = X[r]
      // rows of one recommend share the task's columns: a value equal to the row above's keeps its bin
      const prev = o > 0 ? X[r - 1] : undefined
      for (let f = 0; f < F; f++) {
        const v = x[f]
        if (prev !== undefined && prev[f] === v) { xb[o + f] = xb[o - F + f]; continue }
        const lo = edgeOffset[f]
        xb[o + f] = v !== v ? 255 : binOf(edges, lo, lo + edgeCounts[f], v) // eslint-disable-line no-self-compare
      }
    }
  }

  /** Mean and spread (population std) of the per-tree predictions. NaN features go right. */
  predict (X: number[][]): ForestPrediction {
    const n = X.length
    const F = this.nFeatures
    for (let r = 0; r < n; r++) {
      const x = X[r]
      if (!Array.isArray(x) || x.length < F) {
        throw new SwarmtuneError('E_BAD_FEATURES', `predict: row ${r} has ${Array.isArray(x) ? x.length : 0} features, the forest needs ${F}`)
      }
    }
    if (n <= MEMO_MAX_ROWS) return this.predictMemo(X)
    const mean = new Array<number>(n)
    const std = new Array<number>(n)
    // Tree-major over large blocks of rows, so a tree is fetched into cache once per block and
    // then walked by every row of it; per-row running mean and M2 (Welford) instead of a per-tree
    // matrix keep the block's working set (tree + binned rows + accumulators) within L2.
    const B = Math.max(1, Math.min(PREDICT_BLOCK, n))
    const xb = new Uint8Array(B * F)
    const acc = blockAccumulators(B)
    for (let r0 = 0; r0 < n; r0 += B) {
      const r1 = Math.min(n, r0 + B)
      this.binRows(X, r0, r1, xb)
      this.walkBlock(xb, r1 - r0, acc)
      for (let c = 0; c < r1 - r0; c++) {
        mean[r0 + c] = acc.mu[c]
        std[r0 + c] = Math.sqrt(Math.max(0, acc.m2[c]) / this.nTrees)
      }
    }
    return { mean, std }
  }

  /**
   * A recommend-sized call (issue #19): a row's prediction depends only on its binned features,
   * so rows whose bins were seen before are answered from a memo and only the others walk the
   * trees. Exact (the same walk and arithmetic as an uncached call), and tasks that differ by less
   * than a bin width (most "new" tasks: bins come from the training history) cost no tree walk.
   */
  private predictMemo (X: number[][]): ForestPrediction {
    const n = X.length
    const F = this.nFeatures
    const xb = new Uint8Array(Math.max(1, n) * F)
    this.binRows(X, 0, n, xb)
    const mean = new Array<number>(n)
    const std = new Array<number>(n)
    const keys: string[] = []
    const misses: number[] = []
    const bytes = Buffer.from(xb.buffer, xb.byteOffset, xb.byteLength)
    for (let r = 0; r < n; r++) {
      const key = bytes.toString('latin1', r * F, (r + 1) * F)
      keys.push(key)
      const hit = this.memo.get(key)
      if (hit != null) { mean[r] = hit[0]; std[r] = hit[1]; this.memoHits++ } else misses.push(r)
    }
    if (misses.length === 0) return { mean, std }
    this.memoMisses += misses.length
    const xm = new Uint8Array(misses.length * F)
    misses.forEach((r, i) => { xm.set(xb.subarray(r * F, (r + 1) * F), i * F) })
    const acc = blockAccumulators(misses.length)
    this.walkBlock(xm, misses.length, acc)
    // a forest never changes, so entries stay valid; the bound only caps memory
    if (this.memo.size + misses.length > MEMO_MAX_ENTRIES) this.memo.clear()
    misses.forEach((r, i) => {
      mean[r] = acc.mu[i]
      std[r] = Math.sqrt(Math.max(0, acc.m2[i]) / this.nTrees)
      this.memo.set(keys[r], [mean[r], std[r]])
    })
    return { mean, std }
  }

  /**
   * `predict` of the rows `task.concat(tail)` for each tail, without building them (issue #19
   * item 3): a recommend's rows share the task's columns and differ in the method's knob
   * columns, whose bins this forest remembers per knob row (the same array for a method on
   * every recommend). The task's columns are binned once. Exactly `predict(tails.map(k =>
   * task.concat(k)))`: the same bins, the same memo keys, the same walk.
   */
  predictParts (task: readonly number[], tails: ReadonlyArray<readonly number[]>): ForestPrediction {
    const F = this.nFeatures
    const T = task.length
    const n = tails.length
    let short = T >= F || n > MEMO_MAX_ROWS
    for (let r = 0; r < n && !short; r++) if (!Array.isArray(tails[r]) || T + tails[r].length < F) short = true
    if (short) return this.predict(tails.map(k => task.concat(k)))
    const { edges, edgeOffset, edgeCounts } = this
    const tb = Buffer.allocUnsafe(T)
    for (let f = 0; f < T; f++) {
      const v = task[f]
      const lo = edgeOffset[f]
      tb[f] = v !== v ? 255 : binOf(edges, lo, lo + edgeCounts[f], v) // eslint-disable-line no-self-compare
    }
    // two levels (task bins, then knob bins): no key string per row to build and hash
    const head = `${T}:${tb.toString('latin1')}`
    let byTail = this.partsMemo.get(head)
    const mean = new Array<number>(n)
    const std = new Array<number>(n)
    let misses: number[] | undefined
    for (let r = 0; r < n; r++) {
      const hit = byTail?.get(this.tailBins(tails[r], T).key)
      if (hit != null) { mean[r] = hit[0]; std[r] = hit[1]; this.memoHits++ } else (misses ??= []).push(r)
    }
    if (misses == null) return { mean, std }
    this.memoMisses += misses.length
    const xm = new Uint8Array(misses.length * F)
    misses.forEach((r, i) => { xm.set(tb, i * F); xm.set(this.tailBins(tails[r], T).bins, i * F + T) })
    const acc = blockAccumulators(misses.length)
    this.walkBlock(xm, misses.length, acc)
    // the same bound as the row memo's, over both levels
    if (this.partsEntries + misses.length > MEMO_MAX_ENTRIES) { this.partsMemo.clear(); this.partsEntries = 0; byTail = undefined }
    if (byTail == null) this.partsMemo.set(head, byTail = new Map())
    for (let i = 0; i < misses.length; i++) {
      const r = misses[i]
      mean[r] = acc.mu[i]
      std[r] = Math.sqrt(Math.max(0, acc.m2[i]) / this.nTrees)
      const key = this.tailBins(tails[r], T).key
      if (!byTail.has(key)) this.partsEntries++
      byTail.set(key, [mean[r], std[r]])
    }
    return { mean, std }
  }

  /**
   * The bins of a knob row's columns placed from column `at` on, and their memo-key part,
   * remembered per row array (rows are immutable: features.ts hands out one per knob record).
   */
  private tailBins (tail: readonly number[], at: number): { bins: Uint8Array, key: string } {
    let byAt = this.tails.get(tail)
    let got = byAt?.get(at)
    if (got == null) {
      const k = this.nFeatures - at
      const bins = Buffer.allocUnsafe(k)
      for (let j = 0; j < k; j++) {
        const v = tail[j]
        const lo = this.edgeOffset[at + j]
        bins[j] = v !== v ? 255 : binOf(this.edges, lo, lo + this.edgeCounts[at + j], v) // eslint-disable-line no-self-compare
      }
      got = { bins, key: bins.toString('latin1') }
      if (byAt == null) this.tails.set(tail, byAt = new Map())
      byAt.set(at, got)
    }
    return got
  }

  /** Every tree over binned rows [0, nb) of xb: per-row running mean and M2 into acc. */
  private walkBlock (xb: Uint8Array, nb: number, acc: BlockAccumulators): void {
    const { nodeData: nodes, values, roots } = this
    const { leaf, mu, m2 } = acc
    mu.fill(0); m2.fill(0)
    for (let t = 0; t < this.nTrees; t++) {
      if (nb >= TOUCH_MIN_ROWS) touchSink += touchTree(nodes, values, roots[t], roots[t] + this.nodeCounts[t])
      walkTree(nodes, values, roots[t], xb, this.nFeatures, nb, leaf)
      const inv = 1 / (t + 1)
      for (let c = 0; c < nb; c++) {
        const v = leaf[c]
        const d = v - mu[c]
        mu[c] += d * inv
        m2[c] += d * (v - mu[c])
      }
    }
  }

  /** Rows answered from / added to the prediction memo (recommend-sized calls only). */
  memoStats (): { hits: number, misses: number, entries: number } {
    return { hits: this.memoHits, misses: this.memoMisses, entries: this.memo.size + this.partsEntries }
  }

  /** Number of nodes over all trees. */
  get nodes (): number { return this.nodeData.length >> 1 }

  toJSON (): HistogramForestSnapshot {
    const total = this.nodeData.length >> 1
    const nLeaves = this.nLeaves
    const narrow = this.nFeatures < 0xff
    const LEAF = narrow ? 0xff : 0xffff
    const features = narrow ? new Uint8Array(total) : new Uint16Array(total)
    const bins = new Uint8Array(total - nLeaves)
    const leaves = new Float32Array(nLeaves)
    for (let i = 0, bi = 0, li = 0; i < total; i++) {
      const fb = this.nodeData[2 * i]
      if (fb < 0) { features[i] = LEAF; leaves[li++] = this.values[i] } else { features[i] = fb & 0xffff; bins[bi++] = fb >> 16 }
    }
    return {
      format: SNAPSHOT_FORMAT,
      version: SNAPSHOT_VERSION,
      backend: BACKEND_NAME,
      nFeatures: this.nFeatures,
      params: this.params,
      edgeCounts: b64(this.edgeCounts),
      edges: b64(this.edges),
      nodeCounts: b64(this.nodeCounts),
      features: b64(features),
      featureBytes: narrow ? 1 : 2,
      bins: b64(bins),
      leaves: b64(leaves)
    }
  }

  static load (snapshot: unknown): HistogramForest {
    if (snapshot == null || typeof snapshot !== 'object') throw new ForestSnapshotError('not an object')
    const s = snapshot as Partial<HistogramForestSnapshot>
    if (s.format !== SNAPSHOT_FORMAT) throw new ForestSnapshotError(`unknown format ${String(s.format)}`)
    if (s.version !== SNAPSHOT_VERSION) throw new ForestSnapshotError(`unsupported version ${String(s.version)}`)
    const nFeatures = s.nFeatures
    if (typeof nFeatures !== 'number' || !Number.isInteger(nFeatures) || nFeatures < 1 || nFeatures >= 0xffff) {
      throw new ForestSnapshotError('bad nFeatures')
    }
    const edgeCounts = unb64(s.edgeCounts, Int32Array, 'edgeCounts')
    const edges = unb64(s.edges, Float64Array, 'edges')
    const nodeCounts = unb64(s.nodeCounts, Int32Array, 'nodeCounts')
    if (s.featureBytes != null && s.featureBytes !== 1 && s.featureBytes !== 2) throw new ForestSnapshotError('bad featureBytes')
    const narrow = s.featureBytes === 1
    if (narrow && nFeatures >= 0xff) throw new ForestSnapshotError('featureBytes 1 with 255 or more features')
    const LEAF = narrow ? 0xff : 0xffff
    const features: Uint8Array | Uint16Array = narrow ? unb64(s.features, Uint8Array, 'features') : unb64(s.features, Uint16Array, 'features')
    const bins = unb64(s.bins, Uint8Array, 'bins')
    const leaves = unb64(s.leaves, Float32Array, 'leaves')
    if (edgeCounts.length !== nFeatures) throw new ForestSnapshotError('edgeCounts length')
    if (nodeCounts.length < 1) throw new ForestSnapshotError('no trees')
    const total = nodeCounts.reduce((a, b) => a + b, 0)
    if (total !== features.length) throw new ForestSnapshotError('node counts do not match the features')
    let nLeaves = 0
    for (let i = 0; i < total; i++) if (features[i] === LEAF) nLeaves++
    if (nLeaves !== leaves.length || total - nLeaves !== bins.length) throw new ForestSnapshotError('leaf/bin counts do not match')

    // rebuild each tree's right-child pointers from the preorder layout
    const trees: TreeArrays[] = []
    let base = 0; let bi = 0; let li = 0
    for (let t = 0; t < nodeCounts.length; t++) {
      const n = nodeCounts[t]
      if (n < 1) throw new ForestSnapshotError(`tree ${t} is empty`)
      const tr: TreeArrays = { feature: new Int32Array(n), bin: new Uint8Array(n), right: new Int32Array(n), value: new Float32Array(n) }
      // stack of internal nodes still waiting for their right child
      const waiting: number[] = []
      for (let i = 0; i < n; i++) {
        if (i > 0 && tr.feature[i - 1] < 0) {
          // the previous node was a leaf: this node is the right child of the latest waiting node
          const p = waiting.pop()
          if (p === undefined) throw new ForestSnapshotError(`tree ${t} has trailing nodes`)
          tr.right[p] = i
        }
        const f = features[base + i]
        if (f === LEAF) {
          tr.feature[i] = -1
          tr.value[i] = leaves[li++]
        } else {
          tr.feature[i] = f
          tr.bin[i] = bins[bi++]
          waiting.push(i)
        }
      }
      if (waiting.length !== 0 || tr.feature[n - 1] >= 0) throw new ForestSnapshotError(`tree ${t} is incomplete`)
      trees.push(tr)
      base += n
    }
    const params = (s.params != null && typeof s.params === 'object') ? s.params : {}
    return new HistogramForest(nFeatures, edgeCounts, edges, trees, params)
  }
}
