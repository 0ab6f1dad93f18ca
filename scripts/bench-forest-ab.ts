/**
 * Before/after measurements of histogram forest internals, in one process (this VM's speed moves
 * from hour to hour, so only interleaved comparisons are meaningful). Used for the figures in
 * docs/BENCHMARKS.md § Histogram forest.
 *
 *   node dist/scripts/bench-forest-ab.js tree    --a OLD/dist/src/meta/forest/tree.js [--b ...] [--trees 16]
 *   node dist/scripts/bench-forest-ab.js predict --a OLD/dist/src/meta/forest/model.js [--b ...]
 *
 * tree: buildTree of the two versions on the 100k x 30 Friedman set, trees interleaved A/B,
 * the first three of each left out as warm-up. predict: one 100-tree forest trained at 100k rows,
 * loaded by both versions from the same snapshot, best of 5 predictions of 5,000 rows.
 * `--b` defaults to this build. An OLD build:
 * `git worktree add /tmp/old <commit> && cd /tmp/old && npm ci && npx tsc -p .`.
 */
import '../src/util/polyfill.js'
import { pathToFileURL } from 'node:url'
import { resolve } from 'node:path'
import { parseFlags, intFlag } from '../src/cli/args.js'
import { SwarmtuneError } from '../src/util/errors.js'
import { median } from '../src/util/stats.js'
import { binMatrix, trainHistogramForest } from '../src/meta/forest/index.js'
import { friedman1 } from '../src/meta/forest/datasets.js'
import type { TreeData, TreeParams } from '../src/meta/forest/tree.js'

type TreeModule = typeof import('../src/meta/forest/tree.js')
type ModelModule = typeof import('../src/meta/forest/model.js')

const here = (file: string): string => new URL(file, import.meta.url).href
const load = async <T> (path: string | undefined, fallback: string): Promise<T> => await import(path != null ? pathToFileURL(resolve(path)).href : here(fallback)) as T

async function tree (a: TreeModule, b: TreeModule, n: number): Promise<unknown> {
  const rows = 100_000
  const d = friedman1(rows, 30, 1)
  const binned = binMatrix(d.X, 30, 256)
  const data: TreeData = { nRows: rows, nFeatures: 30, bins: binned.bins, nBins: binned.nBins, y: Float64Array.from(d.y) }
  const params: TreeParams = { mtry: 15, maxDepth: 1000, minSamplesLeaf: 5, bootstrap: true, sampleSize: 0, subtraction: true }
  const ta: number[] = []
  const tb: number[] = []
  for (let t = 0; t < n; t++) {
    // alternate which goes first, so neither always runs right after the other's garbage
    const order: Array<[TreeModule, number[]]> = t % 2 === 0 ? [[a, ta], [b, tb]] : [[b, tb], [a, ta]]
    for (const [m, out] of order) {
      const t0 = performance.now()
      m.buildTree(data, params, m.treeSeed(1, t))
      out.push(performance.now() - t0)
    }
  }
  const sum = (x: number[]): number => x.slice(3).reduce((s, v) => s + v, 0)
  return { trees: n, medianMsA: median(ta.slice(3)), medianMsB: median(tb.slice(3)), ratioBoverA: sum(tb) / sum(ta) }
}

async function predict (a: ModelModule, b: ModelModule): Promise<unknown> {
  const d = friedman1(100_000, 30, 1)
  const forest = await trainHistogramForest(d.X, d.y, { nTrees: 100, seed: 1 })
  const snapshot = forest.toJSON()
  const X = friedman1(5000, 30, 2).X
  const micros = (m: ModelModule): number => {
    const f = m.HistogramForest.load(snapshot)
    f.predict(X.slice(0, 200))
    let best = Infinity
    for (let k = 0; k < 5; k++) {
      const t0 = performance.now()
      f.predict(X)
      best = Math.min(best, (performance.now() - t0) * 1000 / X.length)
    }
    return best
  }
  const first = micros(a)
  const second = micros(b)
  return { microsPerRowPer100TreesA: first, microsPerRowPer100TreesB: second, againA: micros(a), againB: micros(b) }
}

async function main (): Promise<void> {
  const { values: f, positionals } = parseFlags(process.argv.slice(2), { a: { type: 'string' }, b: { type: 'string' }, trees: { type: 'string' } }, true)
  const what = positionals[0]
  let result: unknown
  if (what === 'tree') {
    if (f.a == null) throw new SwarmtuneError('E_USAGE', 'tree needs --a PATH/TO/tree.js')
    result = await tree(await load<TreeModule>(f.a, '../src/meta/forest/tree.js'), await load<TreeModule>(f.b, '../src/meta/forest/tree.js'), intFlag(f.trees, 'trees', 16))
  } else if (what === 'predict') {
    if (f.a == null) throw new SwarmtuneError('E_USAGE', 'predict needs --a PATH/TO/model.js')
    result = await predict(await load<ModelModule>(f.a, '../src/meta/forest/model.js'), await load<ModelModule>(f.b, '../src/meta/forest/model.js'))
  } else {
    throw new SwarmtuneError('E_USAGE', 'usage: bench-forest-ab.js tree|predict --a PATH [--b PATH]')
  }
  process.stdout.write(JSON.stringify(result) + '\n')
}

main().catch((err) => {
  process.stderr.write(`bench-forest-ab failed: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exitCode = 1
})
