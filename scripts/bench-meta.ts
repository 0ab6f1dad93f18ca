import '../src/util/polyfill.js'
import { cpus } from 'node:os'
import { parseArgs } from 'node:util'
import { buildDataset, trainingRows } from '../src/meta/dataset.js'
import { FEATURE_NAMES } from '../src/meta/features.js'
import { getBackend } from '../src/meta/ml-forest.js'
import { synthHistory } from '../src/meta/synthetic.js'
import { createRng } from '../src/util/random.js'

/**
 * Meta-model training time and prediction latency at 1k / 5k / 20k rows (real feature vectors
 * from the structured synthetic history, target ln speedup). ml-random-forest's tree cost grows
 * like rows², so big sizes train only a few trees and the 50-tree time is extrapolated linearly
 * in trees (trees are independent); say so when reporting.
 *   node dist/scripts/bench-meta.js [--backend ml-random-forest|histogram] [--sizes 1000,5000,20000]
 *        [--trees 1000:10,5000:2,20000:1] [--json]
 */
async function main (): Promise<void> {
  const { values: f } = parseArgs({
    options: {
      backend: { type: 'string', default: 'ml-random-forest' },
      sizes: { type: 'string', default: '1000,5000' },
      trees: { type: 'string', default: '1000:10,5000:2,20000:1' },
      target: { type: 'string', default: '50' },
      json: { type: 'boolean' }
    }
  })
  const backend = await getBackend(f.backend as string)
  const treesAt = new Map((f.trees as string).split(',').map(s => s.split(':').map(Number) as [number, number]))
  const target = Number(f.target)
  const sizes = (f.sizes as string).split(',').map(Number)
  const maxN = Math.max(...sizes)
  // enough tasks for the largest size: 6 methods per task
  const side = Math.ceil(Math.sqrt(maxN / 6 / 9 / 0.9))
  const ds = buildDataset(synthHistory({ machines: side + 1, models: side + 1, workloads: 9, repeats: 1, failRate: 0, seed: 7 }))
  const rows = trainingRows(ds)
  const idx = rows.ySpeedup.map((_, i) => i).filter(i => Number.isFinite(rows.ySpeedup[i]))
  const rng = createRng(11)
  for (let i = idx.length - 1; i > 0; i--) { const j = Math.floor(rng() * (i + 1)); [idx[i], idx[j]] = [idx[j], idx[i]] }
  const out: Array<Record<string, number | string>> = []
  for (const n of sizes) {
    if (idx.length < n) throw new Error(`only ${idx.length} rows available for ${n}`)
    const X = idx.slice(0, n).map(i => rows.X[i])
    const y = idx.slice(0, n).map(i => rows.ySpeedup[i])
    const nTrees = treesAt.get(n) ?? 1
    if (f.json !== true) process.stderr.write(`training ${backend.name}: ${n} rows × ${FEATURE_NAMES.length} features × ${nTrees} trees...\n`)
    const t0 = process.hrtime.bigint()
    const forest = await backend.train(X, y, { nTrees, seed: 1, maxFeatures: 1, minSamplesLeaf: 2 })
    const trainS = Number(process.hrtime.bigint() - t0) / 1e9
    const Xp = X.slice(0, Math.min(1000, n))
    const t1 = process.hrtime.bigint()
    const reps = 3
    for (let r = 0; r < reps; r++) forest.predict(Xp)
    const predUs = Number(process.hrtime.bigint() - t1) / 1e3 / reps / Xp.length
    const snapshotBytes = JSON.stringify(forest.toJSON()).length
    if (f.json !== true) process.stderr.write(`  ${n} rows: ${trainS.toFixed(1)} s for ${nTrees} trees, predict ${predUs.toFixed(1)} µs/row\n`)
    out.push({
      rows: n,
      features: FEATURE_NAMES.length,
      treesTrained: nTrees,
      trainSeconds: round(trainS),
      secondsPerTree: round(trainS / nTrees),
      [`trainSeconds${target}Trees`]: round(trainS / nTrees * target),
      extrapolated: nTrees === target ? 'no' : `yes (×${target / nTrees})`,
      predictUsPerRow: round(predUs),
      predictUsPerRowPer100Trees: round(predUs / nTrees * 100),
      snapshotKiBPerTree: round(snapshotBytes / 1024 / nTrees)
    })
  }
  const meta = { backend: backend.name, cpu: cpus()[0]?.model ?? '?', cores: cpus().length, node: process.version, date: new Date().toISOString() }
  if (f.json === true) {
    process.stdout.write(JSON.stringify({ ...meta, results: out }, null, 2) + '\n')
    return
  }
  const keys = Object.keys(out[0])
  process.stdout.write(`${meta.backend} on ${meta.cpu} (${meta.cores} cores), node ${meta.node}, ${meta.date}\n`)
  process.stdout.write(`| ${keys.join(' | ')} |\n|${keys.map(() => '---').join('|')}|\n`)
  for (const r of out) process.stdout.write(`| ${keys.map(k => String(r[k])).join(' | ')} |\n`)
}

function round (x: number): number {
  return Math.round(x * 1000) / 1000
}

main().catch(err => {
  process.stderr.write(`bench-meta: ${(err as Error).stack ?? err}\n`)
  process.exitCode = 1
})
