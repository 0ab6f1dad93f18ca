import { groupOf, groupTasks, relativePerfOf, shuffledFolds, type Split, type Task } from './dataset.js'

/**
 * The safe default (issue 17 item 3): the learned selector may only override the fixed rules
 * when it has shown, on held-out parts of its own training history, that it beats them, and
 * when its predicted gain for this task exceeds its own uncertainty. Fixed rules:
 * per-workload-best (best method for this model and workload shape in the history, by pairwise
 * comparisons) and, where the history has no such shape, single-best. Pure.
 */

/** Failures count as 0.05× in log-ratio scoring. */
const LOG_FAIL = Math.log(0.05)
export function logPerf (p: number): number {
  return p > 0 ? Math.log(p) : LOG_FAIL
}

/**
 * z of the per-task gate (the learner's predicted gain must exceed z × its spread) in snapshots
 * trained before z was chosen per situation, and the z an older release applies to a newer
 * snapshot (it reads only this global z).
 */
export const SAFE_Z = 1
/**
 * The z the trust checks choose from, per situation (`chooseZ`). Infinity = the learner never
 * overrides: the fixed rule. 0 = the learner's argmax whenever it differs. A few values an order
 * of magnitude apart: the spread of a forest's trees is not a calibrated standard error, so its
 * scale is what the held-out tasks decide, not a fine-tuned threshold.
 */
export const Z_GRID: readonly number[] = [0, 0.25, 0.5, 1, 2, Infinity]
/** At most this many inner folds when checking the learner against the fixed rules. */
export const TRUST_FOLDS = 3

/** For a task: each measured method's performance relative to the task's reference. */
export function perfOf (task: Task): Map<string, number> {
  const m = new Map<string, number>()
  for (const id of task.cells.keys()) m.set(id, relativePerfOf(task, id))
  return m
}

export interface PairwiseJSON { pairs: Array<[string, string, number, number]> }

/**
 * Pairwise evidence between methods over a set of tasks: for each pair measured on the same task,
 * the mean log ratio of their performance. Scoring from what was measured together, rather than
 * from each method's mean over the tasks it happens to have, does not reward a method for the
 * absence of a stronger one (methods of published tables are not measured everywhere). With
 * every method on every task it ranks as the geometric mean does.
 */
export class Pairwise {
  private readonly sum = new Map<string, number>()
  private readonly n = new Map<string, number>()
  constructor (tasks: readonly Task[] = []) {
    for (const t of tasks) {
      const perf = [...perfOf(t)].filter(([, p]) => Number.isFinite(p))
      for (const [a, pa] of perf) {
        for (const [b, pb] of perf) {
          if (a !== b) this.add(a, b, logPerf(pa) - logPerf(pb), 1)
        }
      }
    }
  }

  private add (a: string, b: string, s: number, n: number): void {
    const k = a + ' ' + b
    this.sum.set(k, (this.sum.get(k) ?? 0) + s)
    this.n.set(k, (this.n.get(k) ?? 0) + n)
  }

  /** mean ln(perf a / perf b) over the tasks that measured both; undefined when none did */
  of (a: string, b: string): number | undefined {
    const k = a + ' ' + b
    const n = this.n.get(k)
    return n == null ? undefined : (this.sum.get(k) as number) / n
  }

  toJSON (): PairwiseJSON {
    return { pairs: [...this.n.keys()].sort().map(k => { const [a, b] = k.split(' '); return [a, b, this.sum.get(k) as number, this.n.get(k) as number] }) }
  }

  static fromJSON (j: PairwiseJSON): Pairwise {
    const p = new Pairwise()
    for (const [a, b, s, n] of j.pairs) p.add(a, b, s, n)
    return p
  }
}

/** The candidate with the largest summed pairwise advantage over the other candidates. */
export function bestOf (pw: Pairwise, candidates: string[], fallback?: Pairwise): string {
  let best = candidates[0]
  let bs = -Infinity
  for (const c of candidates) {
    let s = 0
    for (const d of candidates) if (d !== c) s += pw.of(c, d) ?? fallback?.of(c, d) ?? 0
    if (s > bs || (s === bs && c < best)) { bs = s; best = c }
  }
  return best
}

/** The per-workload-best key: model and workload shape (name). */
export function shapeKey (modelId: string, workload: string): string {
  return modelId + '|' + workload
}

export type FixedRuleName = 'per-workload-best' | 'single-best'
export interface FixedRuleJSON { global: PairwiseJSON, shapes: Array<[string, PairwiseJSON]> }

/** Fixed-rule answers a rule keeps (per shape, rule and candidate set). */
const FIXED_RULE_MEMO_MAX = 4096

/** Per-workload-best, else single-best, from the history's pairwise evidence. */
export class FixedRule {
  /**
   * Answers per (shape, rule, candidate set): they do not depend on the task's features, yet
   * cost O(candidates²) pairwise lookups, which was a large part of a new-task recommend (issue
   * #19 item 3). A rule is immutable, so remembered answers stay right.
   */
  private readonly memo = new Map<string, { method: string, rule: FixedRuleName }>()
  constructor (readonly global: Pairwise, readonly shapes: Map<string, Pairwise>) {}

  static fromTasks (tasks: readonly Task[]): FixedRule {
    const by = new Map<string, Task[]>()
    for (const t of tasks) {
      const k = shapeKey(t.modelId, t.workload)
      let arr = by.get(k)
      if (arr == null) by.set(k, arr = [])
      arr.push(t)
    }
    return new FixedRule(new Pairwise(tasks), new Map([...by].map(([k, ts]) => [k, new Pairwise(ts)])))
  }

  /** `mode` single-best ignores the shapes (the nested check may find them worse than no shape) */
  choose (shape: string | undefined, candidates: string[], mode: FixedRuleName = 'per-workload-best'): { method: string, rule: FixedRuleName } {
    const key = `${shape ?? ''}\u0000${mode}\u0000${candidates.join('\u0000')}`
    let a = this.memo.get(key)
    if (a == null) {
      const pw = shape != null && mode === 'per-workload-best' ? this.shapes.get(shape) : undefined
      // a pair the shape never measured together falls back to the global evidence
      a = pw != null
        ? { method: bestOf(pw, candidates, this.global), rule: 'per-workload-best' }
        : { method: bestOf(this.global, candidates), rule: 'single-best' }
      if (this.memo.size >= FIXED_RULE_MEMO_MAX) this.memo.clear()
      this.memo.set(key, a)
    }
    return { ...a }
  }

  toJSON (): FixedRuleJSON {
    return { global: this.global.toJSON(), shapes: [...this.shapes].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([k, p]) => [k, p.toJSON()]) }
  }

  static fromJSON (j: FixedRuleJSON): FixedRule {
    return new FixedRule(Pairwise.fromJSON(j.global), new Map(j.shapes.map(([k, p]) => [k, Pairwise.fromJSON(p)])))
  }
}

export interface ScoredMethod { method: string, mean: number, std: number }

export interface SafeDecision {
  choice: string
  /** the learner's own argmax */
  learnerChoice: string
  /** true when the fixed rule's choice was kept against a different learner choice */
  safe: boolean
  /** predicted ln gain of the learner's choice over the fixed one, and the margin it had to beat */
  gain: number
  margin: number
}

/**
 * The per-task gate: the learner's choice replaces the fixed rule's only when its predicted gain
 * exceeds z × the spread of the two predictions (sqrt of the summed variances: the trees' errors
 * for two methods of one task are positively correlated, so this overstates the spread of the
 * difference, erring towards the fixed rule).
 */
export function safeDecision (scored: readonly ScoredMethod[], fixed: string, z = SAFE_Z): SafeDecision {
  let L = scored[0]
  for (const s of scored) if (s.mean > L.mean || (s.mean === L.mean && s.method < L.method)) L = s
  const D = scored.find(s => s.method === fixed)
  if (D == null || D.method === L.method || !Number.isFinite(L.mean)) {
    return { choice: D == null ? L.method : D.method, learnerChoice: L.method, safe: false, gain: 0, margin: 0 }
  }
  const gain = L.mean - D.mean
  const sd = Math.sqrt((Number.isFinite(L.std) ? L.std ** 2 : 0) + (Number.isFinite(D.std) ? D.std ** 2 : 0))
  const margin = z * sd
  return gain > margin
    ? { choice: L.method, learnerChoice: L.method, safe: false, gain, margin }
    : { choice: D.method, learnerChoice: L.method, safe: true, gain, margin }
}

/** A trained learner's predictions of ln perf for a task's candidates. */
export type Predictor = (task: Task, candidates: string[]) => { mean: number[], std: number[] }

export interface TrustCheck {
  /** the gated learner beat the fixed rule on the inner folds at some z of the grid (strictly lower mean regret): `z` is finite */
  trusted: boolean
  /** the chosen z of the per-task gate; null when no z beat the fixed rule (= Infinity, untrusted) */
  z: number | null
  /** mean inner regret of the gated learner at each z of the grid (key String(z); "Infinity" = the fixed rule), against `rule` */
  zRegret: Record<string, number>
  /** at each finite z, against the fixed rule: held-out tasks won and lost, inner folds lost, and the paired t statistic of the regret difference (fixed − gated) */
  zTest: Record<string, { wins: number, losses: number, foldsLost: number, t: number }>
  /** the fixed rule with the lower inner regret (single-best on a tie; with no held-out task, per-workload-best for known shapes) */
  rule: FixedRuleName
  /** the learner gated against `rule` at the chosen z (= fixedRegret when untrusted) */
  learnerRegret: number
  fixedRegret: number
  /** inner regret of each fixed rule */
  ruleRegret: Record<FixedRuleName, number>
  folds: number
  /** what an inner fold holds out */
  grouping: Split
  tasks: number
}

function innerFolds (tasks: readonly Task[], split: Split, seed: number, k: number): Task[][] {
  return shuffledFolds(groupTasks(tasks, split), seed, k)
}

/** 1 − perf(choice)/perf(best) on a task. */
export function regretOf (perf: Map<string, number>, choice: string): number {
  const best = Math.max(...[...perf.values()].filter(Number.isFinite))
  return best > 0 ? 1 - (perf.get(choice) ?? 0) / best : 0
}

export interface ZChoice {
  /** the chosen z (Infinity: the fixed rule) */
  z: number
  /** mean held-out regret at each z, in grid order */
  mean: number[]
}

/**
 * How `chooseZ` picks among the grid (the last, largest z, Infinity, is the fixed rule):
 * - `min`: the lowest mean held-out regret;
 * - `every-fold`: the lowest mean among the z that do not lose to the fixed rule on any inner
 *   fold: a real advantage shows on every part of the history, while the lowest of several noisy
 *   means on a small history is often one fold's luck;
 * - `tested` (the daemon's): `every-fold`, and the z must also win on more held-out tasks than
 *   it loses, by a one-sided exact sign test at SIGN_TEST_LEVEL (tasks where its regret differs
 *   from the fixed rule's): a mean moved by one or two tasks of a small history is not evidence.
 * Measured on every split of every real set (docs/BENCHMARKS.md, "The gate's z chosen per
 * situation"): `min` lost to single-best on two splits of the own history, `every-fold` on one.
 */
export type ZRule = 'min' | 'every-fold' | 'tested'
export const Z_RULE: ZRule = 'tested'
/** One-sided level of the sign test of rule `tested` (the conventional 5 %, not fitted to a set). */
export const SIGN_TEST_LEVEL = 0.05

/**
 * Choose the per-task gate's z from held-out regrets: `regret[i][k]` is held-out task k's regret
 * when the gate runs with `grid[i]` (ascending, the last the fixed rule). Among the z that `rule`
 * admits, the lowest mean regret wins; a tie (within float noise) goes to the larger z, the one
 * that lets the learner override less often. `fold[k]`: task k's inner fold. Pure.
 */
export function chooseZ (grid: readonly number[], regret: ReadonlyArray<readonly number[]>, rule: ZRule = Z_RULE, fold?: readonly number[]): ZChoice {
  const mean = regret.map(r => r.length > 0 ? r.reduce((a, b) => a + b, 0) / r.length : NaN)
  const ok = (rule === 'every-fold' || rule === 'tested') && fold != null ? noFoldLost(regret, fold) : grid.map(() => true)
  if (rule === 'tested') regret.forEach((r, i) => { ok[i] = ok[i] && signTestWins(r, regret[regret.length - 1]) })
  ok[grid.length - 1] = true
  let best = -1
  for (let i = 0; i < grid.length; i++) {
    if (!Number.isFinite(mean[i]) || !ok[i]) continue
    if (best < 0 || mean[i] < mean[best] - 1e-12 || (Math.abs(mean[i] - mean[best]) <= 1e-12 && grid[i] > grid[best])) best = i
  }
  return { z: best < 0 ? Infinity : grid[best], mean }
}

/** How a gated learner's held-out regrets `a` compare with the fixed rule's `b` (reported in TrustCheck.zTest). */
function testOf (a: readonly number[], b: readonly number[], fold: readonly number[]): TrustCheck['zTest'][string] {
  const d = a.map((v, k) => b[k] - v)
  const n = d.length
  const m = d.reduce((x, y) => x + y, 0) / Math.max(1, n)
  const sd = n > 1 ? Math.sqrt(d.reduce((x, y) => x + (y - m) ** 2, 0) / (n - 1)) : 0
  const byFold = new Map<number, number>()
  d.forEach((v, k) => byFold.set(fold[k], (byFold.get(fold[k]) ?? 0) + v))
  return {
    wins: d.filter(v => v > 1e-12).length,
    losses: d.filter(v => v < -1e-12).length,
    foldsLost: [...byFold.values()].filter(v => v < -1e-12).length,
    t: sd > 0 ? m / (sd / Math.sqrt(n)) : 0
  }
}

/** For each grid z: its summed regret is ≤ the largest z's on every fold (`fold[k]`: task k's inner fold). */
function noFoldLost (regret: ReadonlyArray<readonly number[]>, fold: readonly number[]): boolean[] {
  const safest = regret[regret.length - 1]
  return regret.map(r => {
    const d = new Map<number, number>()
    r.forEach((v, k) => d.set(fold[k], (d.get(fold[k]) ?? 0) + v - safest[k]))
    return [...d.values()].every(x => x <= 1e-12)
  })
}

/** One-sided exact sign test: a wins on significantly more tasks than it loses against b (ties dropped). */
export function signTestWins (a: readonly number[], b: readonly number[], level = SIGN_TEST_LEVEL): boolean {
  let wins = 0
  let losses = 0
  for (let k = 0; k < Math.min(a.length, b.length); k++) {
    if (a[k] < b[k] - 1e-12) wins++
    else if (a[k] > b[k] + 1e-12) losses++
  }
  const n = wins + losses
  if (n === 0 || wins <= losses) return false
  // P(X ≥ wins), X ~ Binomial(n, 1/2), summed in logs
  const lnC = (k: number): number => lnFact(n) - lnFact(k) - lnFact(n - k)
  let p = 0
  for (let k = wins; k <= n; k++) p += Math.exp(lnC(k) - n * Math.LN2)
  return p < level
}

function lnFact (n: number): number {
  let s = 0
  for (let i = 2; i <= n; i++) s += Math.log(i)
  return s
}

/** Held-out regrets of one inner-fold task: each fixed rule's, and the gated learner's at each z against each rule. */
function scoreHeldOut (t: Task, fixed: FixedRule, predict: Predictor, rules: readonly FixedRuleName[], grid: readonly number[]): { fixed: number[], gated: number[][] } {
  const perf = perfOf(t)
  const cands = [...perf.keys()].filter(m => Number.isFinite(perf.get(m))).sort()
  const p = predict(t, cands)
  const scored = cands.map((method, i) => ({ method, mean: p.mean[i], std: p.std[i] }))
  const out = { fixed: [] as number[], gated: [] as number[][] }
  for (const rule of rules) {
    const d = fixed.choose(shapeKey(t.modelId, t.workload), cands, rule).method
    out.fixed.push(regretOf(perf, d))
    out.gated.push(grid.map(z => regretOf(perf, safeDecision(scored, d, z).choice)))
  }
  return out
}

/**
 * Nested check: train the learner on part of the history and compare the fixed rules and the
 * gated learner on the rest. The fixed rule is the one with the lower regret there (on
 * cross-machine data a workload shape seen on a few other machines can be worse evidence than
 * all tasks together); the learner is trusted only when it is strictly better than that rule — a
 * history too small to show that (one group, a handful of tasks) keeps the fixed rule.
 */
export async function checkTrust (tasks: readonly Task[], fit: (train: Task[]) => Promise<Predictor>, opts: { grouping: Split, seed?: number, folds?: number, seenShapesOnly?: boolean, grid?: readonly number[] }): Promise<TrustCheck> {
  const scorable = tasks.filter(t => t.reference != null && t.cells.size >= 2)
  const grouping = opts.grouping
  const grid = [...new Set([...(opts.grid ?? Z_GRID), Infinity])].sort((a, b) => a - b)
  const out: TrustCheck = { trusted: false, z: null, zRegret: {}, zTest: {}, rule: 'single-best', learnerRegret: NaN, fixedRegret: NaN, ruleRegret: { 'per-workload-best': NaN, 'single-best': NaN }, folds: 0, grouping, tasks: 0 }
  if (scorable.length < 2) return out
  const folds = innerFolds(scorable, grouping, opts.seed ?? 1, opts.folds ?? TRUST_FOLDS)
  if (folds.length < 2) return out
  const rules: FixedRuleName[] = ['per-workload-best', 'single-best']
  const fixedSum = [0, 0]
  // gated[r][i][k]: held-out task k's regret with the gate at grid[i] against rule r (one fit per inner fold scores every z)
  const gated = rules.map(() => grid.map(() => [] as number[]))
  const foldOf: number[] = []
  for (let f = 0; f < folds.length; f++) {
    const train = folds.filter((_, i) => i !== f).flat()
    const fixed = FixedRule.fromTasks(train)
    const test = opts.seenShapesOnly === true ? folds[f].filter(t => fixed.shapes.has(shapeKey(t.modelId, t.workload))) : folds[f]
    if (test.length === 0) continue
    const predict = await fit(train)
    for (const t of test) {
      const s = scoreHeldOut(t, fixed, predict, rules, grid)
      s.fixed.forEach((v, r) => { fixedSum[r] += v })
      s.gated.forEach((byZ, r) => byZ.forEach((v, i) => gated[r][i].push(v)))
      foldOf.push(f)
      out.tasks++
    }
  }
  out.folds = folds.length
  // no held-out task in this situation: no evidence against the issue's rule, none for the learner
  if (out.tasks === 0) return { ...out, rule: opts.seenShapesOnly === true ? 'per-workload-best' : 'single-best' }
  out.ruleRegret = { 'per-workload-best': fixedSum[0] / out.tasks, 'single-best': fixedSum[1] / out.tasks }
  // per-workload-best only when it is strictly better: on a tie the rule with fewer parameters
  const r = fixedSum[0] < fixedSum[1] - 1e-9 ? 0 : 1
  return { ...out, ...gateOf(grid, gated[r], foldOf), rule: rules[r] }
}

/**
 * The z chosen against one fixed rule. The grid always holds Infinity, whose regrets are the
 * fixed rule's own (the gate never overrides), so a finite z wins only with a strictly lower
 * mean regret than the fixed rule: that is what `trusted` means.
 */
function gateOf (grid: readonly number[], regret: number[][], fold: readonly number[]): Pick<TrustCheck, 'trusted' | 'z' | 'zRegret' | 'zTest' | 'learnerRegret' | 'fixedRegret'> {
  const c = chooseZ(grid, regret, Z_RULE, fold)
  const at = (z: number): number => c.mean[grid.indexOf(z)]
  const zRegret = Object.fromEntries(grid.map((z, i) => [String(z), c.mean[i]]))
  const trusted = Number.isFinite(c.z)
  const zTest = Object.fromEntries(grid.filter(Number.isFinite).map((z, i) => [String(z), testOf(regret[i], regret[grid.length - 1], fold)]))
  return { trusted, z: trusted ? c.z : null, zRegret, zTest, learnerRegret: at(c.z), fixedRegret: at(Infinity) }
}

/** The trust checks for the three situations a query can be in. */
export interface TrustProfile {
  /** the task's model and workload shape are in the history (inner folds hold out hosts) */
  seen: TrustCheck
  /**
   * the same on a machine the history holds (inner folds hold out tasks): holding out whole
   * hosts never reproduces it, so a learner that wins there was never trusted (issue #16)
   */
  seenHost: TrustCheck
  /** the model is, the shape is not (inner folds hold out workload shapes; the fixed rule is single-best) */
  unseen: TrustCheck
  /** the model is not (inner folds hold out models; single-best; untrusted when the history has one model) */
  newModel: TrustCheck
}

/**
 * A learner can be better than per-workload-best on a new machine for a known shape and still
 * worse than single-best on a shape nobody measured, or on a model nobody measured, or the
 * reverse: each situation is checked on inner folds that reproduce it (by host, else by task; by
 * workload shape; by model). Holding out workload names leaves every model in the inner
 * training set, so that check says nothing about a new model (measured: a learner trusted by
 * it lost to single-best leaving a model out of the framework table, docs/BENCHMARKS.md).
 */
export async function checkTrustProfile (tasks: readonly Task[], fit: (train: Task[]) => Promise<Predictor>, opts: { seed?: number, folds?: number, grid?: readonly number[] } = {}): Promise<TrustProfile> {
  const count = (s: Split): number => new Set(tasks.map(t => groupOf(t, s))).size
  // only held-out tasks whose shape the inner training set has reproduce a known-shape query
  const byHost = count('hardware') >= 2
  const seen = await checkTrust(tasks, fit, { ...opts, grouping: byHost ? 'hardware' : 'random', seenShapesOnly: true })
  const seenHost = byHost ? await checkTrust(tasks, fit, { ...opts, grouping: 'random', seenShapesOnly: true }) : seen
  const unseen = await checkTrust(tasks, fit, { ...opts, grouping: 'workload' })
  // with no shape in the history a query's shape is unseen: single-best is the only fixed rule
  unseen.rule = 'single-best'
  unseen.fixedRegret = unseen.ruleRegret['single-best']
  const newModel = count('model') >= 2
    ? await checkTrust(tasks, fit, { ...opts, grouping: 'model' })
    : { trusted: false, z: null, zRegret: {}, zTest: {}, rule: 'single-best' as const, learnerRegret: NaN, fixedRegret: NaN, ruleRegret: { 'per-workload-best': NaN, 'single-best': NaN }, folds: 0, grouping: 'model' as const, tasks: 0 }
  // a held-out model's shapes are not in the inner training set: both fixed rules are single-best
  newModel.rule = 'single-best'
  newModel.fixedRegret = newModel.ruleRegret['single-best']
  return { seen, seenHost, unseen, newModel }
}

/**
 * One situation's verdict. `tasks`: held-out tasks behind the check (0: no evidence either way).
 * `z`: the gate's z chosen for it (present when trusted); absent in snapshots trained before z
 * was chosen per situation, whose `trusted` was decided at the global `z`, so they read with it.
 */
export interface SituationJSON { trusted: boolean, rule: FixedRuleName, tasks?: number, z?: number }

export interface SafeDefaultJSON {
  fixed: FixedRuleJSON
  seen: SituationJSON
  unseen: SituationJSON
  /** a model the history does not hold; absent in older snapshots (then `unseen` applies) */
  newModel?: SituationJSON
  /** known shape on a known machine; absent in snapshots before it existed (then `seen` applies) */
  seenHost?: SituationJSON
  /** the z of a trusted situation without its own (older snapshots); what an older release applies to every situation */
  z: number
}

export interface SafeAnswer extends SafeDecision {
  /** the fixed rule that applied and whether the learner was allowed to override it */
  rule: FixedRuleName
  trusted: boolean
  reason: string
}

/** A situation's z: its own when the snapshot has a valid one (snapshots come from disk), else the global z. */
function zOf (sit: SituationJSON, global: number): { z: number, own: boolean } {
  return typeof sit.z === 'number' && Number.isFinite(sit.z) && sit.z >= 0 ? { z: sit.z, own: true } : { z: global, own: false }
}

/** The trained safe-default policy: fixed rules, per-situation trust and gate z. */
export class SafeDefault {
  private readonly models: Set<string>
  constructor (readonly fixed: FixedRule, readonly seen: SituationJSON, readonly unseen: SituationJSON, readonly z = SAFE_Z, readonly newModel?: SituationJSON, readonly seenHost?: SituationJSON) {
    this.models = new Set([...fixed.shapes.keys()].map(k => k.slice(0, k.indexOf('|'))))
  }

  /** `grid`: the z values the checks choose from (default Z_GRID; [1] reproduces the fixed z = 1 rule before per-situation z) */
  static async train (tasks: readonly Task[], fit: (train: Task[]) => Promise<Predictor>, opts: { seed?: number, grid?: readonly number[], folds?: number } = {}): Promise<{ policy: SafeDefault, profile: TrustProfile }> {
    const profile = await checkTrustProfile(tasks, fit, opts)
    const pick = (c: TrustCheck): SituationJSON => ({ trusted: c.trusted, rule: c.rule, tasks: c.tasks, ...(c.z != null ? { z: c.z } : {}) })
    return { policy: new SafeDefault(FixedRule.fromTasks(tasks), pick(profile.seen), pick(profile.unseen), SAFE_Z, pick(profile.newModel), pick(profile.seenHost)), profile }
  }

  /**
   * Decide for one task; `scored` holds the learner's ln-perf predictions of the candidates.
   * `knownHost`: the task's machine is in the history. Without held-out evidence for known
   * shapes (a history of one machine), per-workload-best is the machine's own measurement for
   * a known host, but an untested transfer for a new one: single-best there. `model`: the
   * task's logical model id when `shape` is undefined (else read from the shape key).
   */
  decide (shape: string | undefined, scored: readonly ScoredMethod[], knownHost = true, model?: string): SafeAnswer {
    const known = shape != null && this.fixed.shapes.has(shape)
    const m = shape != null ? shape.slice(0, shape.indexOf('|')) : model
    const newModel = !known && this.newModel != null && m != null && !this.models.has(m)
    const onKnownHost = known && knownHost && this.seenHost != null
    const sit = onKnownHost ? this.seenHost as SituationJSON : known ? this.seen : newModel ? this.newModel as SituationJSON : this.unseen
    const what = onKnownHost ? 'known workload shape on a known machine' : known ? 'known workload shape' : newModel ? 'model not in the history' : 'unseen workload shape'

    const cands = scored.map(s => s.method)
    const rule: FixedRuleName = known && sit.tasks === 0 && !knownHost ? 'single-best' : sit.rule
    const fixed = this.fixed.choose(shape, cands, rule)
    if (!sit.trusted) {
      const d = safeDecision(scored, fixed.method, this.z)
      return { ...d, choice: fixed.method, safe: d.learnerChoice !== fixed.method, rule: fixed.rule, trusted: false, reason: `safe default: ${fixed.rule} → ${fixed.method}; the gated learner did not beat the fixed rule on held-out tasks of the history at any z of the gate (${what})` }
    }
    const { z, own } = zOf(sit, this.z)
    const d = safeDecision(scored, fixed.method, z)
    // which z decided: the situation's own (chosen on held-out tasks) or an older snapshot's global one
    const zText = `z = ${z}${own ? ` chosen on held-out tasks for a ${what}` : ''}`
    const reason = d.safe
      ? `safe default: ${fixed.rule} → ${fixed.method}; the learner's ${d.learnerChoice} gains ${d.gain.toFixed(3)} ln, within z × its spread = ${d.margin.toFixed(3)} (${zText})`
      : `learner: ${d.choice}${d.choice === fixed.method ? ` (agrees with ${fixed.rule})` : ` over ${fixed.rule}'s ${fixed.method} by ${d.gain.toFixed(3)} ln > z × its spread = ${d.margin.toFixed(3)} (${zText})`}`
    return { ...d, rule: fixed.rule, trusted: true, reason }
  }

  toJSON (): SafeDefaultJSON {
    return { fixed: this.fixed.toJSON(), seen: this.seen, unseen: this.unseen, ...(this.newModel != null ? { newModel: this.newModel } : {}), ...(this.seenHost != null ? { seenHost: this.seenHost } : {}), z: this.z }
  }

  static fromJSON (j: SafeDefaultJSON): SafeDefault {
    return new SafeDefault(FixedRule.fromJSON(j.fixed), j.seen, j.unseen, j.z, j.newModel, j.seenHost)
  }
}
