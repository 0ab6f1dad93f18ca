import '../src/util/polyfill.js'
import { readFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { packageRoot } from '../src/util/paths.js'
import { evaluateScenario, readScenario, type AslibResult } from '../src/meta/aslib.js'
import { getBackend } from '../src/meta/ml-forest.js'

/**
 * Runs `eval-aslib` on the five shared ASlib scenarios (../shared/data/aslib, read at run time,
 * never copied) and prints our normalized gap beside the published Run2Survive numbers.
 *   node dist/scripts/eval-aslib-all.js [--backend ml-random-forest|histogram] [--trees N]
 *        [--max-features F] [--sample N] [--min-leaf N] [--scenarios A,B] [--seed N] [--folds 1,2] [--json]
 *
 * --seed varies the forests' seeds (the spread across seeds is the noise a comparison of backends
 * must beat); --folds evaluates only those cv folds, so the rows^2 ml-random-forest backend can be
 * compared with the histogram forest on the same folds in reasonable time.
 */
const SCENARIOS = ['ASP-POTASSCO', 'BNSL-2016', 'CSP-2010', 'SAT11-HAND', 'SAT11-RAND']

async function main (): Promise<void> {
  const { values: f } = parseArgs({
    options: {
      dir: { type: 'string' },
      backend: { type: 'string', default: 'ml-random-forest' },
      trees: { type: 'string', default: '16' },
      'max-features': { type: 'string', default: '0.5' },
      sample: { type: 'string' },
      'min-leaf': { type: 'string', default: '3' },
      scenarios: { type: 'string' },
      target: { type: 'string', default: 'raw' },
      seed: { type: 'string', default: '1' },
      folds: { type: 'string' },
      json: { type: 'boolean' }
    }
  })
  const dir = resolve(f.dir ?? join(packageRoot(), '..', 'shared', 'data', 'aslib'))
  const published = (await readFile(join(dir, 'published-normalized-par10.csv'), 'utf8')).trim().split('\n').slice(1).map(l => {
    const parts = l.split(',')
    return { scenario: parts[0], selector: parts.slice(1, -1).join(','), gap: Number(parts[parts.length - 1]) }
  })
  const backend = await getBackend(f.backend as string)
  const results: Array<AslibResult & { seconds: number, perAlgorithmRegressor: number, bestPublished: { selector: string, gap: number } }> = []
  for (const name of f.scenarios?.split(',') ?? SCENARIOS) {
    const t0 = Date.now()
    const sc = await readScenario(join(dir, name))
    const r = await evaluateScenario(sc, {
      backend,
      nTrees: Number(f.trees),
      maxFeatures: Number(f['max-features']),
      minSamplesLeaf: Number(f['min-leaf']),
      sampleSize: f.sample != null ? Number(f.sample) : undefined,
      target: f.target === 'log' ? 'log' : 'raw',
      seed: Number(f.seed),
      onlyFolds: f.folds?.split(',').map(Number),
      onProgress: (d, t, what) => { if (f.json !== true) process.stderr.write(`${name} [${d}/${t}] ${what} ${((Date.now() - t0) / 1000).toFixed(0)} s\n`) }
    })
    const pub = published.filter(p => p.scenario === name).sort((a, b) => a.gap - b.gap)
    const par = pub.find(p => p.selector === 'PerAlgorithmRegressor')
    process.stderr.write(`${name}: gap ${r.normalizedGap.toFixed(4)} (PerAlgorithmRegressor ${par?.gap ?? '?'}), PAR10 sel ${r.par10.selector.toFixed(1)} sbs ${r.par10.sbs.toFixed(1)} vbs ${r.par10.vbs.toFixed(1)}, ${((Date.now() - t0) / 1000).toFixed(0)} s\n`)
    results.push({ ...r, seconds: (Date.now() - t0) / 1000, perAlgorithmRegressor: par?.gap ?? NaN, bestPublished: { selector: pub[0]?.selector ?? '', gap: pub[0]?.gap ?? NaN } })
  }
  if (f.json === true) {
    process.stdout.write(JSON.stringify({ backend: backend.name, target: f.target, seed: Number(f.seed), folds: f.folds ?? 'all', trees: Number(f.trees), maxFeatures: Number(f['max-features']), sample: f.sample ?? null, results: results.map(r => ({ scenario: r.scenario, par10: r.par10, normalizedGap: r.normalizedGap, normalizedGapPooled: r.normalizedGapPooled, perAlgorithmRegressor: r.perAlgorithmRegressor, bestPublished: r.bestPublished, seconds: r.seconds })) }, null, 2) + '\n')
    return
  }
  const lines = [
    `backend ${backend.name}, target ${f.target}, seed ${f.seed}, folds ${f.folds ?? 'all'}, ${f.trees} trees, maxFeatures ${f['max-features']}, sample ${f.sample ?? 'all'}, min leaf ${f['min-leaf']}`,
    '| scenario | SBS PAR10 | VBS PAR10 | ours PAR10 | ours gap | PerAlgorithmRegressor | best published | time |',
    '|---|---|---|---|---|---|---|---|',
    ...results.map(r => `| ${r.scenario} | ${r.par10.sbs.toFixed(1)} | ${r.par10.vbs.toFixed(1)} | ${r.par10.selector.toFixed(1)} | ${r.normalizedGap.toFixed(4)} | ${r.perAlgorithmRegressor.toFixed(4)} | ${r.bestPublished.gap.toFixed(4)} (${r.bestPublished.selector}) | ${r.seconds.toFixed(0)} s |`)
  ]
  process.stdout.write(lines.join('\n') + '\n')
}

main().catch(err => {
  process.stderr.write(`eval-aslib-all: ${(err as Error).message}\n`)
  process.exitCode = 1
})
