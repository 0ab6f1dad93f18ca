import { parseFlags, intFlag, fractionFlag, printJson } from '../args.js'
import { apiUrl } from '../../node/api-client.js'
import { SwarmtuneError } from '../../util/errors.js'
import { buildDataset, type HistoryBody, type Split } from '../../meta/dataset.js'
import { evaluate, formatEvalTable, formatPerHost } from '../../meta/eval.js'
import { getBackend } from '../../meta/ml-forest.js'
import { readHistoryApi, readHistoryDataDir, readHistoryFile } from '../history-source.js'
import type { LearnerBackend } from '../../meta/learner.js'
import { DATA_DIR_HELP } from '../../node/data-dir.js'

const HELP = `usage: swarmtune eval [--split hardware|model|workload|random] [--history FILE.jsonl | --data-dir D | --api URL]
                      [--trees N] [--seed S] [--min-leaf N] [--max-features F]
                      [--no-histogram] [--no-ml] [--no-boost] [--per-host] [--json]

Grouped cross-validation of method selectors on a performance history: each fold holds out
one host / model / workload group (or random tasks) and scores the choice on it. No method
called \`baseline\` is needed: each task's reference is its baseline, else its median setting;
tasks with no ok measurement or a single method are excluded and counted (\`excluded\`).
The row marked * (\`"default": true\`) is the learner the daemon uses.
  --history FILE   record bodies (JSONL, or a \`history --json\` array)
  --data-dir D     a stopped daemon's data dir (reads D/store)
  --api URL        a running daemon (default when no source is given: $SWARMTUNE_API or :4100)
  --min-leaf N     minimum samples per leaf for both forests (default 2; ml-random-forest reads it
                   as "do not split a node of N rows or fewer", the histogram forest as a leaf's
                   least bootstrap weight)
  --max-features F share of the columns tried (default 1: per split for the histogram forest,
                   per tree for ml-random-forest)
  --no-ml          leave out the ml-random-forest row (rows^2: most of the run time)
  --no-boost       leave out the stronger-learner rows (boosted-trees+pairwise-prior[+safe-default],
                   histogram-forest(sklearn-defaults)+pairwise-prior)
  --per-host       also print each machine's (host's) mean regret per selector, not only the mean
  --json           {split, folds, tasks, rows:[{selector, top1, top1Within3pct, regret, speedupOverBaseline,
                   oracleShare, default?}], reference:{rule, counts}, excluded, grouping,
                   safeDefault?:{trustedFolds, untrusted, gated, learner, checks}} (the default row's decisions),
                   boostedSafeDefault? (the same for the boosted row), perHost:[{host, label, tasks,
                   regret:{selector: mean regret}}] (every test task of the host, whatever the split)
${DATA_DIR_HELP}`

const SPLITS: Split[] = ['hardware', 'model', 'workload', 'random']

export async function run (argv: string[]): Promise<number> {
  const { values: f } = parseFlags(argv, {
    split: { type: 'string' },
    history: { type: 'string' },
    'data-dir': { type: 'string' },
    api: { type: 'string' },
    trees: { type: 'string' },
    seed: { type: 'string' },
    'min-leaf': { type: 'string' },
    'max-features': { type: 'string' },
    'no-histogram': { type: 'boolean' },
    'no-ml': { type: 'boolean' },
    'no-boost': { type: 'boolean' },
    'per-host': { type: 'boolean' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' }
  })
  if (f.help === true) { process.stdout.write(HELP); return 0 }
  const split = (f.split ?? 'hardware') as Split
  if (!SPLITS.includes(split)) throw new SwarmtuneError('E_USAGE', `--split must be one of ${SPLITS.join(', ')}`)
  let history: HistoryBody[]
  if (f.history != null) history = await readHistoryFile(f.history)
  else if (f['data-dir'] != null) history = await readHistoryDataDir(f['data-dir'])
  else history = await readHistoryApi(apiUrl(f.api))
  if (history.length === 0) throw new SwarmtuneError('E_EMPTY_HISTORY', 'the history is empty: record some with `swarmtune bench` first')
  const ds = buildDataset(history)
  const backends: Record<string, LearnerBackend> = {}
  if (f['no-histogram'] !== true) {
    try { backends['histogram-forest'] = await getBackend('histogram') } catch { /* not built: row omitted */ }
  }
  const tty = process.stderr.isTTY && f.json !== true
  const t0 = Date.now()
  const result = await evaluate(ds, {
    split,
    nTrees: intFlag(f.trees, 'trees', 30),
    seed: intFlag(f.seed, 'seed', 1),
    minSamplesLeaf: intFlag(f['min-leaf'], 'min-leaf', 2),
    maxFeatures: fractionFlag(f['max-features'], 'max-features', 1),
    mlRandomForest: f['no-ml'] !== true,
    strongerLearners: f['no-boost'] !== true,
    backends,
    onProgress: (done, total, what) => {
      const el = (Date.now() - t0) / 1000
      const eta = done > 0 ? el / done * (total - done) : 0
      const line = `[${done}/${total}] ${what} (${el.toFixed(0)} s, ETA ${eta.toFixed(0)} s)`
      if (tty) process.stderr.write(`\r${line}\x1b[K`)
      else if (f.json !== true) process.stderr.write(line + '\n')
    }
  })
  if (tty) process.stderr.write('\r\x1b[K')
  if (f.json === true) {
    printJson({ split: result.split, folds: result.folds, tasks: result.tasks, rows: result.rows, reference: result.reference, excluded: result.excluded, grouping: result.grouping, ...(result.safeDefault != null ? { safeDefault: result.safeDefault } : {}), ...(result.boostedSafeDefault != null ? { boostedSafeDefault: result.boostedSafeDefault } : {}), perHost: result.perHost })
  } else {
    process.stdout.write(formatEvalTable(result) + '\n')
    if (f['per-host'] === true) process.stdout.write('\n' + formatPerHost(result) + '\n')
  }
  return 0
}
