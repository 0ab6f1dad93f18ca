import { SwarmtuneError } from '../util/errors.js'
import { createRng } from '../util/random.js'
import type { ForestOptions, LearnerBackend } from './learner.js'
import { priorPredictorOf, trainPairwisePrior } from './pairwise-prior.js'
import { taskFeatures } from './features.js'
import { groupTasks, shuffledFolds, trainingRows, type Dataset, type ReferenceRule, type Split, type Task } from './dataset.js'
import { featureVector } from './features.js'
import { boostedBackend } from './boosting.js'
import { hostKeyOf } from './dataset.js'
import { bestOf, FixedRule, Pairwise, perfOf, SafeDefault, shapeKey, type Predictor, type TrustProfile } from './safe-default.js'

/**
 * Grouped cross-validation of method selectors on a history (the paper's table). Every task with
 * an ok measurement has a reference (its baseline, else its median setting: dataset.ts
 * assignReference); tasks with fewer than two candidate methods offer no choice and are left
 * out, counted in `excluded`. perf(method) = throughput relative to the reference; a method that
 * failed on the task has perf 0; a method never measured on a test task is not a candidate
 * there. Folds: leave-one-group-out with ≤ 10 groups, else 5 folds of groups; the hardware
 * split groups by host (dataset.ts hostKeyOf).
 */
export interface EvalRow {
  selector: string
  /** share of test tasks where the choice is the best measured method */
  top1: number
  /** ... or within 3 % of the best's speedup */
  top1Within3pct: number
  /** mean of 1 − perf(choice)/perf(best) */
  regret: number
  /** mean speedup of the choice over the baseline */
  speedupOverBaseline: number
  /** (mean speedup − 1) / (oracle's mean speedup − 1): share of the achievable gain captured */
  oracleShare: number
  /** the learner the daemon uses by default (meta.backend `histogram`) */
  default?: true
}

/** Why a task of the history is not scored. */
export type ExclusionReason = 'no-ok-measurement' | 'single-method'

export interface EvalResult {
  split: Split
  folds: number
  tasks: number
  methods: string[]
  rows: EvalRow[]
  /** how each scored task's reference was chosen: rule → task count */
  reference: { rule: string, counts: Partial<Record<ReferenceRule, number>> }
  /** tasks of the history not scored, by reason (never dropped silently) */
  excluded: Partial<Record<ExclusionReason, number>>
  /** what one fold holds out */
  grouping: string
  /** how the default selector decided (with the histogram forest row) */
  safeDefault?: SafeDefaultStats
  /** how the boosted-trees learner behind the safe default decided */
  boostedSafeDefault?: SafeDefaultStats
  /** per host (physical machine, dataset.ts hostKeyOf) of the test tasks: each selector's mean regret there */
  perHost: HostResult[]
}

/** One machine's results: the mean over its test tasks (each task is tested once, in its fold). */
export interface HostResult {
  host: string
  /** CPU model and GPU names, as the records say */
  label: string
  tasks: number
  /** selector → mean regret on this host's tasks */
  regret: Record<string, number>
}

export const REFERENCE_RULE = 'default-setting (the baseline method) when it ran ok, else median-setting (the ok setting with the median throughput)'
/** The forest row of the daemon's default backend. */
export const FOREST_ROW = 'histogram-forest'
/** The same backend on the pairwise prior's residual: the daemon's learner (pairwise-prior.ts), alone. */
export const PRIOR_ROW = 'histogram-forest+pairwise-prior'
/** The plain forest behind the safe-default rule: the daemon's selector before the pairwise prior (kept as the "before" row). */
export const PLAIN_SAFE_ROW = 'histogram-forest+safe-default'
/** The row of the daemon's default selector: the pairwise-prior learner behind the safe-default rule. */
export const DEFAULT_SELECTOR_ROW = 'histogram-forest+pairwise-prior+safe-default'
/** Gradient-boosted trees (boosting.ts) on the pairwise prior's residual, alone and behind the safe default (issue 16 item 5). */
export const BOOSTED_ROW = 'boosted-trees+pairwise-prior'
export const BOOSTED_SAFE_ROW = 'boosted-trees+pairwise-prior+safe-default'
/** The histogram forest with scikit-learn's RandomForestRegressor defaults (100 trees, leaves of 1, all features, bootstrap, no depth limit) on the residual. */
export const SKLEARN_PRIOR_ROW = 'histogram-forest(sklearn-defaults)+pairwise-prior'

export interface EvalOptions {
  split?: Split
  nTrees?: number
  seed?: number
  /** extra forest backends to evaluate: row name → backend */
  backends?: Record<string, LearnerBackend>
  maxFeatures?: number
  minSamplesLeaf?: number
  /** include the ml-random-forest row (default true; it is rows^2 and dominates the run time) */
  mlRandomForest?: boolean
  /** include the boosted-trees and sklearn-defaults learner rows (with the histogram row; default false: the daemon's own evaluation, eval-worker.ts, does not pay for them; the CLI turns them on) */
  strongerLearners?: boolean
  onProgress?: (done: number, total: number, what: string) => void
}

type Chooser = (task: Task, candidates: string[]) => string | Promise<string>

// ------------------------------------------------------------ baselines

class Standardizer {
  readonly mu: number[]
  readonly sd: number[]
  constructor (rows: number[][]) {
    const w = rows[0]?.length ?? 0
    this.mu = Array.from({ length: w }, (_, j) => rows.reduce((s, r) => s + r[j], 0) / rows.length)
    this.sd = Array.from({ length: w }, (_, j) => {
      const v = rows.reduce((s, r) => s + (r[j] - this.mu[j]) ** 2, 0) / rows.length
      return v > 1e-12 ? Math.sqrt(v) : 1
    })
  }

  apply (row: number[]): number[] {
    return row.map((v, j) => (v - this.mu[j]) / this.sd[j])
  }
}

function dist2 (a: number[], b: number[]): number {
  let s = 0
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2
  return s
}

/** k-means (k-means++ seeding, seeded) on standardized task features. */
export function kmeans (points: number[][], k: number, seed: number, iters = 50): { centroids: number[][], assign: number[] } {
  const rng = createRng(seed)
  k = Math.max(1, Math.min(k, points.length))
  const centroids: number[][] = [points[Math.floor(rng() * points.length)]]
  while (centroids.length < k) {
    const d = points.map(p => Math.min(...centroids.map(c => dist2(p, c))))
    const total = d.reduce((s, x) => s + x, 0)
    if (total === 0) break
    let r = rng() * total
    let idx = 0
    for (; idx < d.length - 1; idx++) { r -= d[idx]; if (r <= 0) break }
    centroids.push(points[idx])
  }
  let assign = points.map(() => 0)
  for (let it = 0; it < iters; it++) {
    const next = points.map(p => {
      let bi = 0
      let bd = Infinity
      centroids.forEach((c, i) => { const d = dist2(p, c); if (d < bd) { bd = d; bi = i } })
      return bi
    })
    const changed = next.some((a, i) => a !== assign[i])
    assign = next
    for (let c = 0; c < centroids.length; c++) {
      const members = points.filter((_, i) => assign[i] === c)
      if (members.length > 0) centroids[c] = members[0].map((_, j) => members.reduce((s, m) => s + m[j], 0) / members.length)
    }
    if (!changed && it > 0) break
  }
  return { centroids, assign }
}

function singleBest (train: readonly Task[]): Chooser {
  const pw = new Pairwise(train)
  return (_t, cands) => bestOf(pw, cands)
}

/**
 * Hardware-blind fixed rule: the best method for the task's model and workload shape on the
 * training folds, else single-best (safe-default.ts FixedRule). A learned selector that does not
 * beat it has learned nothing about hardware.
 */
function perWorkloadBest (train: readonly Task[]): Chooser {
  const rule = FixedRule.fromTasks(train)
  return (t, cands) => rule.choose(shapeKey(t.modelId, t.workload), cands).method
}

function isac (train: readonly Task[], seed: number): Chooser {
  const feats = train.map(t => taskFeatures(t.info))
  const st = new Standardizer(feats)
  const pts = feats.map(f => st.apply(f))
  const k = Math.max(1, Math.min(8, Math.round(Math.sqrt(train.length / 2))))
  const { centroids, assign } = kmeans(pts, k, seed)
  const global = new Pairwise(train)
  const perCluster = centroids.map((_, c) => new Pairwise(train.filter((_, i) => assign[i] === c)))
  return (t, cands) => {
    const p = st.apply(taskFeatures(t.info))
    let bc = 0
    let bd = Infinity
    centroids.forEach((c, i) => { const d = dist2(p, c); if (d < bd) { bd = d; bc = i } })
    return bestOf(perCluster[bc], cands, global)
  }
}

function knn (train: readonly Task[], k = 3): Chooser {
  const feats = train.map(t => taskFeatures(t.info))
  const st = new Standardizer(feats)
  const pts = feats.map(f => st.apply(f))
  const global = new Pairwise(train)
  return (t, cands) => {
    const p = st.apply(taskFeatures(t.info))
    const near = pts.map((q, i) => ({ i, d: dist2(p, q) })).sort((a, b) => a.d - b.d || a.i - b.i).slice(0, k)
    return bestOf(new Pairwise(near.map(n => train[n.i])), cands, global)
  }
}

/** Train the y1 forest (ln perf relative to each task's reference) and predict from it. */
async function forestPredictor (ds: Dataset, train: readonly Task[], backend: LearnerBackend, opts: EvalOptions): Promise<Predictor> {
  const rows = trainingRows(ds, train.filter(t => t.reference != null), { useReference: true })
  const idx = rows.ySpeedup.map((_, i) => i).filter(i => Number.isFinite(rows.ySpeedup[i]))
  const forest = await backend.train(idx.map(i => rows.X[i]), idx.map(i => rows.ySpeedup[i]), forestOptions(opts))
  return (t, cands) => forest.predict(cands.map(m => featureVector(t.info, t.cells.get(m)?.knobs ?? ds.methodKnobs[m] ?? {})))
}

/** The daemon's learner (pairwise-prior.ts) trained on the training folds. */
async function priorPredictor (ds: Dataset, train: readonly Task[], backend: LearnerBackend, opts: EvalOptions, fo: ForestOptions = forestOptions(opts)): Promise<Predictor> {
  const model = await trainPairwisePrior(train, backend, fo)
  return priorPredictorOf(model, ds.methodKnobs)
}

function forestOptions (opts: EvalOptions): ForestOptions {
  return { nTrees: opts.nTrees ?? 30, seed: opts.seed ?? 1, maxFeatures: opts.maxFeatures ?? 1, minSamplesLeaf: opts.minSamplesLeaf ?? 2 }
}

function argmaxChooser (predict: Predictor): Chooser {
  return (t, cands) => {
    const pred = predict(t, cands)
    let best = cands[0]
    let bs = -Infinity
    cands.forEach((m, i) => { if (pred.mean[i] > bs) { bs = pred.mean[i]; best = m } })
    return best
  }
}

/** Counts of how the safe-default selector decided over the test tasks. */
export interface SafeDefaultStats {
  /** outer folds whose inner checks trusted the learner: for known shapes, for unseen shapes, for models not in the training folds */
  trustedFolds: { seen: number, seenHost: number, unseen: number, newModel: number }
  /** test tasks answered by the fixed rule because the learner was not trusted for them */
  untrusted: number
  /** test tasks where a trusted learner's different choice was within its uncertainty */
  gated: number
  /** test tasks answered by the learner's choice where it differed from the fixed rule's */
  learner: number
  /** the inner checks, one per outer fold */
  checks: TrustProfile[]
}

/** A learner behind the safe-default rule (safe-default.ts); `fit` trains the learner on some tasks. */
async function safeChooser (train: readonly Task[], fit: (tr: Task[]) => Promise<Predictor>, opts: EvalOptions, stats: SafeDefaultStats): Promise<Chooser> {
  const { policy, profile } = await SafeDefault.train(train, fit, { seed: opts.seed })
  stats.checks.push(profile)
  if (profile.seen.trusted) stats.trustedFolds.seen++
  if (profile.seenHost.trusted) stats.trustedFolds.seenHost++
  if (profile.unseen.trusted) stats.trustedFolds.unseen++
  if (profile.newModel.trusted) stats.trustedFolds.newModel++
  const predict = profile.seen.trusted || profile.seenHost.trusted || profile.unseen.trusted || profile.newModel.trusted ? await fit([...train]) : null
  const hosts = new Set(train.map(t => t.hardwareId))
  return (t, cands) => {
    const p = predict?.(t, cands) ?? { mean: cands.map(() => 0), std: cands.map(() => 0) }
    const a = policy.decide(shapeKey(t.modelId, t.workload), cands.map((method, i) => ({ method, mean: p.mean[i], std: p.std[i] })), hosts.has(t.hardwareId))
    if (!a.trusted) stats.untrusted++
    else if (a.safe) stats.gated++
    else if (a.choice !== policy.fixed.choose(shapeKey(t.modelId, t.workload), cands, a.rule).method) stats.learner++
    return a.choice
  }
}

// ------------------------------------------------------------ folds + scoring

export function makeFolds (tasks: readonly Task[], split: Split, seed: number): Task[][] {
  const groups = groupTasks(tasks, split)
  if (groups.size < 2) throw new SwarmtuneError('E_EVAL_SPLIT', `split "${split}" needs at least 2 groups, the history has ${groups.size}`)
  // few natural groups (hosts, models, workloads): one fold each, in sorted order
  if (groups.size <= 10 && split !== 'random') return [...groups.values()]
  return shuffledFolds(groups, seed, 5)
}

interface Acc { top1: number, within: number, regret: number, speedup: number, n: number }

function score (acc: Acc, perf: Map<string, number>, choice: string, weight = 1): void {
  const vals = [...perf.values()].filter(Number.isFinite)
  const best = Math.max(...vals)
  const p = perf.get(choice) ?? 0
  acc.top1 += weight * (p >= best ? 1 : 0)
  acc.within += weight * (p >= 0.97 * best ? 1 : 0)
  acc.regret += weight * (best > 0 ? 1 - p / best : 0)
  acc.speedup += weight * p
}

export async function evaluate (ds: Dataset, opts: EvalOptions = {}): Promise<EvalResult> {
  const split = opts.split ?? 'hardware'
  const seed = opts.seed ?? 1
  const excluded: Partial<Record<ExclusionReason, number>> = {}
  const counts: Partial<Record<ReferenceRule, number>> = {}
  const tasks: Task[] = []
  for (const t of ds.tasks) {
    const why: ExclusionReason | null = t.reference == null ? 'no-ok-measurement' : t.cells.size < 2 ? 'single-method' : null
    if (why != null) { excluded[why] = (excluded[why] ?? 0) + 1; continue }
    tasks.push(t)
    counts[t.referenceRule as ReferenceRule] = (counts[t.referenceRule as ReferenceRule] ?? 0) + 1
  }
  if (tasks.length === 0) {
    const ex = Object.entries(excluded).map(([k, v]) => `${k}: ${v}`).join(', ')
    throw new SwarmtuneError('E_EMPTY_HISTORY', `no task in the history has an ok measurement and at least two methods to choose from (excluded ${ex === '' ? 'none' : ex})`)
  }
  const folds = makeFolds(tasks, split, seed)
  const { mlForestBackend } = await import('./ml-forest.js')
  const forests: Record<string, LearnerBackend> = { ...(opts.mlRandomForest === false ? {} : { 'random-forest': mlForestBackend }), ...(opts.backends ?? {}) }
  const safeBackend = forests[FOREST_ROW]
  const stronger = safeBackend != null && opts.strongerLearners === true
  const names = ['random', 'single-best', 'per-workload-best', 'isac', 'knn', ...Object.keys(forests), ...(safeBackend != null ? [PRIOR_ROW, PLAIN_SAFE_ROW, DEFAULT_SELECTOR_ROW] : []), ...(stronger ? [SKLEARN_PRIOR_ROW, BOOSTED_ROW, BOOSTED_SAFE_ROW] : []), 'oracle']
  const newStats = (): SafeDefaultStats => ({ trustedFolds: { seen: 0, seenHost: 0, unseen: 0, newModel: 0 }, untrusted: 0, gated: 0, learner: 0, checks: [] })
  const safeStats = newStats()
  const plainStats = newStats()
  const boostedStats = newStats()
  const hosts = new HostAcc()
  const acc: Record<string, Acc> = Object.fromEntries(names.map(n => [n, { top1: 0, within: 0, regret: 0, speedup: 0, n: 0 }]))
  const steps = folds.length * Object.keys(forests).length
  let done = 0
  for (let f = 0; f < folds.length; f++) {
    const test = folds[f]
    const train = folds.filter((_, i) => i !== f).flat()
    const choosers: Record<string, Chooser> = { 'single-best': singleBest(train), 'per-workload-best': perWorkloadBest(train), isac: isac(train, seed + f), knn: knn(train) }
    for (const [name, backend] of Object.entries(forests)) {
      choosers[name] = argmaxChooser(await forestPredictor(ds, train, backend, { ...opts, seed: seed + f }))
      opts.onProgress?.(++done, steps, `fold ${f + 1}/${folds.length} ${name}`)
    }
    if (safeBackend != null) {
      const fo = { ...opts, seed: seed + f }
      choosers[PRIOR_ROW] = argmaxChooser(await priorPredictor(ds, train, safeBackend, fo))
      choosers[PLAIN_SAFE_ROW] = await safeChooser(train, async tr => await forestPredictor(ds, tr, safeBackend, fo), fo, plainStats)
      choosers[DEFAULT_SELECTOR_ROW] = await safeChooser(train, async tr => await priorPredictor(ds, tr, safeBackend, fo), fo, safeStats)
      if (stronger) {
        choosers[SKLEARN_PRIOR_ROW] = argmaxChooser(await priorPredictor(ds, train, safeBackend, fo, { nTrees: 100, maxFeatures: 1, minSamplesLeaf: 1, seed: seed + f }))
        choosers[BOOSTED_ROW] = argmaxChooser(await priorPredictor(ds, train, boostedBackend, fo, { nTrees: 1, seed: seed + f }))
        choosers[BOOSTED_SAFE_ROW] = await safeChooser(train, async tr => await priorPredictor(ds, tr, boostedBackend, fo, { nTrees: 1, seed: seed + f }), fo, boostedStats)
      }
      opts.onProgress?.(done, steps, `fold ${f + 1}/${folds.length} pairwise-prior learners`)
    }
    for (const t of test) {
      const perf = perfOf(t)
      const cands = [...perf.keys()].filter(m => Number.isFinite(perf.get(m))).sort()
      // random: the exact expectation over a uniform choice
      for (const m of cands) score(acc.random, perf, m, 1 / cands.length)
      acc.random.n++
      hosts.add(t, 'random', acc.random)
      const oracle = cands.reduce((b, m) => ((perf.get(m) as number) > (perf.get(b) as number) ? m : b), cands[0])
      score(acc.oracle, perf, oracle)
      acc.oracle.n++
      hosts.add(t, 'oracle', acc.oracle)
      for (const [name, choose] of Object.entries(choosers)) {
        score(acc[name], perf, await choose(t, cands))
        acc[name].n++
        hosts.add(t, name, acc[name])
      }
    }
  }
  const oracleMean = acc.oracle.speedup / acc.oracle.n
  const rows: EvalRow[] = names.map(n => {
    const a = acc[n]
    const s = a.speedup / a.n
    return {
      selector: n,
      top1: a.top1 / a.n,
      top1Within3pct: a.within / a.n,
      regret: a.regret / a.n,
      speedupOverBaseline: s,
      oracleShare: oracleMean - 1 > 1e-9 ? (s - 1) / (oracleMean - 1) : (Math.abs(s - oracleMean) < 1e-9 ? 1 : 0),
      ...(n === DEFAULT_SELECTOR_ROW ? { default: true as const } : {})
    }
  })
  return {
    split,
    folds: folds.length,
    tasks: tasks.length,
    methods: ds.methods,
    rows,
    reference: { rule: REFERENCE_RULE, counts },
    excluded,
    grouping: split === 'hardware' ? 'host' : split === 'random' ? 'task' : split,
    ...(safeBackend != null ? { safeDefault: safeStats } : {}),
    ...(stronger ? { boostedSafeDefault: boostedStats } : {}),
    perHost: hosts.results(names)
  }
}

/**
 * Per-host regret: each scored task adds the regret its selector just earned (the accumulator's
 * growth since the last call for that selector) to its host. Every task is tested in one fold only.
 */
class HostAcc {
  private readonly hosts = new Map<string, { label: string, tasks: Set<string>, regret: Map<string, number> }>()
  private readonly last = new Map<string, number>()

  add (t: Task, selector: string, a: Acc): void {
    const hw = t.info.hardware
    const key = hostKeyOf(hw)
    let h = this.hosts.get(key)
    if (h == null) {
      const gpus = [...new Set((hw.gpus ?? []).map(g => g.name.trim()))].sort()
      this.hosts.set(key, h = { label: [hw.cpuModel ?? '', ...gpus].filter(x => x !== '').join(' + '), tasks: new Set(), regret: new Map() })
    }
    h.tasks.add(t.key)
    const d = a.regret - (this.last.get(selector) ?? 0)
    this.last.set(selector, a.regret)
    h.regret.set(selector, (h.regret.get(selector) ?? 0) + d)
  }

  results (names: readonly string[]): HostResult[] {
    return [...this.hosts].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0).map(([host, h]) => ({
      host,
      label: h.label,
      tasks: h.tasks.size,
      regret: Object.fromEntries(names.filter(n => h.regret.has(n)).map(n => [n, (h.regret.get(n) as number) / h.tasks.size]))
    }))
  }
}

/** The paper-like table as text. */
export function formatEvalTable (r: EvalResult): string {
  const head = ['selector', 'top1', 'top1±3%', 'regret', 'speedup', 'oracleShare']
  const lines = r.rows.map(x => [x.selector + (x.default === true ? ' *' : ''), x.top1.toFixed(3), x.top1Within3pct.toFixed(3), x.regret.toFixed(3), x.speedupOverBaseline.toFixed(3) + 'x', x.oracleShare.toFixed(3)])
  const w = head.map((h, i) => Math.max(h.length, ...lines.map(l => l[i].length)))
  const fmt = (l: string[]): string => l.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ')
  const kv = (o: Record<string, number | undefined>): string => Object.entries(o).map(([k, v]) => `${k} ${String(v)}`).join(', ')
  const ex = kv(r.excluded)
  return [
    `split: ${r.split} (grouped by ${r.grouping}, ${r.folds} folds, ${r.tasks} tasks, ${r.methods.length} methods)`,
    `reference: ${kv(r.reference.counts)}${ex === '' ? '' : `; excluded tasks: ${ex}`}`,
    fmt(head),
    fmt(w.map(n => '-'.repeat(n))),
    ...lines.map(fmt),
    ...(r.safeDefault != null ? [safeLine(r.safeDefault)] : [])
  ].join('\n')
}

/** Per-host regret as text: one line per host, one column per selector (random and oracle left out). */
export function formatPerHost (r: EvalResult): string {
  const sel = r.rows.map(x => x.selector).filter(n => n !== 'random' && n !== 'oracle')
  const head = ['host', 'tasks', ...sel.map((n, i) => `[${i + 1}]`)]
  const lines = r.perHost.map(h => [h.label.slice(0, 48) || h.host, String(h.tasks), ...sel.map(n => h.regret[n]?.toFixed(4) ?? '-')])
  const w = head.map((x, i) => Math.max(x.length, ...lines.map(l => l[i].length)))
  const fmt = (l: string[]): string => l.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ')
  return [
    `mean regret per host (${r.perHost.length} hosts; each task scored in the fold that held it out)`,
    ...sel.map((n, i) => `[${i + 1}] ${n}${r.rows.find(x => x.selector === n)?.default === true ? ' *' : ''}`),
    fmt(head),
    fmt(w.map(n => '-'.repeat(n))),
    ...lines.map(fmt)
  ].join('\n')
}

function safeLine (s: SafeDefaultStats): string {
  const folds = s.checks.length
  const pwb = s.checks.filter(c => c.seen.rule === 'per-workload-best').length
  // the gate's z chosen per fold and situation ("-": untrusted, the fixed rule)
  const zs = (k: keyof TrustProfile): string => s.checks.map(c => c[k].z ?? '-').join(',')
  return `* safe-default over ${folds} folds (inner checks): for known shapes per-workload-best on ${pwb}, single-best on ${folds - pwb}, learner trusted on ${s.trustedFolds.seen} (on known machines ${s.trustedFolds.seenHost}); for unseen shapes learner trusted on ${s.trustedFolds.unseen}; for unseen models on ${s.trustedFolds.newModel}. Gate z per fold: known shape ${zs('seen')}, on a known machine ${zs('seenHost')}, unseen shape ${zs('unseen')}, new model ${zs('newModel')}. Test tasks answered by the fixed rule: learner untrusted ${s.untrusted}, within uncertainty ${s.gated}; by the learner ${s.learner}`
}
