/**
 * Gradient-boosted regression trees on the project's histogram tree code (src/meta/forest),
 * as a `LearnerBackend` (`boosted-trees`), for issue 16 item 5: a stronger learner for the
 * residual over the pairwise prior (pairwise-prior.ts). Pure apart from nothing: no I/O.
 *
 * One booster = base + Σ stages lr · tree(x), least squares, each tree depth-limited and grown on
 * a half-size sample drawn with replacement (stochastic gradient boosting, Friedman 2002). K
 * boosters form a cross-fit: the training rows are split into K folds by group (a task's rows stay
 * together when `groups` is given, else by row), booster k trains on the other folds and stops
 * early on fold k (the stage with the least held-out squared error, after `patience` stages
 * without improvement). The prediction is the boosters' mean; the uncertainty is their spread
 * (std over the K boosters), the same kind of figure as a forest's spread over trees, which the
 * safe-default gate (safe-default.ts) reads.
 *
 * Settings are textbook values, not tuned to any data set (docs/META.md §3.2): learning rate 0.1,
 * leaves of at least 5 rows, 300 stages at most with early stopping (patience 20), 5 boosters,
 * all features per split, half-size stage samples. The tree depth is chosen per training call by
 * the same cross-fit (inner cross-validation): among 3, 5 and 7 (ESL §10.11's 4-8 leaves up to
 * the 31 leaves of LightGBM's and scikit-learn's HistGradientBoosting defaults), the depth whose
 * boosters have the least held-out squared error; the winner's interaction order depends on the
 * data (a method × machine × model × workload residual needs deeper trees than one that follows
 * a single feature), so no one depth is right for every set.
 */
import { SwarmtuneError } from '../util/errors.js'
import { createRng } from '../util/random.js'
import type { ForestOptions, ForestPrediction, LearnerBackend, RegressionForest } from './learner.js'
import { binMatrix, binStride } from './forest/binning.js'
import { HistogramForest, type HistogramForestSnapshot } from './forest/model.js'
import { buildTree, treeSeed, type TreeArrays, type TreeParams } from './forest/tree.js'

export const BOOSTED_BACKEND = 'boosted-trees'
export const BOOSTED_FORMAT = 'swarmtune-boosted-trees'
export const BOOSTED_VERSION = 1

export interface BoostingOptions extends ForestOptions {
  learningRate?: number
  /** stages per booster at most (`nTrees` of ForestOptions is the forest's count and is not read) */
  maxStages?: number
  /** stop after this many stages without a better held-out error */
  patience?: number
  /** boosters in the cross-fit (their spread is the uncertainty) */
  boosters?: number
  /** share of the training rows each stage draws (with replacement) */
  subsample?: number
}

/** General-purpose settings (see the module comment); not chosen on any evaluation set. */
export const BOOSTING_DEFAULTS = {
  learningRate: 0.1,
  /** candidate depths, chosen by the cross-fit's held-out error (ForestOptions.maxDepth fixes one) */
  depths: [3, 5, 7] as readonly number[],
  minSamplesLeaf: 5,
  maxStages: 300,
  patience: 20,
  boosters: 5,
  subsample: 0.5,
  seed: 42
} as const

export class BoostedSnapshotError extends SwarmtuneError {
  constructor (message: string) {
    super('E_BAD_SNAPSHOT', `boosted trees snapshot: ${message}`)
  }
}

export interface BoostedSnapshot {
  format: typeof BOOSTED_FORMAT
  version: number
  backend: typeof BOOSTED_BACKEND
  nFeatures: number
  params: Record<string, number>
  /** per booster: its base value and its stages as a histogram forest snapshot (leaf values already × lr); null when no stage helped */
  boosters: Array<{ base: number, stages: HistogramForestSnapshot | null }>
}

interface Booster { base: number, stages: HistogramForest | null }

export class BoostedTrees implements RegressionForest {
  readonly backend = BOOSTED_BACKEND
  constructor (readonly nFeatures: number, private readonly boosters: Booster[], readonly params: Record<string, number>) {
    if (boosters.length === 0) throw new BoostedSnapshotError('no booster')
  }

  /** Stages kept per booster (after early stopping). */
  get stages (): number[] {
    return this.boosters.map(b => b.stages?.nTrees ?? 0)
  }

  predict (X: number[][]): ForestPrediction {
    const per = this.boosters.map(b => {
      if (b.stages == null) return X.map(() => b.base)
      const p = b.stages.predict(X)
      // a histogram forest predicts the mean over its trees; a booster is their sum
      return p.mean.map(v => b.base + v * (b.stages as HistogramForest).nTrees)
    })
    const K = per.length
    const mean = X.map((_, i) => per.reduce((s, p) => s + p[i], 0) / K)
    const std = X.map((_, i) => Math.sqrt(per.reduce((s, p) => s + (p[i] - mean[i]) ** 2, 0) / K))
    return { mean, std }
  }

  toJSON (): BoostedSnapshot {
    return {
      format: BOOSTED_FORMAT,
      version: BOOSTED_VERSION,
      backend: BOOSTED_BACKEND,
      nFeatures: this.nFeatures,
      params: this.params,
      boosters: this.boosters.map(b => ({ base: b.base, stages: b.stages?.toJSON() ?? null }))
    }
  }

  static load (s: unknown): BoostedTrees {
    const o = s as Partial<BoostedSnapshot> | null
    if (o == null || typeof o !== 'object' || o.format !== BOOSTED_FORMAT) throw new BoostedSnapshotError('not a boosted-trees snapshot')
    if (o.version !== BOOSTED_VERSION) throw new BoostedSnapshotError(`version ${String(o.version)} is not ${BOOSTED_VERSION}`)
    if (!Array.isArray(o.boosters) || typeof o.nFeatures !== 'number') throw new BoostedSnapshotError('boosters or nFeatures missing')
    const boosters = o.boosters.map((b, i) => {
      if (b == null || typeof b.base !== 'number' || !Number.isFinite(b.base)) throw new BoostedSnapshotError(`booster ${i} has no finite base`)
      return { base: b.base, stages: b.stages == null ? null : HistogramForest.load(b.stages) }
    })
    return new BoostedTrees(o.nFeatures, boosters, o.params ?? {})
  }
}

/** Fold of each row: whole groups (seeded shuffle of the distinct groups, dealt round-robin), else rows. */
export function crossFitFolds (n: number, k: number, seed: number, groups?: readonly number[]): Int32Array {
  const ids = groups != null && groups.length === n ? groups : Array.from({ length: n }, (_, i) => i)
  const distinct = [...new Set(ids)].sort((a, b) => a - b)
  const rng = createRng(seed)
  for (let i = distinct.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [distinct[i], distinct[j]] = [distinct[j], distinct[i]]
  }
  const foldOf = new Map(distinct.map((g, i) => [g, i % k]))
  return Int32Array.from(ids, g => foldOf.get(g) as number)
}

/** Sum of a tree's leaf values over binned rows, added into out. */
function addTree (tree: TreeArrays, bins: Uint8Array, stride: number, rows: Int32Array, out: Float64Array): void {
  for (let r = 0; r < rows.length; r++) {
    const b = rows[r] * stride
    let k = 0
    while (tree.feature[k] >= 0) k = bins[b + tree.feature[k]] <= tree.bin[k] ? k + 1 : tree.right[k]
    out[r] += tree.value[k]
  }
}

interface FitInput { bins: Uint8Array, stride: number, nFeatures: number, nBins: Uint16Array, y: number[] }

type Settings = Required<Omit<BoostingOptions, 'sampleSize' | 'maxFeatures' | 'groups'>>

/** One booster: train on `train` rows, stop early on `valid` rows (none: all stages are kept); `sse`: its held-out squared error. */
function fitBooster (inp: FitInput, train: Int32Array, valid: Int32Array, o: Settings, seed: number): { base: number, trees: TreeArrays[], sse: number } {
  const { stride } = inp
  const sub = new Uint8Array(Math.max(4, train.length * stride))
  train.forEach((r, i) => sub.set(inp.bins.subarray(r * stride, (r + 1) * stride), i * stride))
  const yt = Float64Array.from(train, r => inp.y[r])
  const base = yt.reduce((s, v) => s + v, 0) / Math.max(1, yt.length)
  const fitT = new Float64Array(train.length).fill(base)
  const fitV = new Float64Array(valid.length).fill(base)
  const resid = new Float64Array(train.length)
  const params: TreeParams = { mtry: inp.nFeatures, maxDepth: o.maxDepth, minSamplesLeaf: o.minSamplesLeaf, bootstrap: true, sampleSize: Math.max(1, Math.round(o.subsample * train.length)), subtraction: false }
  const idxT = Int32Array.from(train, (_, i) => i)
  const trees: TreeArrays[] = []
  let best = validLoss(fitV, valid, inp.y)
  let bestAt = 0
  for (let s = 0; s < o.maxStages; s++) {
    for (let i = 0; i < train.length; i++) resid[i] = yt[i] - fitT[i]
    const tree = buildTree({ nRows: train.length, nFeatures: inp.nFeatures, bins: sub, nBins: inp.nBins, y: resid }, params, treeSeed(seed, s))
    for (let i = 0; i < tree.value.length; i++) tree.value[i] *= o.learningRate
    trees.push(tree)
    addTree(tree, sub, stride, idxT, fitT)
    if (valid.length === 0) continue
    addTree(tree, inp.bins, stride, valid, fitV)
    const loss = validLoss(fitV, valid, inp.y)
    if (loss < best - 1e-12) { best = loss; bestAt = s + 1 } else if (s + 1 - bestAt >= o.patience) break
  }
  return { base, trees: valid.length === 0 ? trees : trees.slice(0, bestAt), sse: best * valid.length }
}

function validLoss (fit: Float64Array, rows: Int32Array, y: number[]): number {
  let s = 0
  for (let i = 0; i < rows.length; i++) s += (y[rows[i]] - fit[i]) ** 2
  return rows.length > 0 ? s / rows.length : 0
}

/** Train K boosters as a cross-fit (see the module comment). `opts.groups`: a group id per row (a task), kept in one fold. */
export function trainBoostedTrees (X: number[][], y: number[], opts: BoostingOptions): BoostedTrees {
  if (!Array.isArray(X) || X.length === 0 || y.length !== X.length) throw new SwarmtuneError('E_BAD_TRAINING_DATA', `boosted trees: ${X.length} rows and ${y.length} targets`)
  if (!y.every(Number.isFinite)) throw new SwarmtuneError('E_BAD_TRAINING_DATA', 'boosted trees: a target is not finite')
  const nFeatures = X[0].length
  const o = {
    learningRate: opts.learningRate ?? BOOSTING_DEFAULTS.learningRate,
    maxDepth: 0,
    minSamplesLeaf: opts.minSamplesLeaf ?? BOOSTING_DEFAULTS.minSamplesLeaf,
    maxStages: opts.maxStages ?? BOOSTING_DEFAULTS.maxStages,
    patience: opts.patience ?? BOOSTING_DEFAULTS.patience,
    boosters: opts.boosters ?? BOOSTING_DEFAULTS.boosters,
    subsample: opts.subsample ?? BOOSTING_DEFAULTS.subsample,
    seed: (opts.seed ?? BOOSTING_DEFAULTS.seed) >>> 0,
    nTrees: opts.nTrees
  }
  const binned = binMatrix(X, nFeatures)
  const inp: FitInput = { bins: binned.bins, stride: binStride(nFeatures), nFeatures, nBins: binned.nBins, y }
  const nGroups = new Set(opts.groups ?? X.map((_, i) => i)).size
  const K = Math.max(1, Math.min(o.boosters, nGroups))
  const folds = crossFitFolds(X.length, K, o.seed, opts.groups)
  const edgeCounts = Int32Array.from(binned.nBins, n => n - 1)
  const rows = [...folds.keys()]
  const depths = opts.maxDepth != null ? [opts.maxDepth] : BOOSTING_DEFAULTS.depths
  let chosen: { depth: number, sse: number, boosters: Booster[] } | null = null
  for (const depth of depths) {
    const boosters: Booster[] = []
    let sse = 0
    for (let k = 0; k < K; k++) {
      const train = Int32Array.from(K > 1 ? rows.filter(i => folds[i] !== k) : rows)
      const valid = Int32Array.from(K > 1 ? rows.filter(i => folds[i] === k) : [])
      const fit = fitBooster(inp, train, valid, { ...o, maxDepth: depth }, treeSeed(o.seed, 1000 + k))
      sse += fit.sse
      const stages = fit.trees.length === 0 ? null : new HistogramForest(nFeatures, edgeCounts, binned.edges, fit.trees, { nTrees: fit.trees.length, learningRate: o.learningRate, maxDepth: depth })
      boosters.push({ base: fit.base, stages })
    }
    // ties (e.g. no held-out rows) keep the shallower depth
    if (chosen == null || sse < chosen.sse - 1e-12) chosen = { depth, sse, boosters }
  }
  const { depth, boosters } = chosen as { depth: number, boosters: Booster[] }
  const params = { learningRate: o.learningRate, maxDepth: depth, minSamplesLeaf: o.minSamplesLeaf, maxStages: o.maxStages, patience: o.patience, boosters: K, subsample: o.subsample, seed: o.seed, trainRows: X.length }
  return new BoostedTrees(nFeatures, boosters, params)
}

export const boostedBackend: LearnerBackend = {
  name: BOOSTED_BACKEND,
  async train (X, y, opts) { return trainBoostedTrees(X, y, opts) },
  load (snapshot) { return BoostedTrees.load(snapshot) }
}
