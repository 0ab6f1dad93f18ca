import { SwarmtuneError } from '../util/errors.js'
import { createRng } from '../util/random.js'
import type { LearnerBackend } from './learner.js'
import { taskFeatures } from './features.js'
import { groupOf, relativePerfOf, trainingRows, type Dataset, type ReferenceRule, type Split, type Task } from './dataset.js'
import { featureVector } from './features.js'

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
}

export const REFERENCE_RULE = 'default-setting (the baseline method) when it ran ok, else median-setting (the ok setting with the median throughput)'
/** The forest row that corresponds to the daemon's default backend. */
export const DEFAULT_SELECTOR_ROW = 'histogram-forest'

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
  onProgress?: (done: number, total: number, what: string) => void
}

/** For a test task: the candidate methods and their performance. */
function perfOf (task: Task): Map<string, number> {
  const m = new Map<string, number>()
  for (const id of task.cells.keys()) m.set(id, relativePerfOf(task, id))
  return m
}

type Chooser = (task: Task, candidates: string[]) => string | Promise<string>

// ------------------------------------------------------------ baselines

const LOG_FAIL = Math.log(0.05)
function logPerf (p: number): number {
  return p > 0 ? Math.log(p) : LOG_FAIL
}

/** Geometric-mean speedup of each method over a set of tasks (failures count as 0.05×). */
function methodScores (tasks: readonly Task[]): Map<string, number> {
  const sum = new Map<string, number>()
  const n = new Map<string, number>()
  for (const t of tasks) {
    for (const [m, p] of perfOf(t)) {
      if (!Number.isFinite(p)) continue
      sum.set(m, (sum.get(m) ?? 0) + logPerf(p))
      n.set(m, (n.get(m) ?? 0) + 1)
    }
  }
  const out = new Map<string, number>()
  for (const [m, s] of sum) out.set(m, s / (n.get(m) as number))
  return out
}

function bestOf (scores: Map<string, number>, candidates: string[], fallback: Map<string, number>): string {
  let best = candidates[0]
  let bs = -Infinity
  for (const c of candidates) {
    const s = scores.get(c) ?? fallback.get(c) ?? -Infinity
    if (s > bs || (s === bs && c < best)) { bs = s; best = c }
  }
  return best
}

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
  const scores = methodScores(train)
  return (_t, cands) => bestOf(scores, cands, new Map())
}

/**
 * Hardware-blind rule: the best method per workload shape (workload name) on the training folds,
 * else single-best. A learned selector that does not beat it has learned nothing about hardware.
 */
function perWorkloadBest (train: readonly Task[]): Chooser {
  const global = methodScores(train)
  const byWl = new Map<string, Task[]>()
  for (const t of train) {
    let arr = byWl.get(t.workload)
    if (arr == null) byWl.set(t.workload, arr = [])
    arr.push(t)
  }
  const scores = new Map([...byWl].map(([w, ts]) => [w, methodScores(ts)]))
  return (t, cands) => bestOf(scores.get(t.workload) ?? global, cands, global)
}

function isac (train: readonly Task[], seed: number): Chooser {
  const feats = train.map(t => taskFeatures(t.info))
  const st = new Standardizer(feats)
  const pts = feats.map(f => st.apply(f))
  const k = Math.max(1, Math.min(8, Math.round(Math.sqrt(train.length / 2))))
  const { centroids, assign } = kmeans(pts, k, seed)
  const global = methodScores(train)
  const perCluster = centroids.map((_, c) => methodScores(train.filter((_, i) => assign[i] === c)))
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
  const global = methodScores(train)
  return (t, cands) => {
    const p = st.apply(taskFeatures(t.info))
    const near = pts.map((q, i) => ({ i, d: dist2(p, q) })).sort((a, b) => a.d - b.d || a.i - b.i).slice(0, k)
    return bestOf(methodScores(near.map(n => train[n.i])), cands, global)
  }
}

async function forestChooser (ds: Dataset, train: readonly Task[], backend: LearnerBackend, opts: EvalOptions): Promise<Chooser> {
  const rows = trainingRows(ds, train.filter(t => t.reference != null), { useReference: true })
  const idx = rows.ySpeedup.map((_, i) => i).filter(i => Number.isFinite(rows.ySpeedup[i]))
  const forest = await backend.train(idx.map(i => rows.X[i]), idx.map(i => rows.ySpeedup[i]), {
    nTrees: opts.nTrees ?? 30, seed: opts.seed ?? 1, maxFeatures: opts.maxFeatures ?? 1, minSamplesLeaf: opts.minSamplesLeaf ?? 2
  })
  return (t, cands) => {
    // the knobs of the setting as measured on this task (they differ per model and machine),
    // not those of the first record with that method id
    const pred = forest.predict(cands.map(m => featureVector(t.info, t.cells.get(m)?.knobs ?? ds.methodKnobs[m] ?? {})))
    let best = cands[0]
    let bs = -Infinity
    cands.forEach((m, i) => { if (pred.mean[i] > bs) { bs = pred.mean[i]; best = m } })
    return best
  }
}

// ------------------------------------------------------------ folds + scoring

export function makeFolds (tasks: readonly Task[], split: Split, seed: number): Task[][] {
  const groups = new Map<string, Task[]>()
  for (const t of tasks) {
    const g = groupOf(t, split)
    let arr = groups.get(g)
    if (arr == null) groups.set(g, arr = [])
    arr.push(t)
  }
  const keys = [...groups.keys()].sort()
  if (keys.length < 2) throw new SwarmtuneError('E_EVAL_SPLIT', `split "${split}" needs at least 2 groups, the history has ${keys.length}`)
  if (keys.length <= 10 && split !== 'random') return keys.map(k => groups.get(k) as Task[])
  const rng = createRng(seed)
  const shuffled = [...keys]
  for (let i = shuffled.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]]
  }
  const nf = Math.min(5, keys.length)
  const folds: Task[][] = Array.from({ length: nf }, () => [])
  shuffled.forEach((k, i) => folds[i % nf].push(...(groups.get(k) as Task[])))
  return folds
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
  const names = ['random', 'single-best', 'per-workload-best', 'isac', 'knn', ...Object.keys(forests), 'oracle']
  const acc: Record<string, Acc> = Object.fromEntries(names.map(n => [n, { top1: 0, within: 0, regret: 0, speedup: 0, n: 0 }]))
  const steps = folds.length * Object.keys(forests).length
  let done = 0
  for (let f = 0; f < folds.length; f++) {
    const test = folds[f]
    const train = folds.filter((_, i) => i !== f).flat()
    const choosers: Record<string, Chooser> = { 'single-best': singleBest(train), 'per-workload-best': perWorkloadBest(train), isac: isac(train, seed + f), knn: knn(train) }
    for (const [name, backend] of Object.entries(forests)) {
      choosers[name] = await forestChooser(ds, train, backend, { ...opts, seed: seed + f })
      opts.onProgress?.(++done, steps, `fold ${f + 1}/${folds.length} ${name}`)
    }
    for (const t of test) {
      const perf = perfOf(t)
      const cands = [...perf.keys()].filter(m => Number.isFinite(perf.get(m))).sort()
      // random: the exact expectation over a uniform choice
      for (const m of cands) score(acc.random, perf, m, 1 / cands.length)
      acc.random.n++
      const oracle = cands.reduce((b, m) => ((perf.get(m) as number) > (perf.get(b) as number) ? m : b), cands[0])
      score(acc.oracle, perf, oracle)
      acc.oracle.n++
      for (const [name, choose] of Object.entries(choosers)) {
        score(acc[name], perf, await choose(t, cands))
        acc[name].n++
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
    grouping: split === 'hardware' ? 'host' : split === 'random' ? 'task' : split
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
    ...lines.map(fmt)
  ].join('\n')
}
