import { workloadFeatures } from '../meta/workload-features.js'
import type { MetaModel, SelectTask, Selection } from '../meta/selector.js'
import { selectMethod } from '../meta/selector.js'
import { logicalModelId } from '../meta/dataset.js'
import { RECOMMEND_ANSWER_VERSION, type ModelRef, type RecommendRequest, type RecommendResponse } from '../net/recommend.js'
import type { HardwareFingerprint, ModelDescriptor } from '../records/types.js'
import { advise, approximateTokenize, hardwareTask, resolveModel, type Advice, type HardwareLike, type ModelLike } from '../vote/advisor.js'
import { classBase, classKeyOf } from '../vote/task-class.js'
import type { Objective } from '../contracts/objective.js'
import type { VoteService } from '../vote/service.js'
import type { ResolvedModel } from './sessions.js'
import { DEFAULT_MAX_TOKENS, ServingError } from './types.js'
import { tokenizeForFeatures } from './tokenize.js'
import { measuredFor, type OwnCapability } from '../engine/capability-probe.js'

/**
 * Cache key form of workload features: each value on a logarithmic grid of 3 % steps. Tasks
 * whose features all agree within ~3 % get the same (cached) decision: far below the noise of one
 * measurement, and it lets a busy peer answer repeated, near-identical questions without
 * re-running the forest (~3-40 ms per answer, depending on the backend).
 */
export function quantizeFeatures (f: Record<string, number>): Array<[string, number]> {
  return Object.keys(f).sort().map(k => {
    const v = f[k]
    return [k, v === 0 || !Number.isFinite(v) ? 0 : Math.sign(v) * Math.round(Math.log(Math.abs(v)) / Math.log(1.03))]
  })
}

export interface DecideOptions { objective: Objective, budget?: number, sloTtftMs?: number, methods: string[], explore: boolean }
export type Decision = Advice & { selection: Selection }
export type DecideFn = (model: SelectTask['model'], modelId: string, hw: HardwareLike, features: Record<string, number>, opts: DecideOptions) => Decision

export interface MethodDeciderInit {
  explorationRate: number
  /** this node's price of an hour, for hardware that names none */
  pricePerHour: number
  rng: () => number
  /** knobs of every catalog method, by id */
  methodKnobs: Record<string, Record<string, number>>
  meta: () => MetaModel | null
  votes: () => VoteService | undefined
  /** issue #16: this machine's measured capability, for its own hardware's feature row */
  ownCapability?: () => OwnCapability | undefined
}

/** Decide: meta-model selection → committee while cold → exploration. Pure apart from the rng. */
export function createMethodDecider (init: MethodDeciderInit): DecideFn {
  const { explorationRate, rng } = init
  return function decide (model, modelId, hw, features, opts) {
    const measured = measuredFor(hw, init.ownCapability?.())
    const task: SelectTask = { hardware: hardwareTask(measured != null ? { ...hw, measured } : hw), model, workload: { features }, methods: opts.methods, methodKnobs: init.methodKnobs }
    const explore = opts.explore && explorationRate > 0 ? { rate: explorationRate, rng } : undefined
    const selection = selectMethod(init.meta(), task, { objective: opts.objective, budget: opts.budget, sloTtftMs: opts.sloTtftMs, pricePerHour: hw.pricePerHour ?? init.pricePerHour, explore })
    const key = classKeyOf(classBase(modelId, features, hw.backend), opts.objective)
    const v = init.votes()
    const advice = advise({ selection, classKey: key, committee: v?.committee(key), own: v?.ownEvidence(key) ?? { records: 0, methods: 0 }, coldOwnRecords: v?.coldOwnRecords })
    // without any model the selector ignores exploration; explore uniformly instead, so a fresh
    // swarm still measures more than the cold-start rule's choice
    if (opts.explore && selection.coldStart && advice.source === 'cold-start' && explorationRate > 0 && rng() < explorationRate && opts.methods.length > 1) {
      const pick = opts.methods[Math.floor(rng() * opts.methods.length)]
      const chosen = advice.ranking.find(r => r.method === pick)
      if (chosen != null) {
        advice.ranking = [chosen, ...advice.ranking.filter(r => r !== chosen)]
        advice.choice = pick
        advice.explored = true
        advice.reason = `exploration (rate ${explorationRate}) with no trained model`
      }
    }
    return { ...advice, selection }
  }
}

export interface RecommenderInit {
  decide: DecideFn
  /** every method of the catalog, the default candidates */
  catalogIds: () => string[]
  meta: () => MetaModel | null
  votes: () => VoteService | undefined
  modelSpec: (name: string) => Promise<ResolvedModel>
  tokenizerFor: (name: string) => ((text: string) => number[]) | undefined
  hardwareForAdvice: () => HardwareFingerprint
  /**
   * how long a recommend waits for a model of this node to be prepared (its files generated or
   * read) before answering E_STARTING: the exchange has 5 s in all, and a timeout says nothing
   */
  modelWaitMs?: number
}

/** Default of RecommenderInit.modelWaitMs. */
export const MODEL_WAIT_MS = 1500

/** A model spec, or undefined when it is still being prepared after `ms`. */
async function within<T> (p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const late = new Promise<undefined>(resolve => { timer = setTimeout(() => { resolve(undefined) }, ms) })
  try {
    return await Promise.race([p, late])
  } finally {
    clearTimeout(timer)
  }
}

export interface Recommender {
  /** the answer to a recommend request (pure apart from caches) */
  recommend: (req: RecommendRequest) => Promise<RecommendResponse>
  counts: () => { recommends: number, recommendCacheHits: number }
}

const DECISION_CACHE_MAX = 4096

export function createRecommender (init: RecommenderInit): Recommender {
  const counts = { recommends: 0, recommendCacheHits: 0 }
  const decisionCache = new Map<string, { version: string, advice: Advice }>()

  async function modelOf (ref: ModelRef): Promise<ModelLike> {
    const index = init.votes()?.index
    const lookup = (k: string): ModelDescriptor | undefined => index?.model(k)
    let model = (() => { try { return resolveModel(ref, lookup) } catch { return undefined } })()
    if (model == null && ref.name != null) {
      // a model this node serves but has no record of yet
      let ready: ResolvedModel | undefined | null = null
      try { ready = await within(init.modelSpec(ref.name), init.modelWaitMs ?? MODEL_WAIT_MS) } catch {}
      if (ready === undefined) throw new ServingError('E_STARTING', `model "${ref.name}" is still being prepared on this peer (files generated or read on first use): ask again in a few seconds`)
      model = ready?.descriptor
    }
    return model ?? resolveModel(ref, lookup) // throws E_UNKNOWN_MODEL
  }

  /**
   * Features of the request's prompts, on the model's own tokenizer when a session of it is open;
   * bounded and sliced like serving's own tokenizing (issue #18: a 4 MiB query held the loop seconds).
   */
  async function promptFeatures (req: RecommendRequest): Promise<Record<string, number>> {
    const prompts = req.prompts ?? []
    const tok = (req.model.name != null ? init.tokenizerFor(req.model.name) : undefined) ?? approximateTokenize
    return workloadFeatures({ prompts: await tokenizeForFeatures(tok, prompts), maxTokens: prompts.map(() => req.maxTokens ?? DEFAULT_MAX_TOKENS), concurrency: Math.max(1, prompts.length) })
  }

  async function recommend (req: RecommendRequest): Promise<RecommendResponse> {
    counts.recommends++
    const v = init.votes()
    const model = await modelOf(req.model)
    const modelId = model.id ?? req.model.id ?? req.model.name ?? 'unknown'
    const hw = req.hardware != null
      ? { ...req.hardware, pricePerHour: req.hardware.pricePerHour ?? 0 }
      : init.hardwareForAdvice()
    const features = req.features ?? await promptFeatures(req)
    const m = init.meta()
    const snapshot = m != null ? m.trainingSetHash.slice(0, 16) : null
    const base = classBase(modelId, features, hw.backend)
    const own = v?.ownEvidence(classKeyOf(base, req.objective)) ?? { records: 0, methods: 0 }
    // the decision only changes with the model, the live evidence, the tally/weights, or this node's own evidence
    const stateVersion = `${snapshot ?? '-'}|${m?.live?.version() ?? 0}|${v?.version() ?? 0}|${own.records}|${own.methods}`
    const cacheKey = JSON.stringify([modelId, req.objective, req.budget ?? null, req.slo ?? null, req.hardware ?? null, req.methods ?? null, quantizeFeatures(features)])
    let d = decisionCache.get(cacheKey)
    const catalog = init.catalogIds()
    if (d == null || d.version !== stateVersion) {
      const methods = req.methods ?? withHistorySettings(catalog, m, model)
      // the answer needs the advice, not the selection behind it: cached without it (with all-new
      // tasks every entry survives the young generation, so what it holds is copied by each scavenge)
      const { selection: _selection, ...advice } = init.decide(model, modelId, hw, features, { objective: req.objective, budget: req.budget, sloTtftMs: req.slo?.ttftMs, methods, explore: false })
      d = { version: stateVersion, advice }
      if (decisionCache.size >= DECISION_CACHE_MAX) decisionCache.clear()
      decisionCache.set(cacheKey, d)
    } else {
      counts.recommendCacheHits++
    }
    const ev = v?.index.evidence(base) ?? { records: 0, authors: 0 }
    return recommendResponse(req, d.advice, { records: ev.records, authors: ev.authors, snapshot }, v, runnableOf(catalog))
  }

  return { recommend, counts: () => ({ ...counts }) }
}

/** The catalog's ids as a set, one per catalog array (the service hands out the same array on every request). */
const runnableSets = new WeakMap<readonly string[], ReadonlySet<string>>()
function runnableOf (catalog: readonly string[]): ReadonlySet<string> {
  if (!Object.isFrozen(catalog)) return new Set(catalog)
  let s = runnableSets.get(catalog)
  if (s == null) runnableSets.set(catalog, s = new Set(catalog))
  return s
}

/** At most this many settings of the history join the catalog as recommend candidates (best prior first). */
export const MAX_HISTORY_SETTINGS = 64

/**
 * Recommend candidates: the catalog plus the settings the history holds for the model (issue 16
 * item 4: imported `llama-bench:...` ids too), so a setting measured faster elsewhere is ranked
 * even when this peer's engine cannot run it (the answer flags it `runnable: false`). More than
 * MAX_HISTORY_SETTINGS: those with the best pairwise prior over the model's settings.
 */
export function withHistorySettings (catalog: readonly string[], meta: MetaModel | null, model: ModelLike): string[] {
  if (meta == null || model.name == null) return [...catalog]
  const known = new Set(catalog)
  const all = meta.modelMethods[logicalModelId(model as unknown as Parameters<typeof logicalModelId>[0])] ?? []
  let extra = all.filter(x => !known.has(x))
  if (extra.length > MAX_HISTORY_SETTINGS) {
    // the priors of the whole set, remembered per set by the model (same numbers as prior(x, all))
    const priors = meta.prior?.priors(all)
    const at = new Map(all.map((x, i) => [x, i]))
    const score = new Map(extra.map(x => [x, priors?.[at.get(x) as number] ?? 0]))
    extra = extra.sort((a, b) => (score.get(b) as number) - (score.get(a) as number) || (a < b ? -1 : 1)).slice(0, MAX_HISTORY_SETTINGS)
  }
  return [...catalog, ...extra]
}

/** The wire form of an advice (optional fields only when set; the committee view when asked for). */
function recommendResponse (req: RecommendRequest, advice: Advice, evidence: RecommendResponse['evidence'], votes: VoteService | undefined, runnable: ReadonlySet<string>): RecommendResponse {
  return {
    v: RECOMMEND_ANSWER_VERSION,
    ranking: advice.ranking.map(r => ({ method: r.method, predicted: r.predicted, uncertainty: r.uncertainty, feasible: r.feasible, ...(r.reason != null ? { reason: r.reason } : {}), ...(r.committeeScore != null ? { committeeScore: r.committeeScore } : {}), ...(runnable.has(r.method) ? {} : { runnable: false }) })),
    evidence,
    coldStart: advice.coldStart,
    source: advice.source,
    objective: req.objective,
    taskClass: advice.classKey,
    ...(advice.reason != null ? { reason: advice.reason } : {}),
    ...(req.committee === true ? { committee: votes?.view(advice.classKey) ?? { classes: [], weights: [] } } : {})
  }
}
