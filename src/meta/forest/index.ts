/**
 * Histogram random forest (issue #5): the `histogram` LearnerBackend. Features are quantile-binned
 * once (<= 256 bins, uint8), each tree grows on a bootstrap sample with per-split feature
 * subsampling and histogram split search (variance reduction), trees train in parallel on worker
 * threads sharing the binned matrix, and the result is deterministic for a seed whatever the
 * number of workers (each tree's seed derives from the forest seed and its index).
 */
import { existsSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { SwarmtuneError } from '../../util/errors.js'
import { log } from '../../util/log.js'
import type { ForestOptions, LearnerBackend } from '../learner.js'
import { binMatrix, MAX_BINS } from './binning.js'
import { BACKEND_NAME, HistogramForest } from './model.js'
import { buildTree, treeSeed, type TreeArrays, type TreeData, type TreeParams } from './tree.js'
import type { WorkerInit, WorkerJob, WorkerReply } from './worker.js'

export { HistogramForest, ForestSnapshotError, type HistogramForestSnapshot } from './model.js'
export { binMatrix, quantileEdges, MAX_BINS, type BinnedMatrix } from './binning.js'
export { buildTree, treeSeed, type TreeArrays, type TreeParams } from './tree.js'

const logger = log('forest')

export interface HistogramForestOptions extends ForestOptions {
  /** worker threads: 0 trains in this thread; 'auto' (default) uses up to min(cores, 4) for large jobs */
  workers?: number | 'auto'
  /** bins per feature, NaN bin included (2..256) */
  maxBins?: number
  /** bootstrap rows per tree (default true) */
  bootstrap?: boolean
  /** histogram subtraction down the tree (default true) */
  subtraction?: boolean
}

/**
 * Defaults chosen for the meta-model (a few hundred to 1e5 rows, 30-60 mixed features, many of
 * them weak): half the features per split, not the textbook third. Measured (held-out R2, 50 trees,
 * 2 seeds, docs/BENCHMARKS.md "## Histogram forest"): on Friedman #1 widened to 30 columns and on
 * meta-model-shaped data, maxFeatures 0.6-1.0 beats 1/3 by 0.01-0.06 at 300-5000 rows; leaves of 3
 * are as good as 1 and better than 5. 0.5 keeps most of that gain and trees decorrelated (the
 * spread is the policy's uncertainty) at 1.5x the split-search cost of 1/3.
 */
export const HISTOGRAM_DEFAULTS = {
  maxFeatures: 0.5,
  maxDepth: 40,
  minSamplesLeaf: 3,
  /** from this many training rows on, leaves of 5: a third fewer nodes (snapshot, speed), same R2 */
  largeRows: 20_000,
  minSamplesLeafLarge: 5,
  seed: 42,
  maxBins: MAX_BINS,
  bootstrap: true,
  subtraction: true
} as const

/** Below this many rows x trees, spawning workers costs more than it saves. */
const AUTO_WORKER_MIN_WORK = 200_000
const MAX_POOL = 4

export class ForestTrainingError extends SwarmtuneError {
  constructor (message: string) {
    super('E_BAD_TRAINING_DATA', `histogram forest: ${message}`)
  }
}

/** The compiled worker next to this module, or null when running from .ts sources (vitest). */
export function workerScript (): URL | null {
  if (!import.meta.url.endsWith('.js')) return null
  const url = new URL('./worker.js', import.meta.url)
  return existsSync(fileURLToPath(url)) ? url : null
}

function validate (X: number[][], y: number[], opts: HistogramForestOptions): number {
  if (!Array.isArray(X) || X.length === 0) throw new ForestTrainingError('no training rows')
  if (!Array.isArray(y) || y.length !== X.length) throw new ForestTrainingError(`X has ${X.length} rows but y has ${Array.isArray(y) ? y.length : 0}`)
  const nFeatures = Array.isArray(X[0]) ? X[0].length : 0
  if (nFeatures < 1 || nFeatures >= 0xffff) throw new ForestTrainingError(`bad feature count ${nFeatures}`)
  for (let i = 0; i < X.length; i++) {
    if (!Array.isArray(X[i]) || X[i].length !== nFeatures) throw new ForestTrainingError(`row ${i} does not have ${nFeatures} features`)
    if (typeof y[i] !== 'number' || !Number.isFinite(y[i])) throw new ForestTrainingError(`y[${i}] is not a finite number`)
  }
  if (!Number.isInteger(opts.nTrees) || opts.nTrees < 1) throw new ForestTrainingError(`nTrees must be a positive integer, got ${String(opts.nTrees)}`)
  if (opts.maxFeatures != null && !(opts.maxFeatures > 0 && opts.maxFeatures <= 1)) throw new ForestTrainingError('maxFeatures must be in (0, 1]')
  if (opts.sampleSize != null && !(Number.isInteger(opts.sampleSize) && opts.sampleSize >= 1)) throw new ForestTrainingError('sampleSize must be a positive integer')
  if (opts.maxBins != null && !(Number.isInteger(opts.maxBins) && opts.maxBins >= 2 && opts.maxBins <= MAX_BINS)) throw new ForestTrainingError(`maxBins must be an integer in [2, ${MAX_BINS}]`)
  return nFeatures
}

async function trainInThread (data: TreeData, params: TreeParams, seeds: number[]): Promise<TreeArrays[]> {
  const trees: TreeArrays[] = []
  for (let t = 0; t < seeds.length; t++) {
    trees.push(buildTree(data, params, seeds[t]))
    // let the event loop breathe between trees (a daemon keeps serving while it retrains)
    if (t + 1 < seeds.length) await new Promise((resolve) => setImmediate(resolve))
  }
  return trees
}

async function trainOnWorkers (script: URL, poolSize: number, data: TreeData, params: TreeParams, seeds: number[]): Promise<TreeArrays[]> {
  const trees: Array<TreeArrays | undefined> = new Array(seeds.length)
  const init: WorkerInit = { data, params }
  const workers: Worker[] = []
  try {
    await new Promise<void>((resolve, reject) => {
      let next = 0
      let done = 0
      let failed = false
      const fail = (err: Error): void => { if (!failed) { failed = true; reject(err) } }
      const feed = (w: Worker): void => {
        if (next >= seeds.length) return
        const job: WorkerJob = { tree: next, seed: seeds[next] }
        next++
        w.postMessage(job)
      }
      for (let i = 0; i < poolSize; i++) {
        const w = new Worker(script, { workerData: init })
        workers.push(w)
        w.on('message', (msg: WorkerReply) => {
          if ('error' in msg) { fail(new SwarmtuneError('E_FOREST_WORKER', `tree ${msg.tree}: ${msg.error}`)); return }
          trees[msg.tree] = { feature: msg.feature, bin: msg.bin, right: msg.right, value: msg.value }
          done++
          if (done === seeds.length) resolve()
          else feed(w)
        })
        w.on('error', (err) => fail(new SwarmtuneError('E_FOREST_WORKER', `worker failed: ${err.message}`, { cause: err })))
        w.on('exit', (code) => { if (done < seeds.length) fail(new SwarmtuneError('E_FOREST_WORKER', `worker exited with code ${code}`)) })
        feed(w)
      }
    })
  } finally {
    await Promise.all(workers.map(async (w) => { w.removeAllListeners('exit'); await w.terminate() }))
  }
  return trees as TreeArrays[]
}

/** Train a histogram forest (the `histogram` backend's train, with the extra options). */
export async function trainHistogramForest (X: number[][], y: number[], opts: HistogramForestOptions): Promise<HistogramForest> {
  const nFeatures = validate(X, y, opts)
  const maxFeatures = opts.maxFeatures ?? HISTOGRAM_DEFAULTS.maxFeatures
  const params: TreeParams = {
    mtry: Math.max(1, Math.round(maxFeatures * nFeatures)),
    maxDepth: opts.maxDepth ?? HISTOGRAM_DEFAULTS.maxDepth,
    minSamplesLeaf: opts.minSamplesLeaf ?? (X.length >= HISTOGRAM_DEFAULTS.largeRows ? HISTOGRAM_DEFAULTS.minSamplesLeafLarge : HISTOGRAM_DEFAULTS.minSamplesLeaf),
    bootstrap: opts.bootstrap ?? HISTOGRAM_DEFAULTS.bootstrap,
    subtraction: opts.subtraction ?? HISTOGRAM_DEFAULTS.subtraction,
    sampleSize: opts.sampleSize ?? 0
  }
  const seed = (opts.seed ?? HISTOGRAM_DEFAULTS.seed) >>> 0
  const binned = binMatrix(X, nFeatures, opts.maxBins ?? HISTOGRAM_DEFAULTS.maxBins)
  const yShared = new Float64Array(new SharedArrayBuffer(8 * X.length))
  yShared.set(y)
  const data: TreeData = { nRows: binned.nRows, nFeatures, bins: binned.bins, nBins: binned.nBins, y: yShared }
  const seeds = Array.from({ length: opts.nTrees }, (_, t) => treeSeed(seed, t))

  const requested = opts.workers ?? 'auto'
  let poolSize = requested === 'auto'
    ? (X.length * opts.nTrees >= AUTO_WORKER_MIN_WORK ? Math.min(availableParallelism(), MAX_POOL) : 0)
    : Math.max(0, Math.floor(requested))
  poolSize = Math.min(poolSize, opts.nTrees)
  const script = poolSize > 0 ? workerScript() : null
  if (poolSize > 0 && script == null) {
    logger('worker script not compiled (running from sources): training in-thread')
    poolSize = 0
  }
  const trees = poolSize > 0 && script != null
    ? await trainOnWorkers(script, poolSize, data, params, seeds)
    : await trainInThread(data, params, seeds)

  const edgeCounts = new Int32Array(nFeatures)
  for (let f = 0; f < nFeatures; f++) edgeCounts[f] = binned.nBins[f] - 1
  const forest = new HistogramForest(nFeatures, edgeCounts, binned.edges, trees, {
    nTrees: opts.nTrees,
    maxFeatures,
    maxDepth: params.maxDepth,
    minSamplesLeaf: params.minSamplesLeaf,
    seed,
    maxBins: opts.maxBins ?? HISTOGRAM_DEFAULTS.maxBins,
    bootstrap: params.bootstrap,
    subtraction: params.subtraction,
    sampleSize: params.sampleSize,
    trainRows: X.length
  })
  forest.workersUsed = poolSize
  return forest
}

export const histogramBackend: LearnerBackend = {
  name: BACKEND_NAME,
  async train (X, y, opts) { return await trainHistogramForest(X, y, opts) },
  load (snapshot) { return HistogramForest.load(snapshot) }
}
