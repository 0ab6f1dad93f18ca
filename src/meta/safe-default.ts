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

/** z of the per-task gate: the learner's predicted gain must exceed z × its spread. */
export const SAFE_Z = 1
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

/** Per-workload-best, else single-best, from the history's pairwise evidence. */
export class FixedRule {
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
    const pw = shape != null && mode === 'per-workload-best' ? this.shapes.get(shape) : undefined
    // a pair the shape never measured together falls back to the global evidence
    return pw != null
      ? { method: bestOf(pw, candidates, this.global), rule: 'per-workload-best' }
      : { method: bestOf(this.global, candidates), rule: 'single-best' }
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
  /** the learner beat the fixed rule on the inner folds (strictly lower mean regret) */
  trusted: boolean
  /** the fixed rule with the lower inner regret (single-best on a tie; with no held-out task, per-workload-best for known shapes) */
  rule: FixedRuleName
  /** the learner gated against `rule` */
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

/**
 * Nested check: train the learner on part of the history and compare the fixed rules and the
 * gated learner on the rest. The fixed rule is the one with the lower regret there (on
 * cross-machine data a workload shape seen on a few other machines can be worse evidence than
 * all tasks together); the learner is trusted only when it is strictly better than that rule — a
 * history too small to show that (one group, a handful of tasks) keeps the fixed rule.
 */
export async function checkTrust (tasks: readonly Task[], fit: (train: Task[]) => Promise<Predictor>, opts: { grouping: Split, seed?: number, z?: number, folds?: number, seenShapesOnly?: boolean }): Promise<TrustCheck> {
  const scorable = tasks.filter(t => t.reference != null && t.cells.size >= 2)
  const grouping = opts.grouping
  const out: TrustCheck = { trusted: false, rule: 'single-best', learnerRegret: NaN, fixedRegret: NaN, ruleRegret: { 'per-workload-best': NaN, 'single-best': NaN }, folds: 0, grouping, tasks: 0 }
  if (scorable.length < 2) return out
  const folds = innerFolds(scorable, grouping, opts.seed ?? 1, opts.folds ?? TRUST_FOLDS)
  if (folds.length < 2) return out
  const rules: FixedRuleName[] = ['per-workload-best', 'single-best']
  const fixedSum = [0, 0]
  const learnerSum = [0, 0]
  for (let f = 0; f < folds.length; f++) {
    const train = folds.filter((_, i) => i !== f).flat()
    const fixed = FixedRule.fromTasks(train)
    const test = opts.seenShapesOnly === true ? folds[f].filter(t => fixed.shapes.has(shapeKey(t.modelId, t.workload))) : folds[f]
    if (test.length === 0) continue
    const predict = await fit(train)
    for (const t of test) {
      const perf = perfOf(t)
      const cands = [...perf.keys()].filter(m => Number.isFinite(perf.get(m))).sort()
      const p = predict(t, cands)
      const scored = cands.map((method, i) => ({ method, mean: p.mean[i], std: p.std[i] }))
      rules.forEach((rule, r) => {
        const d = fixed.choose(shapeKey(t.modelId, t.workload), cands, rule).method
        fixedSum[r] += regretOf(perf, d)
        learnerSum[r] += regretOf(perf, safeDecision(scored, d, opts.z).choice)
      })
      out.tasks++
    }
  }
  out.folds = folds.length
  // no held-out task in this situation: no evidence against the issue's rule, none for the learner
  if (out.tasks === 0) return { ...out, rule: opts.seenShapesOnly === true ? 'per-workload-best' : 'single-best' }
  out.ruleRegret = { 'per-workload-best': fixedSum[0] / out.tasks, 'single-best': fixedSum[1] / out.tasks }
  // per-workload-best only when it is strictly better: on a tie the rule with fewer parameters
  const r = fixedSum[0] < fixedSum[1] - 1e-9 ? 0 : 1
  out.rule = rules[r]
  out.learnerRegret = learnerSum[r] / out.tasks
  out.fixedRegret = fixedSum[r] / out.tasks
  // an absolute tolerance only for float noise: an equal regret keeps the simpler rule
  out.trusted = out.learnerRegret < out.fixedRegret - 1e-12
  return out
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
export async function checkTrustProfile (tasks: readonly Task[], fit: (train: Task[]) => Promise<Predictor>, opts: { seed?: number, z?: number, folds?: number } = {}): Promise<TrustProfile> {
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
    : { trusted: false, rule: 'single-best' as const, learnerRegret: NaN, fixedRegret: NaN, ruleRegret: { 'per-workload-best': NaN, 'single-best': NaN }, folds: 0, grouping: 'model' as const, tasks: 0 }
  // a held-out model's shapes are not in the inner training set: both fixed rules are single-best
  newModel.rule = 'single-best'
  newModel.fixedRegret = newModel.ruleRegret['single-best']
  return { seen, seenHost, unseen, newModel }
}

export interface SafeDefaultJSON {
  fixed: FixedRuleJSON
  /** `tasks`: held-out tasks behind the check (0: no evidence either way) */
  seen: { trusted: boolean, rule: FixedRuleName, tasks?: number }
  unseen: { trusted: boolean, rule: FixedRuleName, tasks?: number }
  /** a model the history does not hold; absent in older snapshots (then `unseen` applies) */
  newModel?: { trusted: boolean, rule: FixedRuleName, tasks?: number }
  /** known shape on a known machine; absent in snapshots before it existed (then `seen` applies) */
  seenHost?: { trusted: boolean, rule: FixedRuleName, tasks?: number }
  z: number
}

export interface SafeAnswer extends SafeDecision {
  /** the fixed rule that applied and whether the learner was allowed to override it */
  rule: FixedRuleName
  trusted: boolean
  reason: string
}

/** The trained safe-default policy: fixed rules, per-situation trust, the gate. */
export class SafeDefault {
  private readonly models: Set<string>
  constructor (readonly fixed: FixedRule, readonly seen: SafeDefaultJSON['seen'], readonly unseen: SafeDefaultJSON['unseen'], readonly z = SAFE_Z, readonly newModel?: SafeDefaultJSON['unseen'], readonly seenHost?: SafeDefaultJSON['seen']) {
    this.models = new Set([...fixed.shapes.keys()].map(k => k.slice(0, k.indexOf('|'))))
  }

  static async train (tasks: readonly Task[], fit: (train: Task[]) => Promise<Predictor>, opts: { seed?: number, z?: number } = {}): Promise<{ policy: SafeDefault, profile: TrustProfile }> {
    const profile = await checkTrustProfile(tasks, fit, opts)
    const pick = (c: TrustCheck): SafeDefaultJSON['seen'] => ({ trusted: c.trusted, rule: c.rule, tasks: c.tasks })
    return { policy: new SafeDefault(FixedRule.fromTasks(tasks), pick(profile.seen), pick(profile.unseen), opts.z ?? SAFE_Z, pick(profile.newModel), pick(profile.seenHost)), profile }
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
    const sit = onKnownHost ? this.seenHost as SafeDefaultJSON['seen'] : known ? this.seen : newModel ? this.newModel as SafeDefaultJSON['unseen'] : this.unseen
    const what = onKnownHost ? 'known workload shape on a known machine' : known ? 'known workload shape' : newModel ? 'model not in the history' : 'unseen workload shape'

    const cands = scored.map(s => s.method)
    const rule: FixedRuleName = known && sit.tasks === 0 && !knownHost ? 'single-best' : sit.rule
    const fixed = this.fixed.choose(shape, cands, rule)
    if (!sit.trusted) {
      const d = safeDecision(scored, fixed.method, this.z)
      return { ...d, choice: fixed.method, safe: d.learnerChoice !== fixed.method, rule: fixed.rule, trusted: false, reason: `safe default: ${fixed.rule} → ${fixed.method}; the learner did not beat the fixed rule on held-out tasks of the history (${what})` }
    }
    const d = safeDecision(scored, fixed.method, this.z)
    const reason = d.safe
      ? `safe default: ${fixed.rule} → ${fixed.method}; the learner's ${d.learnerChoice} gains ${d.gain.toFixed(3)} ln, within its uncertainty ${d.margin.toFixed(3)}`
      : `learner: ${d.choice}${d.choice === fixed.method ? ` (agrees with ${fixed.rule})` : ` over ${fixed.rule}'s ${fixed.method} by ${d.gain.toFixed(3)} ln > uncertainty ${d.margin.toFixed(3)}`}`
    return { ...d, rule: fixed.rule, trusted: true, reason }
  }

  toJSON (): SafeDefaultJSON {
    return { fixed: this.fixed.toJSON(), seen: this.seen, unseen: this.unseen, ...(this.newModel != null ? { newModel: this.newModel } : {}), ...(this.seenHost != null ? { seenHost: this.seenHost } : {}), z: this.z }
  }

  static fromJSON (j: SafeDefaultJSON): SafeDefault {
    return new SafeDefault(FixedRule.fromJSON(j.fixed), j.seen, j.unseen, j.z, j.newModel, j.seenHost)
  }
}
