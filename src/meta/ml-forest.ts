import { RandomForestRegression } from 'ml-random-forest'
import { SwarmtuneError } from '../util/errors.js'
import { createRng } from '../util/random.js'
import type { ForestOptions, ForestPrediction, LearnerBackend, RegressionForest } from './learner.js'

/**
 * The reference LearnerBackend over ml-random-forest (ml-cart trees). Its trainer tries every
 * split point with a full pass (rows² × features), so keep it to a few thousand rows; the
 * histogram backend (src/meta/forest, issue #5) is the one for scale. ml-random-forest bags
 * features per tree, not per split: `maxFeatures` is the share of columns each tree sees.
 */
export const ML_RF_BACKEND = 'ml-random-forest'

interface MlRfModel {
  predict(X: number[][]): number[]
  toJSON(): unknown
}

function checkXy (X: number[][], y?: number[]): void {
  if (X.length === 0) throw new SwarmtuneError('E_EMPTY_TRAINING_SET', 'cannot train a forest on zero rows')
  const w = X[0].length
  for (let i = 0; i < X.length; i++) {
    const row = X[i]
    if (row.length !== w) throw new SwarmtuneError('E_BAD_FEATURE', `row ${i} has ${row.length} columns, expected ${w}`)
    for (const v of row) if (!Number.isFinite(v)) throw new SwarmtuneError('E_BAD_FEATURE', `row ${i} has a non-finite feature`)
    if (y != null && !Number.isFinite(y[i])) throw new SwarmtuneError('E_BAD_TARGET', `target ${i} is not finite`)
  }
  if (y != null && y.length !== X.length) throw new SwarmtuneError('E_BAD_TARGET', `${y.length} targets for ${X.length} rows`)
}

/**
 * Each tree is a one-estimator RandomForestRegression on its own bootstrap sample (drawn here
 * with a seeded RNG, `sampleSize` rows): ml-random-forest's own bagging always draws n rows and
 * its `maxSamples` takes the first rows, so this is how the per-tree cost is bounded. The
 * per-tree predictions give the spread the selection policy uses as uncertainty.
 */
class MlForest implements RegressionForest {
  readonly backend = ML_RF_BACKEND
  constructor (private readonly trees: MlRfModel[], private readonly constant: number, private readonly width: number) {}

  predict (X: number[][]): ForestPrediction {
    if (X.length === 0) return { mean: [], std: [] }
    for (const row of X) if (row.length !== this.width) throw new SwarmtuneError('E_BAD_FEATURE', `expected ${this.width} columns, got ${row.length}`)
    if (this.trees.length === 0) return { mean: X.map(() => this.constant), std: X.map(() => 0) }
    const s = new Float64Array(X.length)
    const s2 = new Float64Array(X.length)
    for (const t of this.trees) {
      const p = t.predict(X)
      for (let i = 0; i < X.length; i++) { s[i] += p[i]; s2[i] += p[i] * p[i] }
    }
    const n = this.trees.length
    const mean: number[] = []
    const std: number[] = []
    for (let i = 0; i < X.length; i++) {
      const m = s[i] / n
      mean.push(m)
      std.push(Math.sqrt(Math.max(0, s2[i] / n - m * m)))
    }
    return { mean, std }
  }

  toJSON (): unknown {
    return { backend: ML_RF_BACKEND, width: this.width, constant: this.constant, trees: this.trees.map(t => t.toJSON()) }
  }
}

export const mlForestBackend: LearnerBackend = {
  name: ML_RF_BACKEND,
  async train (X: number[][], y: number[], opts: ForestOptions): Promise<RegressionForest> {
    checkXy(X, y)
    const width = X[0].length
    const mean = y.reduce((s, v) => s + v, 0) / y.length
    // ml-cart needs a few rows to split, and a constant target has nothing to learn
    if (X.length < 4 || y.every(v => v === y[0])) return new MlForest([], mean, width)
    const frac = Math.min(1, Math.max(0, opts.maxFeatures ?? 1))
    const count = Math.min(width, Math.max(1, Math.round(width * frac)))
    // ml-random-forest reads an integer 1 as the fraction 1.0 (all columns)
    const maxFeatures = count === 1 ? 1.5 / width : count === width ? 1.0 : count
    const sample = Math.max(2, Math.min(opts.sampleSize ?? X.length, X.length * 4))
    const rng = createRng((opts.seed ?? 42) >>> 0)
    const trees: MlRfModel[] = []
    for (let t = 0; t < Math.max(1, opts.nTrees); t++) {
      const Xs: number[][] = new Array(sample)
      const ys: number[] = new Array(sample)
      for (let i = 0; i < sample; i++) {
        const j = Math.floor(rng() * X.length)
        Xs[i] = X[j]
        ys[i] = y[j]
      }
      const rf = new RandomForestRegression({
        nEstimators: 1,
        maxFeatures,
        replacement: false,
        seed: Math.floor(rng() * 2 ** 31),
        useSampleBagging: false,
        noOOB: true,
        treeOptions: { maxDepth: opts.maxDepth ?? Infinity, minNumSamples: Math.max(1, opts.minSamplesLeaf ?? 3) }
      })
      rf.train(Xs, ys)
      trees.push(rf as unknown as MlRfModel)
      // yield between trees so a caller on the main thread (CLI progress, tests) is not starved
      if (t % 8 === 7) await new Promise(resolve => setImmediate(resolve))
    }
    return new MlForest(trees, mean, width)
  },
  load (snapshot: unknown): RegressionForest {
    const s = snapshot as { backend?: unknown, width?: unknown, constant?: unknown, trees?: unknown }
    if (s == null || typeof s !== 'object' || s.backend !== ML_RF_BACKEND || typeof s.width !== 'number' || typeof s.constant !== 'number' || !Array.isArray(s.trees)) {
      throw new SwarmtuneError('E_SNAPSHOT_CORRUPT', 'not an ml-random-forest snapshot')
    }
    try {
      return new MlForest(s.trees.map(t => RandomForestRegression.load(t) as unknown as MlRfModel), s.constant, s.width)
    } catch (err) {
      throw new SwarmtuneError('E_SNAPSHOT_CORRUPT', `ml-random-forest snapshot does not load: ${(err as Error).message}`, { cause: err })
    }
  }
}

export type BackendName = 'ml-random-forest' | 'histogram'

/**
 * Learner registry. 'histogram' is issue #5's backend, imported lazily so this module works
 * before (or without) it; an unavailable backend is E_UNKNOWN_BACKEND.
 */
export async function getBackend (name: string): Promise<LearnerBackend> {
  if (name === ML_RF_BACKEND) return mlForestBackend
  if (name === 'histogram') {
    try {
      const spec = './forest/index.js' // a variable, so tsc compiles this before issue #5 lands
      const mod = await import(spec) as { histogramBackend?: LearnerBackend }
      if (mod.histogramBackend != null) return mod.histogramBackend
    } catch (err) {
      throw new SwarmtuneError('E_UNKNOWN_BACKEND', `learner backend "histogram" is not available: ${(err as Error).message}`, { cause: err })
    }
    throw new SwarmtuneError('E_UNKNOWN_BACKEND', 'src/meta/forest/index.js does not export histogramBackend')
  }
  if (name === 'boosted-trees') return (await import('./boosting.js')).boostedBackend
  throw new SwarmtuneError('E_UNKNOWN_BACKEND', `unknown learner backend "${name}" (ml-random-forest | histogram | boosted-trees)`)
}

/** Whether a backend can be loaded here (eval adds the histogram row only when it can). */
export async function backendAvailable (name: string): Promise<boolean> {
  try {
    await getBackend(name)
    return true
  } catch {
    return false
  }
}
