/**
 * A trained histogram forest: all trees in flat typed arrays for fast prediction, and a compact
 * snapshot (structure bits + split feature/bin + float32 leaf values, base64) for the store.
 */
import { SwarmtuneError } from '../../util/errors.js'
import type { ForestPrediction, RegressionForest } from '../learner.js'
import type { TreeArrays } from './tree.js'

export const BACKEND_NAME = 'histogram'
export const SNAPSHOT_FORMAT = 'swarmtune-histogram-forest'
export const SNAPSHOT_VERSION = 1
const PREDICT_BLOCK = 256

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
  // All trees back to back, indices absolute. One 16-byte record per node so a prediction step
  // touches one cache line: f64 [2k] = threshold (leaf: value), i32 [4k+2] = feature (leaf: -1),
  // i32 [4k+3] = right child; the left child is k + 1.
  private readonly nodeF64: Float64Array
  private readonly nodeI32: Int32Array
  private readonly bin: Uint8Array

  constructor (nFeatures: number, edgeCounts: Int32Array, edges: Float64Array, trees: TreeArrays[], params: Record<string, number | boolean>) {
    this.nFeatures = nFeatures
    this.params = params
    this.edgeCounts = edgeCounts
    this.edges = edges
    this.edgeOffset = new Int32Array(nFeatures)
    let off = 0
    for (let f = 0; f < nFeatures; f++) { this.edgeOffset[f] = off; off += edgeCounts[f] }
    if (off !== edges.length) throw new ForestSnapshotError('edge counts do not match the edges')
    this.nTrees = trees.length
    this.nodeCounts = Int32Array.from(trees, (t) => t.feature.length)
    const total = trees.reduce((s, t) => s + t.feature.length, 0)
    this.roots = new Int32Array(trees.length)
    this.nodeF64 = new Float64Array(2 * total)
    this.nodeI32 = new Int32Array(this.nodeF64.buffer)
    this.bin = new Uint8Array(total)
    let base = 0
    for (let t = 0; t < trees.length; t++) {
      const tr = trees[t]
      const n = tr.feature.length
      this.roots[t] = base
      for (let i = 0; i < n; i++) {
        const f = tr.feature[i]
        const k = base + i
        this.nodeI32[4 * k + 2] = f
        if (f >= 0) {
          if (f >= nFeatures || tr.bin[i] >= edgeCounts[f]) throw new ForestSnapshotError(`tree ${t} node ${i}: split out of range`)
          if (tr.right[i] <= i + 1 || tr.right[i] >= n) throw new ForestSnapshotError(`tree ${t} node ${i}: bad child index`)
          this.bin[k] = tr.bin[i]
          this.nodeF64[2 * k] = edges[this.edgeOffset[f] + tr.bin[i]]
          this.nodeI32[4 * k + 3] = base + tr.right[i]
        } else {
          this.nodeF64[2 * k] = tr.value[i]
        }
      }
      base += n
    }
  }

  /** Mean and spread (population std) of the per-tree predictions. NaN features go right. */
  predict (X: number[][]): ForestPrediction {
    const n = X.length
    const T = this.nTrees
    const mean = new Array<number>(n)
    const std = new Array<number>(n)
    for (let r = 0; r < n; r++) {
      const x = X[r]
      if (!Array.isArray(x) || x.length < this.nFeatures) {
        throw new SwarmtuneError('E_BAD_FEATURES', `predict: row ${r} has ${Array.isArray(x) ? x.length : 0} features, the forest needs ${this.nFeatures}`)
      }
    }
    const { nodeF64, nodeI32, roots } = this
    // tree-major over blocks of rows: one tree's nodes stay in cache while a block walks it
    const B = PREDICT_BLOCK
    const per = new Float64Array(B * T)
    for (let r0 = 0; r0 < n; r0 += B) {
      const r1 = Math.min(n, r0 + B)
      for (let t = 0; t < T; t++) {
        const root = roots[t]
        const o = t * B - r0
        for (let r = r0; r < r1; r++) {
          const x = X[r]
          let k = root
          let f = nodeI32[4 * k + 2]
          while (f >= 0) {
            k = x[f] <= nodeF64[2 * k] ? k + 1 : nodeI32[4 * k + 3]
            f = nodeI32[4 * k + 2]
          }
          per[o + r] = nodeF64[2 * k]
        }
      }
      for (let r = r0; r < r1; r++) {
        const c = r - r0
        let s = 0
        for (let t = 0; t < T; t++) s += per[t * B + c]
        const m = s / T
        let v = 0
        for (let t = 0; t < T; t++) { const d = per[t * B + c] - m; v += d * d }
        mean[r] = m
        std[r] = Math.sqrt(v / T)
      }
    }
    return { mean, std }
  }

  /** Number of nodes over all trees. */
  get nodes (): number { return this.bin.length }

  toJSON (): HistogramForestSnapshot {
    const total = this.bin.length
    let nLeaves = 0
    for (let i = 0; i < total; i++) if (this.nodeI32[4 * i + 2] < 0) nLeaves++
    const narrow = this.nFeatures < 0xff
    const LEAF = narrow ? 0xff : 0xffff
    const features = narrow ? new Uint8Array(total) : new Uint16Array(total)
    const bins = new Uint8Array(total - nLeaves)
    const leaves = new Float32Array(nLeaves)
    for (let i = 0, bi = 0, li = 0; i < total; i++) {
      const f = this.nodeI32[4 * i + 2]
      if (f < 0) { features[i] = LEAF; leaves[li++] = this.nodeF64[2 * i] } else { features[i] = f; bins[bi++] = this.bin[i] }
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
