import { readFileSync } from 'node:fs'
import { buildDataset, hostKeyOf, type Task } from '../src/meta/dataset.js'
import { logPerf, perfOf, SafeDefault, shapeKey, type Predictor } from '../src/meta/safe-default.js'
import { makeFolds } from '../src/meta/eval.js'
import { featureVector, taskFeatures } from '../src/meta/features.js'
import { getBackend } from '../src/meta/ml-forest.js'
import { priorPredictorOf, trainPairwisePrior } from '../src/meta/pairwise-prior.js'
import type { Split } from '../src/meta/dataset.js'

/**
 * Experiment for issue 16 (goal: the default selector strictly lower than single-best "where the
 * data allows it", the framework table's random split): does a task's own host's pairwise
 * evidence, or another learner target, beat single-best on held-out tasks? Everything on eval's
 * outer folds (eval.ts makeFolds), regret as eval scores it. Rows:
 * - `single-best`: the pairwise ranking over all training tasks (eval's row);
 * - `per-host-best k=K`: pw(m, d | host) shrunk towards the global pw by n / (n + K), n = the
 *   host's training tasks that measured both (K = 0: the host's own evidence only);
 * - `per-host-model-best k=K`, `per-host-workload-best k=K` (K = 0, 5): one level further (host ×
 *   logical model, host × workload shape), shrunk towards the host's evidence shrunk with the same K;
 * - `learner` (eval's `histogram-forest+pairwise-prior`), `learner host-prior k=5` (the same
 *   forest with the host-shrunk pairwise evidence as its prior), `forest raw ln tput` (a forest
 *   on ln throughput itself, no per-task normalisation) and `learner + raw` (sum of the two
 *   scores, the raw one centred per task);
 * - `per-host-knn-best K`: pairwise evidence of the K training tasks of the task's host nearest to
 *   it in the task features (standardised over the training tasks; model size, lengths, batch),
 *   falling back to the global evidence for pairs they never measured (K = 3, 10);
 * - with `--gate`: the raw-throughput forest behind the daemon's safe-default gate
 *   (SafeDefault.train, the same inner checks as the default row).
 * - with `--inner-folds N`: the default selector (the learner behind the safe-default gate, as
 *   eval's default row) with N inner folds in its trust checks instead of TRUST_FOLDS (3).
 * Forests: 30 trees, leaves of 2, all features (eval's), or `--trees N --min-leaf N`.
 * usage: node dist/scripts/exp-host-evidence.js HISTORY.jsonl [--split random] [--seeds 1,2,3] [--gate] [--inner-folds N] [--trees N] [--min-leaf N] [--json]
 */

type Of = (a: string, b: string) => number | undefined

/** Mean ln perf ratio per ordered pair over some tasks, with the count (safe-default.ts Pairwise, counts exposed). */
class PairStats {
  private readonly s = new Map<string, [number, number]>()
  constructor (tasks: readonly Task[]) {
    for (const t of tasks) {
      const perf = [...perfOf(t)].filter(([, p]) => Number.isFinite(p))
      for (const [a, pa] of perf) {
        for (const [b, pb] of perf) {
          if (a === b) continue
          const e = this.s.get(a + ' ' + b) ?? [0, 0]
          e[0] += logPerf(pa) - logPerf(pb)
          e[1]++
          this.s.set(a + ' ' + b, e)
        }
      }
    }
  }

  n (a: string, b: string): number { return this.s.get(a + ' ' + b)?.[1] ?? 0 }
  of (a: string, b: string): number | undefined { const e = this.s.get(a + ' ' + b); return e == null ? undefined : e[0] / e[1] }
}

/** Empirical-Bayes shrinkage: the local mean weighs n / (n + k) against the parent's. */
function shrunk (local: PairStats | undefined, parent: Of, k: number): Of {
  return (a, b) => {
    const p = parent(a, b)
    const n = local?.n(a, b) ?? 0
    if (local == null || n === 0) return p
    const l = local.of(a, b) as number
    return p == null ? l : (n * l + k * p) / (n + k)
  }
}

function byKey (tasks: readonly Task[], key: (t: Task) => string): Map<string, PairStats> {
  const g = new Map<string, Task[]>()
  for (const t of tasks) {
    const k = key(t)
    const arr = g.get(k) ?? []
    arr.push(t)
    g.set(k, arr)
  }
  return new Map([...g].map(([k, ts]) => [k, new PairStats(ts)]))
}

/** safe-default.ts bestOf on any pairwise function (same tie rule). */
function bestBy (of: Of, cands: readonly string[]): string {
  let best = cands[0]
  let bs = -Infinity
  for (const c of cands) {
    let s = 0
    for (const d of cands) if (d !== c) s += of(c, d) ?? 0
    if (s > bs || (s === bs && c < best)) { bs = s; best = c }
  }
  return best
}

function priorOf (of: Of, m: string, cands: readonly string[]): number {
  let s = 0
  for (const d of cands) if (d !== m) s += of(m, d) ?? 0
  return cands.length > 0 ? s / cands.length : 0
}

function regretOf (perf: Map<string, number>, m: string): number {
  const best = Math.max(...[...perf.values()].filter(Number.isFinite))
  return best > 0 ? 1 - (perf.get(m) ?? 0) / best : 0
}

function argmax (v: readonly number[]): number {
  let bi = 0
  v.forEach((x, i) => { if (x > v[bi]) bi = i })
  return bi
}

const args = process.argv.slice(2)
const opt = (name: string): string | undefined => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined }
const file = args[0]
if (file == null || file.startsWith('--')) {
  process.stderr.write('usage: exp-host-evidence HISTORY.jsonl [--split random] [--seeds 1,2,3] [--gate] [--inner-folds N] [--trees N] [--min-leaf N] [--json]\n')
  process.exit(2)
}
const split = (opt('--split') ?? 'random') as Split
const seeds = (opt('--seeds') ?? '1').split(',').map(Number)
const gate = args.includes('--gate')
const innerFolds = opt('--inner-folds') != null ? Number(opt('--inner-folds')) : undefined
const ds = buildDataset(readFileSync(file, 'utf8').split('\n').filter(l => l.trim() !== '').map(l => JSON.parse(l)))
const tasks = ds.tasks.filter(t => t.reference != null && t.cells.size >= 2)
const host = (t: Task): string => hostKeyOf(t.info.hardware)
const backend = await getBackend('histogram')
const nTrees = Number(opt('--trees') ?? 30)
const minSamplesLeaf = Number(opt('--min-leaf') ?? 2)
const fo = (seed: number): { nTrees: number, maxFeatures: number, minSamplesLeaf: number, seed: number } => ({ nTrees, maxFeatures: 1, minSamplesLeaf, seed })

/** A forest on ln perf − task mean − prior(of) (pairwise-prior.ts residualRows with any pairwise function), its scores. */
async function priorLearner (train: readonly Task[], ofFor: (t: Task) => Of, seed: number): Promise<Predictor> {
  const X: number[][] = []
  const y: number[] = []
  const groups: number[] = []
  train.forEach((t, ti) => {
    const perf = [...perfOf(t)].filter(([, p]) => Number.isFinite(p))
    const cands = perf.map(([m]) => m)
    const lp = perf.map(([, p]) => logPerf(p))
    const mu = lp.reduce((a, b) => a + b, 0) / Math.max(1, lp.length)
    const of = ofFor(t)
    perf.forEach(([m], i) => {
      const c = t.cells.get(m)
      if (c == null || c.failed) return
      X.push(featureVector(t.info, c.knobs))
      y.push(lp[i] - mu - priorOf(of, m, cands))
      groups.push(ti)
    })
  })
  const forest = await backend.train(X, y, { ...fo(seed), groups })
  return (t, cands) => {
    const p = forest.predict(cands.map(m => featureVector(t.info, t.cells.get(m)?.knobs ?? ds.methodKnobs[m] ?? {})))
    const of = ofFor(t)
    return { mean: p.mean.map((v, i) => v + priorOf(of, cands[i], cands)), std: p.std }
  }
}

/** A forest on ln throughput of every ok cell (no per-task normalisation): what a plain regressor on the table learns. */
async function rawLearner (train: readonly Task[], seed: number): Promise<Predictor> {
  const X: number[][] = []
  const y: number[] = []
  const groups: number[] = []
  train.forEach((t, ti) => {
    for (const c of t.cells.values()) {
      if (c.failed || !(c.throughput > 0)) continue
      X.push(featureVector(t.info, c.knobs))
      y.push(Math.log(c.throughput))
      groups.push(ti)
    }
  })
  const forest = await backend.train(X, y, { ...fo(seed), groups })
  return (t, cands) => forest.predict(cands.map(m => featureVector(t.info, t.cells.get(m)?.knobs ?? ds.methodKnobs[m] ?? {})))
}

interface Row { regret: number, wins: number, losses: number }
const out: Array<{ seed: number, folds: number, tasks: number, rows: Record<string, Row>, gateTrusted?: string[] }> = []
for (const seed of seeds) {
  const folds = makeFolds(tasks, split, seed)
  const rows: Record<string, Row> = {}
  const gateTrusted: string[] = []
  for (let f = 0; f < folds.length; f++) {
    const train = folds.filter((_, i) => i !== f).flat()
    const g = new PairStats(train)
    const gOf: Of = (a, b) => g.of(a, b)
    const hosts = byKey(train, host)
    const hostModels = byKey(train, t => host(t) + '|' + t.modelId)
    const hostShapes = byKey(train, t => host(t) + '|' + t.workload)
    const hostOf = (t: Task, k: number): Of => shrunk(hosts.get(host(t)), gOf, k)
    const feats = train.map(t => taskFeatures(t.info))
    const mu = feats[0].map((_, j) => feats.reduce((a, r) => a + r[j], 0) / feats.length)
    const sd = feats[0].map((_, j) => Math.sqrt(feats.reduce((a, r) => a + (r[j] - mu[j]) ** 2, 0) / feats.length) || 1)
    const z = (r: number[]): number[] => r.map((v, j) => (v - mu[j]) / sd[j])
    const zs = feats.map(z)
    const knnOf = (t: Task, k: number): Of => {
      const q = z(taskFeatures(t.info))
      const near = train.map((u, i) => ({ u, d: host(u) === host(t) ? zs[i].reduce((a, v, j) => a + (v - q[j]) ** 2, 0) : Infinity }))
        .filter(x => Number.isFinite(x.d)).sort((a, b) => a.d - b.d).slice(0, k).map(x => x.u)
      const local = new PairStats(near)
      return (a, b) => local.of(a, b) ?? gOf(a, b)
    }
    const learner = await priorLearner(train, () => gOf, seed + f)
    const hostLearner = await priorLearner(train, t => hostOf(t, 5), seed + f)
    const raw = await rawLearner(train, seed + f)
    let gated: ((t: Task, cands: string[]) => string) | undefined
    if (gate) {
      const { policy, profile } = await SafeDefault.train(train, async tr => await rawLearner(tr, seed + f), { seed: seed + f })
      gateTrusted.push((['seen', 'seenHost', 'unseen', 'newModel'] as const).map(k => profile[k].trusted ? `${k} z=${String(profile[k].z)}` : '-').join(' '))
      const known = new Set(train.map(t => t.hardwareId))
      gated = (t, cands) => {
        const p = raw(t, cands)
        return policy.decide(shapeKey(t.modelId, t.workload), cands.map((method, i) => ({ method, mean: p.mean[i], std: p.std[i] })), known.has(t.hardwareId)).choice
      }
    }
    let inner: ((t: Task, cands: string[]) => string) | undefined
    if (innerFolds != null) {
      const fit = async (tr: Task[]): Promise<Predictor> => priorPredictorOf(await trainPairwisePrior(tr, backend, fo(seed + f)), ds.methodKnobs)
      const { policy, profile } = await SafeDefault.train(train, fit, { seed: seed + f, folds: innerFolds })
      const predict = await fit(train)
      const known = new Set(train.map(t => t.hardwareId))
      gateTrusted.push('inner ' + (['seen', 'seenHost', 'unseen', 'newModel'] as const).map(k => profile[k].trusted ? `${k} z=${String(profile[k].z)}` : '-').join(' '))
      inner = (t, cands) => {
        const p = predict(t, cands)
        return policy.decide(shapeKey(t.modelId, t.workload), cands.map((method, i) => ({ method, mean: p.mean[i], std: p.std[i] })), known.has(t.hardwareId)).choice
      }
    }
    for (const t of folds[f]) {
      const perf = perfOf(t)
      const cands = [...perf.keys()].filter(m => Number.isFinite(perf.get(m))).sort()
      const sb = regretOf(perf, bestBy(gOf, cands))
      const add = (name: string, m: string): void => {
        const r = regretOf(perf, m)
        const row = rows[name] ??= { regret: 0, wins: 0, losses: 0 }
        row.regret += r
        if (r < sb - 1e-12) row.wins++
        else if (r > sb + 1e-12) row.losses++
      }
      add('single-best', bestBy(gOf, cands))
      for (const k of [0, 5, 20]) add(`per-host-best k=${k}`, bestBy(hostOf(t, k), cands))
      for (const k of [0, 5]) {
        add(`per-host-model-best k=${k}`, bestBy(shrunk(hostModels.get(host(t) + '|' + t.modelId), hostOf(t, k), k), cands))
        add(`per-host-workload-best k=${k}`, bestBy(shrunk(hostShapes.get(host(t) + '|' + t.workload), hostOf(t, k), k), cands))
      }
      for (const k of [3, 10]) add(`per-host-knn-best ${k}`, bestBy(knnOf(t, k), cands))
      const pl = learner(t, cands).mean
      const pr = raw(t, cands).mean
      const mr = pr.reduce((a, b) => a + b, 0) / pr.length
      add('learner', cands[argmax(pl)])
      add('learner host-prior k=5', cands[argmax(hostLearner(t, cands).mean)])
      add('forest raw ln tput', cands[argmax(pr)])
      add('learner + raw', cands[argmax(pl.map((v, i) => v + pr[i] - mr))])
      if (gated != null) add('forest raw ln tput + safe-default', gated(t, cands))
      if (inner != null) add(`learner + safe-default, ${String(innerFolds)} inner folds`, inner(t, cands))
    }
  }
  for (const r of Object.values(rows)) r.regret /= tasks.length
  out.push({ seed, folds: folds.length, tasks: tasks.length, rows, ...(gate || innerFolds != null ? { gateTrusted } : {}) })
}
if (args.includes('--json')) process.stdout.write(JSON.stringify({ file, split, results: out }) + '\n')
else {
  for (const o of out) {
    process.stdout.write(`${file} split ${split} seed ${o.seed} (${o.tasks} tasks, ${o.folds} folds)\n`)
    for (const [name, r] of Object.entries(o.rows)) process.stdout.write(`  ${name.padEnd(36)} ${r.regret.toFixed(5)}  tasks won/lost vs single-best ${r.wins}/${r.losses}\n`)
    if (o.gateTrusted != null) process.stdout.write(`  gate trusted per fold (seen, seenHost, unseen, newModel; "inner": the default selector's checks): ${o.gateTrusted.join(' | ')}\n`)
  }
}
