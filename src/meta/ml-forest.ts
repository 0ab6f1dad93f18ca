import { RandomForestRegression } from 'ml-random-forest'
import { SwarmtuneError } from '../util/errors.js'
import type { ForestOptions, ForestPrediction, LearnerBackend, RegressionForest } from './learner.js'

/**
 * The reference LearnerBackend over ml-random-forest (ml-cart trees). Its trainer tries every
 * split point with a full pass (rows² × features), so keep it to a few thousand rows; the
 * histogram backend (src/meta/forest, issue #5) is the one for scale. ml-random-forest bags
 * features per tree, not per split: `maxFeatures` is the share of columns each tree sees.
 */
export const ML_RF_BACKEND = 'ml-random-forest'

interface MlRfModel {
  predictionValues(X: number[][]): { rows: number, columns: number, get(i: number, j: number): number }
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

class MlForest implements RegressionForest {
  readonly backend = ML_RF_BACKEND
  constructor (private readonly model: MlRfModel | null, private readonly constant: number, private readonly width: number) {}

  predict (X: number[][]): ForestPrediction {
    if (X.length === 0) return { mean: [], std: [] }
    for (const row of X) if (row.length !== this.width) throw new SwarmtuneError('E_BAD_FEATURE', `expected ${this.width} columns, got ${row.length}`)
    if (this.model == null) return { mean: X.map(() => this.constant), std: X.map(() => 0) }
    const pv = this.model.predictionValues(X)
    const mean: number[] = []
    const std: number[] = []
    for (let i = 0; i < pv.rows; i++) {
      let s = 0
      let s2 = 0
      for (let j = 0; j < pv.columns; j++) {
        const v = pv.get(i, j)
        s += v
        s2 += v * v
      }
      const m = s / pv.columns
      mean.push(m)
      std.push(Math.sqrt(Math.max(0, s2 / pv.columns - m * m)))
    }
    return { mean, std }
  }

  toJSON (): unknown {
    return { backend: ML_RF_BACKEND, width: this.width, constant: this.constant, model: this.model?.toJSON() ?? null }
  }
}

export const mlForestBackend: LearnerBackend = {
  name: ML_RF_BACKEND,
  async train (X: number[][], y: number[], opts: ForestOptions): Promise<RegressionForest> {
    checkXy(X, y)
    const width = X[0].length
    const mean = y.reduce((s, v) => s + v, 0) / y.length
    // ml-cart cannot split fewer rows than minNumSamples and throws on constant targets in some
    // paths; a constant predictor is the honest answer there.
    if (X.length < 4 || y.every(v => v === y[0])) return new MlForest(null, mean, width)
    const frac = Math.min(1, Math.max(0, opts.maxFeatures ?? 1))
    let count = Math.max(1, Math.round(width * frac))
    // ml-random-forest reads an integer 1 as the fraction 1.0 (all columns)
    const maxFeatures = count === 1 ? 1.5 / width : count === width ? 1.0 : count
    if (count > width) count = width
    const rf = new RandomForestRegression({
      nEstimators: Math.max(1, opts.nTrees),
      maxFeatures,
      replacement: false,
      seed: (opts.seed ?? 42) | 0,
      useSampleBagging: true,
      noOOB: true,
      treeOptions: { maxDepth: opts.maxDepth ?? Infinity, minNumSamples: Math.max(1, opts.minSamplesLeaf ?? 3) }
    })
    rf.train(X, y)
    return new MlForest(rf as unknown as MlRfModel, mean, width)
  },
  load (snapshot: unknown): RegressionForest {
    const s = snapshot as { backend?: unknown, width?: unknown, constant?: unknown, model?: unknown }
    if (s == null || typeof s !== 'object' || s.backend !== ML_RF_BACKEND || typeof s.width !== 'number' || typeof s.constant !== 'number') {
      throw new SwarmtuneError('E_SNAPSHOT_CORRUPT', 'not an ml-random-forest snapshot')
    }
    if (s.model == null) return new MlForest(null, s.constant, s.width)
    try {
      return new MlForest(RandomForestRegression.load(s.model as any) as unknown as MlRfModel, s.constant, s.width)
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
  throw new SwarmtuneError('E_UNKNOWN_BACKEND', `unknown learner backend "${name}" (ml-random-forest | histogram)`)
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
