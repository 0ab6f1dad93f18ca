import { parseFlags, intFlag, fractionFlag, printJson } from '../args.js'
import { SwarmtuneError } from '../../util/errors.js'
import { evaluateScenario, readScenario } from '../../meta/aslib.js'
import { getBackend } from '../../meta/ml-forest.js'

const HELP = `usage: swarmtune eval-aslib DIR [--backend ml-random-forest|histogram|boosted-trees] [--trees N] [--max-features F]
                           [--sample N] [--min-leaf N] [--folds 1,2,...] [--target log|raw]
                           [--seed S] [--json]

Evaluates the per-algorithm random-forest selector (PAR10 regression, --target log for log10) on an ASlib scenario
with the 10 folds of its cv.arff, in the Run2Survive convention (unsolved test instances skipped,
the selector pays feature costs, SBS/VBS do not).
  --json   {scenario, par10:{sbs, vbs, selector}, normalizedGap, folds}
`

export async function run (argv: string[]): Promise<number> {
  const { values: f, positionals } = parseFlags(argv, {
    backend: { type: 'string' },
    trees: { type: 'string' },
    'max-features': { type: 'string' },
    sample: { type: 'string' },
    'min-leaf': { type: 'string' },
    folds: { type: 'string' },
    target: { type: 'string' },
    seed: { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' }
  }, true)
  if (f.help === true) { process.stdout.write(HELP); return 0 }
  if (positionals.length !== 1) throw new SwarmtuneError('E_USAGE', 'eval-aslib needs exactly one scenario folder (swarmtune eval-aslib DIR)')
  const maxFeatures = fractionFlag(f['max-features'], 'max-features', 0.5)
  const onlyFolds = f.folds?.split(',').map(s => intFlag(s.trim(), 'folds', 0))
  const backend = await getBackend(f.backend ?? 'ml-random-forest')
  const sc = await readScenario(positionals[0])
  const sample = f.sample != null ? intFlag(f.sample, 'sample', 0) : undefined
  const tty = process.stderr.isTTY && f.json !== true
  const t0 = Date.now()
  const r = await evaluateScenario(sc, {
    backend,
    nTrees: intFlag(f.trees, 'trees', 16),
    maxFeatures,
    minSamplesLeaf: intFlag(f['min-leaf'], 'min-leaf', 3),
    sampleSize: sample,
    seed: intFlag(f.seed, 'seed', 1),
    onlyFolds,
    target: f.target === 'log' ? 'log' : 'raw',
    onProgress: (done, total, what) => {
      const el = (Date.now() - t0) / 1000
      const eta = el / done * (total - done)
      const line = `[${done}/${total}] ${what} (${el.toFixed(0)} s, ETA ${eta.toFixed(0)} s)`
      if (tty) process.stderr.write(`\r${line}\x1b[K`)
      else if (f.json !== true) process.stderr.write(line + '\n')
    }
  })
  if (tty) process.stderr.write('\r\x1b[K')
  if (f.json === true) {
    printJson({ scenario: r.scenario, par10: r.par10, normalizedGap: r.normalizedGap, normalizedGapPooled: r.normalizedGapPooled, folds: r.folds, backend: r.backend, trees: r.trees, seconds: (Date.now() - t0) / 1000 })
    return 0
  }
  const out = [
    `scenario ${r.scenario}: ${sc.instances.length} instances, ${sc.algorithms.length} algorithms, ${sc.featureNames.length} features, cutoff ${sc.cutoff}`,
    `backend ${r.backend}, ${r.trees} trees, ${r.folds.length} folds, ${((Date.now() - t0) / 1000).toFixed(0)} s`,
    'fold  n     SBS         VBS         selector    gap',
    ...r.folds.map(x => `${String(x.fold).padEnd(4)}  ${String(x.instances).padEnd(4)}  ${x.sbs.toFixed(2).padStart(10)}  ${x.vbs.toFixed(2).padStart(10)}  ${x.selector.toFixed(2).padStart(10)}  ${x.gap.toFixed(4)}`),
    `PAR10  SBS ${r.par10.sbs.toFixed(2)}  VBS ${r.par10.vbs.toFixed(2)}  selector ${r.par10.selector.toFixed(2)}`,
    `normalized gap ${r.normalizedGap.toFixed(4)} (mean over folds; pooled ${r.normalizedGapPooled.toFixed(4)})`
  ]
  process.stdout.write(out.join('\n') + '\n')
  return 0
}
