import type { Objective } from '../contracts/objective.js'
import { SwarmtuneError } from '../util/errors.js'
import type { SignedRecord } from '../records/types.js'
import type { ForestOptions, ForestPrediction, LearnerBackend, RegressionForest } from './learner.js'
import { FEATURE_SCHEMA_VERSION, featureVector, knobFeatures, taskFeatures, type FeatureTask } from './features.js'
import { buildDataset, logicalModelId, trainingRows, trainingSetHash, type Dataset, type HistoryBody, type Task } from './dataset.js'
import { getBackend, ML_RF_BACKEND } from './ml-forest.js'
import { SafeDefault, shapeKey, type SafeDefaultJSON } from './safe-default.js'
import type { LiveEvidenceSource, LiveView } from './live-evidence.js'
import { isPairwisePriorJSON, PAIRWISE_PRIOR_LEARNER, PairwisePriorModel, priorPredictorOf, trainPairwisePrior, type PairwisePriorJSON } from './pairwise-prior.js'
import { knownShapes, matchShape, validShapes, type KnownShape } from './shape-match.js'

/**
 * The meta-model (paper: offline meta-training) and the selection policy (online, budget-aware).
 * Pure given a trained model: `selectMethod` does no I/O and, without exploration, is
 * deterministic.
 */
export const SNAPSHOT_FORMAT = 'swarmtune-meta'
/** fewer ok cells than this → cold-start rule instead of the forest */
export const MIN_CELLS = 10

export class MetaError extends SwarmtuneError {}

export interface MetaForests {
  /** ln(speedup over baseline): snapshots before the pairwise-prior learner; null since (`MetaModel.prior` ranks) */
  speedup: RegressionForest | null
  /** ln(wallMs) */
  wallMs: RegressionForest | null
  /** ln(ttftMsP50) */
  ttftMs: RegressionForest | null
}

export interface MetaModel {
  schemaVersion: number
  backend: string
  trainedAt: number
  trainingSetHash: string
  /** training rows (ok cells) */
  rows: number
  tasks: number
  methods: string[]
  methodKnobs: Record<string, Record<string, number>>
  baselineMethod: string
  /** hardware / model ids seen in training (to flag unseen ones in answers) */
  seen: { hardware: string[], models: string[] }
  forests: MetaForests
  /** the throughput learner (pairwise-prior.ts): `learner` names it; snapshots of another learner are retrained */
  learner: typeof PAIRWISE_PRIOR_LEARNER
  prior: PairwisePriorModel | null
  /** the history's workload shapes, to match a query to one (shape-match.ts) */
  shapes: KnownShape[]
  /** logical model id → the settings (method ids) the history holds for it, sorted */
  modelMethods: Record<string, string[]>
  /** the fixed rules and when the learner may override them (absent in older snapshots) */
  safeDefault?: SafeDefaultJSON
  /**
   * issue #17 item 6, in the daemon only (never in a snapshot): the store's current evidence per
   * machine (live-evidence.ts); a task whose machine's view holds its shape is decided by that
   * view's fixed rules, not the snapshot's
   */
  live?: LiveEvidenceSource
}

export interface TrainOptions extends Partial<ForestOptions> {
  backend?: LearnerBackend | string
  baselineMethod?: string
  now?: number
  /** issue #7: author → trust weight (src/trust); cells become trust-weighted medians, weight-0 authors are left out, unlisted authors weigh 0 */
  authorWeights?: Record<string, number>
  /** train the safe-default policy (nested checks: about 6 more speedup forests); default true */
  safeDefault?: boolean
}

async function resolveBackend (b: LearnerBackend | string | undefined): Promise<LearnerBackend> {
  if (b == null) return await getBackend(ML_RF_BACKEND)
  return typeof b === 'string' ? await getBackend(b) : b
}

function forestOpts (o: TrainOptions): ForestOptions {
  return { nTrees: o.nTrees ?? 50, maxFeatures: o.maxFeatures ?? 1, maxDepth: o.maxDepth, minSamplesLeaf: o.minSamplesLeaf ?? 2, seed: o.seed ?? 1 }
}

/** Train on some tasks of a dataset (eval uses this with the training folds). */
export async function trainOnTasks (ds: Dataset, tasks: readonly Task[], opts: TrainOptions = {}): Promise<MetaModel> {
  const backend = await resolveBackend(opts.backend)
  const rows = trainingRows(ds, tasks)
  if (rows.X.length === 0) throw new MetaError('E_EMPTY_HISTORY', 'no successful measurement to train on')
  const fo = forestOpts(opts)
  const scorable = tasks.filter(t => t.reference != null)
  const prior = scorable.length > 0 ? await trainPairwisePrior(scorable, backend, fo) : null
  const wallMs = await backend.train(rows.X, rows.yWall, { ...fo, seed: (fo.seed ?? 1) + 1 })
  const ttftMs = await backend.train(rows.X, rows.yTtft, { ...fo, seed: (fo.seed ?? 1) + 2 })
  const safe = opts.safeDefault === false || prior == null ? undefined : await trainSafeDefault(ds, tasks, backend, fo)
  const seenHw = new Set(tasks.map(t => t.hardwareId))
  const seenModels = new Set(tasks.map(t => t.info.model.id))
  return {
    schemaVersion: FEATURE_SCHEMA_VERSION,
    backend: backend.name,
    trainedAt: opts.now ?? Date.now(),
    trainingSetHash: trainingSetHash(ds),
    rows: rows.X.length,
    tasks: tasks.length,
    methods: ds.methods,
    methodKnobs: ds.methodKnobs,
    baselineMethod: ds.baselineMethod,
    seen: { hardware: [...seenHw].sort(), models: [...seenModels].sort() },
    forests: { speedup: null, wallMs, ttftMs },
    learner: PAIRWISE_PRIOR_LEARNER,
    prior,
    shapes: knownShapes(tasks),
    modelMethods: methodsByModel(tasks),
    ...(safe != null ? { safeDefault: safe } : {})
  }
}

/** The safe-default policy for the learner, checked with learners trained as it is (eval does the same). */
async function trainSafeDefault (ds: Dataset, tasks: readonly Task[], backend: LearnerBackend, fo: ForestOptions): Promise<SafeDefaultJSON> {
  const fit = async (train: Task[]): Promise<ReturnType<typeof priorPredictorOf>> => priorPredictorOf(await trainPairwisePrior(train, backend, fo), ds.methodKnobs)
  const { policy } = await SafeDefault.train(tasks, fit, { seed: fo.seed })
  return policy.toJSON()
}

/** Logical model id → the method ids measured on it (recommend ranks them, not only the catalog). */
function methodsByModel (tasks: readonly Task[]): Record<string, string[]> {
  const by = new Map<string, Set<string>>()
  for (const t of tasks) {
    let set = by.get(t.modelId)
    if (set == null) by.set(t.modelId, set = new Set())
    for (const m of t.cells.keys()) set.add(m)
  }
  return Object.fromEntries([...by].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([k, v]) => [k, [...v].sort()]))
}

/** Train the meta-model on a history (records or bodies). Empty history → E_EMPTY_HISTORY. */
export async function train (records: ReadonlyArray<SignedRecord | HistoryBody | { body: HistoryBody }>, opts: TrainOptions = {}): Promise<MetaModel> {
  if (records.length === 0) throw new MetaError('E_EMPTY_HISTORY', 'the history is empty: nothing to train on')
  const weights = opts.authorWeights
  const ds = buildDataset(records, { baselineMethod: opts.baselineMethod, ...(weights != null ? { weightOf: (a: string) => weights[a] ?? 0 } : {}) })
  return await trainOnTasks(ds, ds.tasks, opts)
}

// ---------------------------------------------------------------- selection

export interface SelectTask extends FeatureTask {
  hardware: FeatureTask['hardware'] & { id?: string, pricePerHour?: number }
  model: FeatureTask['model'] & { id?: string }
  /** `name`: the workload shape, for the per-workload-best rule (without it: single-best) */
  workload: FeatureTask['workload'] & { name?: string }
  /** candidate method ids (default: every method the model knows) */
  methods?: string[]
  /** knob vectors for candidates the model has not seen */
  methodKnobs?: Record<string, Record<string, number>>
}

export interface SelectOptions {
  objective?: Objective
  /** USD for this task: predicted runtime × pricePerHour / 3600 must not exceed it */
  budget?: number
  /** ms: predicted TTFT must not exceed it */
  sloTtftMs?: number
  /** USD per hour of this node (default: task.hardware.pricePerHour, else 0) */
  pricePerHour?: number
  /** with probability `rate`, rank by the upper confidence bound instead of the mean */
  explore?: { rate: number, rng: () => number, c?: number }
  /** cells needed before the forest is trusted (default MIN_CELLS) */
  minCells?: number
}

export interface Prediction {
  speedup: number | null
  wallMs: number | null
  ttftMs: number | null
  /** USD for one run of the workload */
  cost: number | null
}

export interface RankedMethod {
  method: string
  predicted: Prediction
  /** std over trees of the objective's log-target (0 in cold start) */
  uncertainty: number
  feasible: boolean
  reason?: string
}

export interface Selection {
  objective: Objective
  choice: string
  ranking: RankedMethod[]
  coldStart: boolean
  explored: boolean
  /** why this answer: cold-start rule, infeasibility, unseen hardware/model */
  reason?: string
  /** parts of the task the model never saw in training (prediction is a zero-shot extrapolation) */
  unseen: string[]
  snapshot?: { trainedAt: number, trainingSetHash: string, rows: number }
  /** set when a fixed rule decided (safe-default.ts): the learner was not trusted or its gain was within its uncertainty */
  safeDefault?: { rule: string, learnerChoice: string, reason: string, shape?: string }
}

/**
 * Cold-start rule (no or too little history): prefix caching when most prompt tokens are a
 * shared or reusable prefix (max of sharedPrefixRatio, reusablePrefixRatio > 0.5) (it skips their prefill: measured here 2285 → 44 ms TTFT), otherwise the
 * baseline — the one method that never risks a regression.
 */
export function coldStartChoice (task: SelectTask, candidates: string[], baselineMethod = 'baseline'): { method: string, reason: string } {
  const f = task.workload.features ?? {}
  const spr = Math.max(Number.isFinite(f.sharedPrefixRatio) ? f.sharedPrefixRatio : 0, Number.isFinite(f.reusablePrefixRatio) ? f.reusablePrefixRatio : 0)
  if (spr > 0.5 && candidates.includes('prefix-cache')) {
    return { method: 'prefix-cache', reason: `cold start: shared/reusable prefix ratio ${spr.toFixed(2)} > 0.5 → prefix-cache` }
  }
  const method = candidates.includes(baselineMethod) ? baselineMethod : candidates[0]
  return { method, reason: `cold start: no workload signal for a specialised method → ${method}` }
}

function candidatesOf (model: MetaModel | null, task: SelectTask): { ids: string[], knobs: Record<string, Record<string, number>> } {
  const own = model?.methodKnobs ?? {}
  const given = task.methodKnobs ?? {}
  const ids = task.methods ?? model?.methods ?? [...new Set([...Object.keys(own), ...Object.keys(given)])]
  if (ids.length === 0) throw new MetaError('E_NO_METHODS', 'no candidate methods: pass task.methods or train on a history')
  // the same candidates with the same knob records (a recommend's catalog and history settings)
  // give the same object, remembered per (task knobs, model knobs) pair (issue #19 item 3:
  // building it was a sixth of an uncached decision, its ids being dictionary-mode keys)
  const key = ids.join('\u0000')
  const byOwn = knobsMemo.get(given)?.get(own)
  const hit = byOwn?.get(key)
  if (hit != null && (model == null || hit.complete)) return { ids, knobs: hit.knobs }
  // only the candidates' knobs (the task's win): merging whole catalogs cost more than the forest per answer
  const knobs: Record<string, Record<string, number>> = {}
  let complete = true
  for (const id of ids) {
    const k = given[id] ?? own[id]
    if (k != null) knobs[id] = k
    else if (model != null) throw new MetaError('E_UNKNOWN_METHOD', `unknown method "${id}": not in the history and no knobs given`)
    else complete = false
  }
  Object.freeze(knobs)
  let m1 = knobsMemo.get(given)
  if (m1 == null) knobsMemo.set(given, m1 = new WeakMap())
  let m2 = m1.get(own)
  if (m2 == null) m1.set(own, m2 = new Map())
  if (m2.size >= KNOBS_MEMO_MAX) m2.clear()
  m2.set(key, { knobs, complete })
  return { ids, knobs }
}
/**
 * candidatesOf's answers: task knobs → model knobs → candidate ids → the candidates' knobs.
 * Knob records are never changed in place (a snapshot's and the catalog's are built once).
 */
const knobsMemo = new WeakMap<object, WeakMap<object, Map<string, { knobs: Record<string, Record<string, number>>, complete: boolean }>>>()
const KNOBS_MEMO_MAX = 256

/** Predict every candidate's targets for one task (no policy). */
export function predictTask (model: MetaModel, task: FeatureTask, methods: string[], knobs: Record<string, Record<string, number>> = model.methodKnobs, taskRow = taskFeatures(task)): Array<{ method: string, logSpeedup: number, logSpeedupStd: number, logWall: number, logWallStd: number, logTtft: number, logTtftStd: number }> {
  // the task columns once, then each method's knob columns (featureVector's layout); forests
  // that can (predictParts) take the two parts without the rows being built (issue #19 item 3)
  const tails = methods.map(m => {
    const k = knobs[m]
    if (k == null) throw new MetaError('E_UNKNOWN_METHOD', `unknown method "${m}"`)
    return knobRowOf(k)
  })
  let rows: number[][] | undefined
  const X = (): number[][] => (rows ??= tails.map(k => taskRow.concat(k)))
  const run = (f: RegressionForest | null): ForestPrediction | undefined => f == null ? undefined : f.predictParts != null ? f.predictParts(taskRow, tails) : f.predict(X())
  const nan = { mean: tails.map(() => NaN), std: tails.map(() => NaN) }
  const w = run(model.forests.wallMs) ?? nan
  const t = run(model.forests.ttftMs) ?? nan
  let s = model.prior != null ? priorSpeedups(model.prior, taskRow, tails, methods, model.baselineMethod) : run(model.forests.speedup)
  if (s == null) {
    // no baseline in the history: within one task throughput ∝ 1/wall (same tokens), so rank
    // by predicted wall time relative to the baseline's prediction
    const bi = methods.indexOf(model.baselineMethod)
    const ref = bi >= 0 ? w.mean[bi] : Math.max(...w.mean)
    s = { mean: w.mean.map(v => ref - v), std: w.std }
  }
  return methods.map((method, i) => ({ method, logSpeedup: s.mean[i], logSpeedupStd: s.std[i], logWall: w.mean[i], logWallStd: w.std[i], logTtft: t.mean[i], logTtftStd: t.std[i] }))
}

/**
 * A knob record's feature columns, one immutable array per record object (issue #19 item 3):
 * the catalog's and a snapshot's knob records are never changed in place, and the histogram
 * forest remembers the bins of a knob row by the array's identity.
 */
const knobRows = new WeakMap<Record<string, number>, readonly number[]>()
function knobRowOf (k: Record<string, number>): readonly number[] {
  let row = knobRows.get(k)
  if (row == null) knobRows.set(k, row = Object.freeze(knobFeatures(k)))
  return row
}

/**
 * The learner's scores as ln speedups: relative to the baseline's score when the baseline is a
 * candidate, else to the candidates' mean (the learner ranks within a task; differences are
 * what it predicts).
 */
function priorSpeedups (prior: PairwisePriorModel, taskRow: readonly number[], tails: ReadonlyArray<readonly number[]>, methods: string[], baseline: string): { mean: number[], std: number[] } {
  const p = prior.predictParts(taskRow, tails, methods)
  const bi = methods.indexOf(baseline)
  const ref = bi >= 0 ? p.mean[bi] : 0
  return { mean: p.mean.map(v => v - ref), std: p.std }
}

function finiteOrNull (x: number): number | null {
  return Number.isFinite(x) ? x : null
}

/**
 * Rank methods for a task. Feasible (budget, SLO) methods come first, ordered by the objective:
 * throughput → highest predicted speedup; latency → lowest predicted TTFT; cost → lowest
 * predicted USD (wall time × price), then wall time.
 */
export function selectMethod (model: MetaModel | null, task: SelectTask, opts: SelectOptions = {}): Selection {
  const objective = opts.objective ?? 'throughput'
  if (!['throughput', 'latency', 'cost'].includes(objective)) throw new MetaError('E_BAD_OBJECTIVE', `unknown objective "${String(objective)}"`)
  const price = opts.pricePerHour ?? task.hardware.pricePerHour ?? 0
  const { ids, knobs } = candidatesOf(model, task)
  // validates the task (NaN → E_BAD_FEATURE) even on the cold-start path
  const taskRow = taskFeatures(task)
  if (model == null || model.rows < (opts.minCells ?? MIN_CELLS)) {
    const cs = coldStartChoice(task, ids, model?.baselineMethod)
    const blank: Prediction = { speedup: null, wallMs: null, ttftMs: null, cost: null }
    const ranking = [cs.method, ...ids.filter(m => m !== cs.method)].map(m => ({ method: m, predicted: blank, uncertainty: 0, feasible: true }))
    const why = model == null ? 'no trained model' : `only ${model.rows} cells of history (< ${opts.minCells ?? MIN_CELLS})`
    return { objective, choice: cs.method, ranking, coldStart: true, explored: false, reason: `${cs.reason} (${why})`, unseen: [] }
  }
  const preds = predictTask(model, task, ids, knobs, taskRow)
  const explore = opts.explore != null && opts.explore.rate > 0 && opts.explore.rng() < opts.explore.rate
  const c = opts.explore?.c ?? 1
  const rows = preds.map(p => {
    const wallMs = Math.exp(p.logWall)
    const ttftMs = Math.exp(p.logTtft)
    const cost = wallMs / 3_600_000 * price
    const reasons: string[] = []
    if (opts.budget != null && cost > opts.budget) reasons.push(`predicted cost ${cost.toPrecision(3)} USD > budget ${opts.budget}`)
    if (opts.sloTtftMs != null && !(ttftMs <= opts.sloTtftMs)) reasons.push(`predicted TTFT ${ttftMs.toFixed(1)} ms > SLO ${opts.sloTtftMs} ms`)
    // score: higher is better, in log space, with the std of the same log-target
    let score: number
    let std: number
    switch (objective) {
      case 'throughput': score = p.logSpeedup; std = p.logSpeedupStd; break
      case 'latency': score = -p.logTtft; std = p.logTtftStd; break
      case 'cost': score = price > 0 ? -Math.log(Math.max(cost, 1e-12)) : -p.logWall; std = p.logWallStd; break
    }
    const ranked: RankedMethod & { score: number } = {
      method: p.method,
      predicted: { speedup: finiteOrNull(Math.exp(p.logSpeedup)), wallMs: finiteOrNull(wallMs), ttftMs: finiteOrNull(ttftMs), cost: finiteOrNull(cost) },
      uncertainty: Number.isFinite(std) ? std : 0,
      feasible: reasons.length === 0,
      score: (Number.isFinite(score) ? score : -Infinity) + (explore ? c * (Number.isFinite(std) ? std : 0) : 0)
    }
    if (reasons.length > 0) ranked.reason = reasons.join('; ')
    return ranked
  })
  rows.sort((a, b) => (Number(b.feasible) - Number(a.feasible)) || (b.score - a.score) || (a.method < b.method ? -1 : 1))
  let ranking: RankedMethod[] = rows.map(({ score: _s, ...r }) => r)
  const safe = objective === 'throughput' && !explore ? safeDefaultOf(model, task, ranking, preds) : undefined
  if (safe != null) ranking = [...ranking.filter(r => r.method === safe.choice), ...ranking.filter(r => r.method !== safe.choice)]
  const unseen: string[] = []
  if (task.hardware.id != null && !model.seen.hardware.includes(task.hardware.id)) unseen.push('hardware')
  if (task.model.id != null && !model.seen.models.includes(task.model.id)) unseen.push('model')
  let reason: string | undefined
  if (!ranking[0].feasible) reason = `no method meets the constraints; least bad: ${ranking[0].method} (${ranking[0].reason ?? ''})`
  else if (unseen.length > 0) reason = `zero-shot: ${unseen.join(' and ')} not in the history; predicted from features`
  if (safe?.safeDefault != null) reason = reason == null ? safe.safeDefault.reason : `${safe.safeDefault.reason}; ${reason}`
  return {
    objective,
    choice: ranking[0].method,
    ranking,
    coldStart: false,
    explored: explore,
    ...(reason != null ? { reason } : {}),
    unseen,
    snapshot: { trainedAt: model.trainedAt, trainingSetHash: model.trainingSetHash, rows: model.rows },
    ...(safe?.safeDefault != null ? { safeDefault: safe.safeDefault } : {})
  }
}

/**
 * The safe-default rule on a throughput ranking (safe-default.ts): among the feasible methods,
 * the fixed rule's choice stands unless the model's checks trusted the forest and its predicted
 * gain exceeds its spread. Undefined when the model has no policy (older snapshot, no speedup
 * forest) or nothing is feasible.
 */
function safeDefaultOf (model: MetaModel, task: SelectTask, ranking: RankedMethod[], preds: ReturnType<typeof predictTask>): { choice: string, safeDefault?: Selection['safeDefault'] } | undefined {
  if (model.safeDefault == null || (model.prior == null && model.forests.speedup == null) || !ranking[0].feasible) return undefined
  const feasible = new Set(ranking.filter(r => r.feasible).map(r => r.method))
  const scored = preds.filter(p => feasible.has(p.method) && Number.isFinite(p.logSpeedup)).map(p => ({ method: p.method, mean: p.logSpeedup, std: p.logSpeedupStd }))
  if (scored.length === 0) return undefined
  // the machine's live evidence first (peers with the same records agree), else the snapshot's
  const view = task.hardware.id != null ? model.live?.view(task.hardware.id) : undefined
  const liveMatch = view != null ? shapeOf({ shapes: view.shapes }, task) : undefined
  const onLive = view != null && liveMatch != null && view.fixed.shapes.has(shapeKey(liveMatch.model, liveMatch.workload))
  const matched = onLive ? liveMatch : shapeOf(model, task)
  const shape = matched != null ? shapeKey(matched.model, matched.workload) : undefined
  const knownHost = onLive || (task.hardware.id != null && model.seen.hardware.includes(task.hardware.id))
  const policy = onLive ? livePolicy(model.safeDefault, view) : safeDefaultPolicy(model.safeDefault)
  const a = policy.decide(shape, scored, knownHost, matched?.model ?? modelIdOf(task))
  const shapeNote = (matched?.distance != null ? `; workload matched to shape ${matched.workload} (distance ${matched.distance.toFixed(2)})` : '') +
    (onLive ? `; live evidence: ${view.records} benchmark records of this machine` : '')
  if (a.trusted && !a.safe) return { choice: a.choice }
  return { choice: a.choice, safeDefault: { rule: a.rule, learnerChoice: a.learnerChoice, reason: a.reason + shapeNote, ...(matched != null ? { shape: matched.workload } : {}) } }
}

/**
 * The snapshot's policy, built once per snapshot object (issue #19 item 3): rebuilding its
 * pairwise maps from JSON on every decision was a third of the daemon's CPU per new-task
 * recommend. A policy is immutable (its fixed rule remembers its answers), and a snapshot's
 * `safeDefault` is never changed in place.
 */
const safeDefaultPolicies = new WeakMap<SafeDefaultJSON, SafeDefault>()
function safeDefaultPolicy (j: SafeDefaultJSON): SafeDefault {
  let p = safeDefaultPolicies.get(j)
  if (p == null) safeDefaultPolicies.set(j, p = SafeDefault.fromJSON(j))
  return p
}

/**
 * The snapshot's policy with a machine's live fixed rules (live-evidence.ts) in place of the
 * snapshot's, for a task whose shape the view holds; the learner's trust and gate stay the
 * snapshot's. All of the rule is the view's, the global pairs too: a pair of methods the shape
 * never measured together falls back to the global evidence, and the snapshot's global differs
 * from peer to peer (measured in the learn scenario: three peers with the same records, three
 * answers, until the fallback was the view's). Built once per (view, snapshot): a view is
 * replaced, never changed, on a rebuild.
 */
const livePolicies = new WeakMap<LiveView, WeakMap<SafeDefaultJSON, SafeDefault>>()
function livePolicy (j: SafeDefaultJSON, view: LiveView): SafeDefault {
  let byJ = livePolicies.get(view)
  if (byJ == null) livePolicies.set(view, byJ = new WeakMap())
  let p = byJ.get(j)
  if (p == null) {
    const b = safeDefaultPolicy(j)
    byJ.set(j, p = new SafeDefault(view.fixed, b.seen, b.unseen, b.z, b.newModel, b.seenHost))
  }
  return p
}

function modelIdOf (task: SelectTask): string | undefined {
  const m = task.model as unknown as Parameters<typeof logicalModelId>[0]
  return m.name == null ? undefined : logicalModelId(m)
}

/**
 * The task's workload shape in the history: its name when it has one, else the nearest known
 * shape of the same logical model by the workload features (shape-match.ts, within its bound).
 */
export function shapeOf (model: Pick<MetaModel, 'shapes'>, task: SelectTask): { model: string, workload: string, distance?: number } | undefined {
  // the history keys shapes by the logical model (dataset.ts): a full descriptor matches it
  const m = task.model as unknown as Parameters<typeof logicalModelId>[0]
  if (task.workload.name == null && (model.shapes.length === 0 || m.name == null)) return undefined
  const id = logicalModelId(m)
  if (task.workload.name != null) return { model: id, workload: task.workload.name }
  const hit = matchShape(model.shapes, id, task.workload.features ?? {})
  return hit != null ? { model: id, workload: hit.workload, distance: hit.distance } : undefined
}

export interface UncertainCell {
  taskIndex: number
  method: string
  /** predicted ln(speedup) (or its wall-time stand-in) */
  mean: number
  std: number
  /** mean + c·std */
  ucb: number
}

/**
 * The background sweep's next cells: UCB over (task, method) pairs — high where a method may be
 * good and the trees disagree, so sweeps spend time where they can change a decision.
 */
export function mostUncertainCells (model: MetaModel, candidateTasks: readonly SelectTask[], k: number, c = 1): UncertainCell[] {
  const out: UncertainCell[] = []
  candidateTasks.forEach((task, taskIndex) => {
    const { ids, knobs } = candidatesOf(model, task)
    for (const p of predictTask(model, task, ids, knobs)) {
      const std = Number.isFinite(p.logSpeedupStd) ? p.logSpeedupStd : 0
      out.push({ taskIndex, method: p.method, mean: p.logSpeedup, std, ucb: p.logSpeedup + c * std })
    }
  })
  out.sort((a, b) => (b.ucb - a.ucb) || (b.std - a.std) || (a.taskIndex - b.taskIndex) || (a.method < b.method ? -1 : 1))
  return out.slice(0, Math.max(0, k))
}

// ---------------------------------------------------------------- snapshots

/** A MetaModel as JSON: the forests become their backends' snapshots. */
export interface MetaSnapshot extends Omit<MetaModel, 'forests' | 'prior'> {
  format: typeof SNAPSHOT_FORMAT
  forests: { speedup: unknown, wallMs: unknown, ttftMs: unknown }
  prior: PairwisePriorJSON | null
}

export function toJSON (model: MetaModel): MetaSnapshot {
  const { forests, prior, live: _live, ...rest } = model
  return {
    format: SNAPSHOT_FORMAT,
    ...rest,
    forests: { speedup: forests.speedup?.toJSON() ?? null, wallMs: forests.wallMs?.toJSON() ?? null, ttftMs: forests.ttftMs?.toJSON() ?? null },
    prior: prior?.toJSON() ?? null
  }
}

/**
 * Restore a snapshot. Another feature-schema version → E_SNAPSHOT_SCHEMA (retrain, the columns
 * differ); anything malformed → E_SNAPSHOT_CORRUPT. Accepts a JSON string or the parsed object.
 */
export async function load (snapshot: unknown): Promise<MetaModel> {
  let s = snapshot
  if (typeof s === 'string') {
    try {
      s = JSON.parse(s)
    } catch (err) {
      throw new MetaError('E_SNAPSHOT_CORRUPT', `snapshot is not JSON: ${(err as Error).message}`)
    }
  }
  const o = s as Partial<MetaSnapshot> | null
  if (o == null || typeof o !== 'object' || o.format !== SNAPSHOT_FORMAT) throw new MetaError('E_SNAPSHOT_CORRUPT', 'not a swarmtune meta-model snapshot')
  if (typeof o.schemaVersion !== 'number') throw new MetaError('E_SNAPSHOT_CORRUPT', 'snapshot has no schema version')
  if (o.schemaVersion !== FEATURE_SCHEMA_VERSION) {
    throw new MetaError('E_SNAPSHOT_SCHEMA', `snapshot has feature schema ${String(o.schemaVersion)}, this node uses ${FEATURE_SCHEMA_VERSION}: retrain`)
  }
  const okShape = typeof o.backend === 'string' && typeof o.trainedAt === 'number' && typeof o.trainingSetHash === 'string' &&
    typeof o.rows === 'number' && Array.isArray(o.methods) && o.methodKnobs != null && typeof o.methodKnobs === 'object' &&
    typeof o.baselineMethod === 'string' && o.forests != null && typeof o.forests === 'object' &&
    o.seen != null && Array.isArray(o.seen.hardware) && Array.isArray(o.seen.models)
  if (!okShape) throw new MetaError('E_SNAPSHOT_CORRUPT', 'snapshot is missing fields')
  // a snapshot of another learner (before the pairwise prior: none named) ranks differently: retrain
  if (o.learner !== PAIRWISE_PRIOR_LEARNER) {
    throw new MetaError('E_SNAPSHOT_LEARNER', `snapshot was trained with learner ${JSON.stringify(o.learner ?? 'speedup-forest')}, this node uses ${PAIRWISE_PRIOR_LEARNER}: retrain`)
  }
  if (o.prior != null && !isPairwisePriorJSON(o.prior)) throw new MetaError('E_SNAPSHOT_CORRUPT', 'snapshot learner is malformed')
  let backend: LearnerBackend
  try {
    backend = await getBackend(o.backend as string)
  } catch (err) {
    throw new MetaError('E_SNAPSHOT_CORRUPT', `snapshot backend unavailable: ${(err as Error).message}`, { cause: err })
  }
  const f = o.forests as MetaSnapshot['forests']
  const one = (x: unknown): RegressionForest | null => {
    if (x == null) return null
    try {
      return backend.load(x)
    } catch (err) {
      throw new MetaError('E_SNAPSHOT_CORRUPT', `snapshot forest does not load: ${(err as Error).message}`, { cause: err })
    }
  }
  const safeDefault = validSafeDefault(o.safeDefault) ? o.safeDefault : undefined
  // the policy is built here, with the snapshot (the meta service loads it off the request path),
  // not by the first recommend after a retrain
  if (safeDefault != null) safeDefaultPolicy(safeDefault)
  return {
    schemaVersion: o.schemaVersion,
    backend: o.backend as string,
    trainedAt: o.trainedAt as number,
    trainingSetHash: o.trainingSetHash as string,
    rows: o.rows as number,
    tasks: typeof o.tasks === 'number' ? o.tasks : 0,
    methods: o.methods as string[],
    methodKnobs: o.methodKnobs as Record<string, Record<string, number>>,
    baselineMethod: o.baselineMethod as string,
    seen: o.seen as MetaModel['seen'],
    forests: { speedup: one(f.speedup), wallMs: one(f.wallMs), ttftMs: one(f.ttftMs) },
    learner: PAIRWISE_PRIOR_LEARNER,
    prior: o.prior == null ? null : loadPrior(o.prior, backend),
    shapes: validShapes(o.shapes) ? o.shapes : [],
    modelMethods: validModelMethods(o.modelMethods) ? o.modelMethods : {},
    ...(safeDefault != null ? { safeDefault } : {})
  }
}

function loadPrior (j: PairwisePriorJSON, backend: LearnerBackend): PairwisePriorModel {
  try {
    return PairwisePriorModel.load(j, backend)
  } catch (err) {
    throw new MetaError('E_SNAPSHOT_CORRUPT', `snapshot learner does not load: ${(err as Error).message}`, { cause: err })
  }
}

function validModelMethods (v: unknown): v is Record<string, string[]> {
  return v != null && typeof v === 'object' && Object.values(v).every(x => Array.isArray(x) && x.every(y => typeof y === 'string'))
}

/** A snapshot's policy is kept only when well formed; otherwise the forest answers alone, as before. */
function validSafeDefault (v: unknown): v is SafeDefaultJSON {
  if (v == null || typeof v !== 'object') return false
  const o = v as Partial<SafeDefaultJSON>
  const sit = (x: unknown): boolean => x != null && typeof x === 'object' && typeof (x as { trusted?: unknown }).trusted === 'boolean' &&
    ['per-workload-best', 'single-best'].includes((x as { rule?: string }).rule ?? '')
  return sit(o.seen) && sit(o.unseen) && (o.newModel === undefined || sit(o.newModel)) && typeof o.z === 'number' && o.fixed != null && Array.isArray(o.fixed.shapes) && Array.isArray(o.fixed.global?.pairs)
}
