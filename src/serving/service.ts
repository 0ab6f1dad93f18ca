import type { Objective } from '../contracts/objective.js'
import { hardwareFingerprint } from '../engine/hardware.js'
import { workloadFeatures } from '../meta/workload-features.js'
import { percentile } from '../util/stats.js'
import { loadMethods, knobRecord } from '../engine/methods.js'
import { resolveModel as resolveModelSpec, describeGguf, modelNames } from '../engine/models.js'
import type { Engine, EngineSession, InferenceRequest, Method, ModelSpec } from '../engine/types.js'
import type { MetaModel, SelectTask, Selection } from '../meta/selector.js'
import { selectMethod } from '../meta/selector.js'
import { createRecommendService, DEFAULT_RECOMMEND_LIMITS, type RecommendRequest, type RecommendResponse } from '../net/recommend.js'
import type { RpcLimits, ViolationHook } from '../net/rpc/limits.js'
import type { HardwareFingerprint, ModelDescriptor, ResultMetrics, UnsignedBody } from '../records/types.js'
import { SwarmtuneError, errorMessage } from '../util/errors.js'
import { log } from '../util/log.js'
import { createRng } from '../util/random.js'
import { advise, approximateTokenize, hardwareTask, resolveModel, type Advice, type HardwareLike } from '../vote/advisor.js'
import type { ClassIndex } from '../vote/class-index.js'
import { classBase, classKeyOf } from '../vote/task-class.js'
import type { VoteService } from '../vote/service.js'
import type { Libp2p } from '@libp2p/interface'
import type { ControlApi } from '../contracts/api.js'
import type { OwnRecordWriter } from '../contracts/records.js'
import type { Startable } from '../contracts/service.js'
import type { EngineConfig } from '../engine/types.js'
import type { Activity } from '../util/activity.js'
import type { Counters } from '../util/counters.js'

/**
 * Serving (issue #6): for each incoming batch of prompts the node computes the workload features
 * from the real tokens, picks the method (meta-model, a small exploration rate, the committee
 * while the node is cold for the task's class), runs it on the engine (sessions cached per model
 * and method), returns the outputs with the method and the realized metrics, and stores and
 * gossips the realized performance as a signed `source: serving` record through
 * `ownRecord` — which the next training uses and which scores the voters' reputation.
 *
 * The same service answers `/swarmtune/recommend/1.0.0` (src/net/recommend.ts), serves
 * `/swarmtune/infer/1.0.0` (src/net/infer.ts) and the OpenAI-compatible routes
 * (src/node/openai.ts).
 *
 * Batches run one at a time (a queue of at most `maxQueue`): on the small CPU machines this
 * targets, two batches in parallel only slow each other down (DESIGN.md §3: thread barrier).
 */

export interface MetaSource { current: () => MetaModel | null }

export interface ServingComponents {
  api: ControlApi
  network: { libp2p: Libp2p }
  rejections: Counters
  ownRecord: OwnRecordWriter
  /** each batch marks itself busy here, so background benchmarks yield to it */
  activity: Activity
  /** the node's engine, shared with the bench service (default: a llama.cpp engine of its own) */
  engine?: () => Promise<Engine>
  /** the meta-model (src/meta/service.ts) */
  meta?: MetaSource
  /** the committee (src/vote/service.ts), asked while the node is cold for a task's class */
  votes?: VoteService
}

/** The slice of the node's config serving reads. */
export interface ServingConfig {
  dataDir: string
  engine: EngineConfig
  hardware: { pricePerHour: number }
  meta: { explorationRate: number }
}

export interface ServeRequest {
  /** model name (config.engine.models or an embedded model); default config.engine.defaultModel */
  model?: string
  prompts: string[]
  /** output cap per prompt (one number for all, or one per prompt), default 32 */
  maxTokens?: number | number[]
  objective?: Objective
  budget?: number
  sloTtftMs?: number
  /** force a method (skips selection; still recorded) */
  method?: string
  signal?: AbortSignal
}

export interface ServeOutput {
  text: string
  promptTokens: number
  outputTokens: number
  ttftMs: number
  latencyMs: number
}

export interface ServeResult {
  model: string
  method: string
  /** why this method: meta | committee | cold-start | explore | forced */
  source: string
  explored: boolean
  taskClass: string
  outputs: ServeOutput[]
  metrics: ResultMetrics
  /** the workload features the choice was made on */
  features: Record<string, number>
  timings: { selectMs: number, engineMs: number, totalMs: number }
}

export interface ServingInit {
  config: ServingConfig
  explorationRate?: number
  /** sessions kept open (model × method), least recently used closed first */
  maxSessions?: number
  /** batches waiting for the engine before new ones are refused with E_BUSY */
  maxQueue?: number
  recommendLimits?: Partial<RpcLimits>
  inferLimits?: Partial<RpcLimits>
  onViolation?: ViolationHook
  /** record the served batches (default true) */
  record?: boolean
  seed?: number
}

export interface ServingService extends Startable {
  serve: (req: ServeRequest) => Promise<ServeResult>
  recommend: (req: RecommendRequest) => Promise<RecommendResponse>
  /** the engine, created on first use */
  engine: () => Promise<Engine>
  stats: () => Record<string, unknown>
}

export class ServingError extends SwarmtuneError {}

const DEFAULT_MAX_TOKENS = 32


export function metricsOf (outcome: { requests: Array<{ promptTokens: number, outputTokens: number, ttftMs: number, latencyMs: number }>, wallMs: number }): ResultMetrics {
  const reqs = outcome.requests
  const promptTokens = reqs.reduce((s, r) => s + r.promptTokens, 0)
  const outputTokens = reqs.reduce((s, r) => s + r.outputTokens, 0)
  const wallMs = Math.max(outcome.wallMs, 1e-3)
  const ttfts = reqs.map(r => r.ttftMs)
  const tpots = reqs.filter(r => r.outputTokens > 1).map(r => (r.latencyMs - r.ttftMs) / (r.outputTokens - 1))
  const round = (x: number): number => Math.round(x * 1000) / 1000
  return {
    ok: true,
    repeats: 1,
    wallMs: round(wallMs),
    promptTokens,
    outputTokens,
    outputTokensPerSecond: round(outputTokens / (wallMs / 1000)),
    totalTokensPerSecond: round((promptTokens + outputTokens) / (wallMs / 1000)),
    ttftMsP50: round(percentile(ttfts, 50)),
    ttftMsP95: round(percentile(ttfts, 95)),
    tpotMs: round(tpots.length === 0 ? 0 : tpots.reduce((s, x) => s + x, 0) / tpots.length),
    peakRssMiB: Math.round(process.memoryUsage().rss / 2 ** 20),
    spread: 0
  }
}

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

/** Name for the workload of a served batch (record.workload.name). */
export function servingWorkloadName (features: Record<string, number>): string {
  return `serving-n${features.requests ?? 0}-p${Math.round(features.promptTokensMean ?? 0)}-o${Math.round(features.outputTokensMean ?? 0)}`
}

export function createServingService (init: ServingInit, components: ServingComponents): ServingService {
  const { config } = init
  const logger = log('serving')
  const explorationRate = init.explorationRate ?? config.meta.explorationRate
  const maxSessions = Math.max(1, init.maxSessions ?? 4)
  const maxQueue = init.maxQueue ?? 64
  const rng = createRng(init.seed ?? (Date.now() >>> 0))
  const catalog: Method[] = loadMethods()
  const catalogKnobs: Record<string, Record<string, number>> = Object.fromEntries(catalog.map(m => [m.id, knobRecord(m.knobs)]))
  const st = { served: 0, failed: 0, recorded: 0, recordErrors: 0, explored: 0, recommends: 0, recommendCacheHits: 0, queued: 0 }
  const bySource: Record<string, number> = {}
  let enginePromise: Promise<Engine> | undefined
  const sessions = new Map<string, { session: Promise<EngineSession>, used: number, ready?: EngineSession }>()
  const specs = new Map<string, Promise<{ spec: ModelSpec, descriptor: ModelDescriptor }>>()
  let chain: Promise<unknown> = Promise.resolve()
  let waiting = 0
  let stopped = false
  let ownHardware: HardwareFingerprint | undefined
  const decisionCache = new Map<string, { version: string, advice: Advice }>()

  const meta = (): MetaModel | null => components.meta?.current() ?? null
  const votes = (): VoteService | undefined => components.votes

  async function engine (): Promise<Engine> {
    if (components.engine != null) return await components.engine()
    enginePromise ??= import('../engine/llama-engine.js').then(async m => await m.createLlamaEngine({ gpu: config.engine.gpu, threads: config.engine.threads }))
    enginePromise.catch(() => { enginePromise = undefined })
    return await enginePromise
  }

  async function modelSpec (name: string): Promise<{ spec: ModelSpec, descriptor: ModelDescriptor }> {
    let p = specs.get(name)
    if (p == null) {
      p = (async () => {
        const spec = await resolveModelSpec(config, name, config.dataDir)
        const descriptor = describeGguf(spec.path, name)
        votes()?.index.addModel(descriptor)
        return { spec, descriptor }
      })()
      p.catch(() => { specs.delete(name) })
      specs.set(name, p)
    }
    return await p
  }

  async function hardware (): Promise<HardwareFingerprint> {
    if (ownHardware != null) return ownHardware
    const e = await engine()
    ownHardware = hardwareFingerprint({ backend: e.backend, gpus: e.gpus, threads: Math.max(1, config.engine.threads), pricePerHour: config.hardware.pricePerHour })
    return ownHardware
  }

  /** Own hardware for recommend answers without loading the engine: the engine's fingerprint once loaded, else one from config (CPU unless a GPU backend is configured). */
  let guessedHardware: HardwareFingerprint | undefined
  function hardwareForAdvice (): HardwareFingerprint {
    if (ownHardware != null) return ownHardware
    const backend = config.engine.gpu === 'auto' ? 'cpu' : config.engine.gpu
    // probing the system hashes a fingerprint: once, not per request
    guessedHardware ??= hardwareFingerprint({ backend, gpus: [], threads: Math.max(1, config.engine.threads), pricePerHour: config.hardware.pricePerHour })
    return guessedHardware
  }

  async function session (name: string, spec: ModelSpec, method: Method): Promise<EngineSession> {
    const key = `${name}\n${method.id}`
    const hit = sessions.get(key)
    if (hit != null) {
      hit.used = Date.now()
      return await hit.session
    }
    while (sessions.size >= maxSessions) {
      const [oldKey, old] = [...sessions.entries()].sort((a, b) => a[1].used - b[1].used)[0]
      sessions.delete(oldKey)
      old.session.then(async s => { await s.close() }).catch(() => {})
    }
    const entry: { session: Promise<EngineSession>, used: number, ready?: EngineSession } = { session: engine().then(async e => await e.open(spec, method)), used: Date.now() }
    entry.session.then(x => { entry.ready = x }, () => { if (sessions.get(key) === entry) sessions.delete(key) })
    sessions.set(key, entry)
    return await entry.session
  }

  /** Tokenizer of a model: any open session of it (vocabularies do not depend on the method). */
  function tokenizerFor (name: string): ((text: string) => number[]) | undefined {
    // an open session only: recommend must not wait for a model to load
    for (const [key, s] of sessions) {
      if (key.startsWith(`${name}\n`) && s.ready != null) return s.ready.tokenize.bind(s.ready)
    }
    return undefined
  }

  /** Decide: meta-model selection → committee while cold → exploration. Pure apart from the rng. */
  function decide (model: SelectTask['model'], modelId: string, hw: HardwareLike, features: Record<string, number>, opts: { objective: Objective, budget?: number, sloTtftMs?: number, methods: string[], explore: boolean }): Advice & { selection: Selection } {
    const task: SelectTask = { hardware: hardwareTask(hw), model, workload: { features }, methods: opts.methods, methodKnobs: catalogKnobs }
    const explore = opts.explore && explorationRate > 0 ? { rate: explorationRate, rng } : undefined
    const selection = selectMethod(meta(), task, { objective: opts.objective, budget: opts.budget, sloTtftMs: opts.sloTtftMs, pricePerHour: hw.pricePerHour ?? config.hardware.pricePerHour, explore })
    const key = classKeyOf(classBase(modelId, features, hw.backend), opts.objective)
    const v = votes()
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

  async function enqueue<T> (fn: () => Promise<T>): Promise<T> {
    // not E_BUSY: that code blames the requesting peer; a full queue is this node's state
    if (waiting >= maxQueue) throw new ServingError('E_OVERLOADED', `${waiting} batches already queued: try later`)
    waiting++
    st.queued = waiting
    const run = chain.then(fn, fn)
    chain = run.catch(() => {})
    try {
      return await run
    } finally {
      waiting--
      st.queued = waiting
    }
  }

  async function serve (req: ServeRequest): Promise<ServeResult> {
    if (stopped) throw new ServingError('E_UNAVAILABLE', 'node stopping')
    const t0 = performance.now()
    const name = req.model ?? config.engine.defaultModel
    if (!Array.isArray(req.prompts) || req.prompts.length === 0) throw new ServingError('E_REQ_INVALID', 'prompts must be a non-empty array')
    const caps = Array.isArray(req.maxTokens) ? req.maxTokens : req.prompts.map(() => (req.maxTokens as number | undefined) ?? DEFAULT_MAX_TOKENS)
    if (caps.length !== req.prompts.length || caps.some(c => !Number.isInteger(c) || c < 1)) throw new ServingError('E_REQ_INVALID', 'maxTokens must be a positive integer (or one per prompt)')
    return await enqueue(async () => {
      req.signal?.throwIfAborted()
      const { spec, descriptor } = await modelSpec(name)
      const e = await engine()
      const hw = await hardware()
      const supported = catalog.filter(m => e.supports(spec, m).ok)
      if (supported.length === 0) throw new ServingError('E_NO_METHODS', `no method of the catalog runs model ${name} here`)
      // tokens come from the model's own tokenizer: open (or reuse) a baseline session for it
      const tokSession = await session(name, spec, supported.find(m => m.id === 'baseline') ?? supported[0])
      const tokens = req.prompts.map(p => tokSession.tokenize(p))
      const features = workloadFeatures({ prompts: tokens, maxTokens: caps, concurrency: req.prompts.length })
      const objective = req.objective ?? 'throughput'
      let method: Method
      let source: string
      let explored = false
      let taskClass = classKeyOf(classBase(descriptor.id, features, hw.backend), objective)
      const tSel = performance.now()
      if (req.method != null) {
        const m = supported.find(x => x.id === req.method)
        if (m == null) throw new ServingError('E_UNKNOWN_METHOD', `method ${req.method} is not in the catalog or does not run here`)
        method = m
        source = 'forced'
      } else {
        const d = decide(descriptor, descriptor.id, hw, features, { objective, budget: req.budget, sloTtftMs: req.sloTtftMs, methods: supported.map(m => m.id), explore: true })
        method = supported.find(m => m.id === d.choice) ?? supported[0]
        explored = d.explored
        source = d.explored ? 'explore' : d.source
        taskClass = d.classKey
      }
      const selectMs = performance.now() - tSel
      const s = await session(name, spec, method)
      const requests: InferenceRequest[] = req.prompts.map((prompt, i) => ({ prompt, maxTokens: caps[i] }))
      const tEng = performance.now()
      let outcome
      // pauses the background benchmark sweep while a served batch runs
      const done = components.activity.begin()
      try {
        outcome = await s.runBatch(requests, { signal: req.signal })
      } catch (err) {
        st.failed++
        throw err
      } finally {
        done()
      }
      const engineMs = performance.now() - tEng
      const metrics = metricsOf(outcome)
      st.served++
      if (explored) st.explored++
      bySource[source] = (bySource[source] ?? 0) + 1
      if (init.record !== false) {
        const body: UnsignedBody = {
          source: 'serving',
          hardware: hw,
          engine: e.info,
          model: s.model,
          workload: { family: 'serving', name: servingWorkloadName(features), features },
          method: { id: method.id, knobs: knobRecord(method.knobs) },
          result: metrics
        }
        // durable + gossiped off the response path: the client does not wait for the fsync
        components.ownRecord(body).then(() => { st.recorded++ }, err => {
          st.recordErrors++
          logger.error('recording a served batch failed: %s', errorMessage(err))
        })
      }
      return {
        model: name,
        method: method.id,
        source,
        explored,
        taskClass,
        outputs: outcome.requests.map(r => ({ text: r.text, promptTokens: r.promptTokens, outputTokens: r.outputTokens, ttftMs: Math.round(r.ttftMs * 1000) / 1000, latencyMs: Math.round(r.latencyMs * 1000) / 1000 })),
        metrics,
        features,
        timings: { selectMs, engineMs, totalMs: performance.now() - t0 }
      }
    })
  }

  /** The answer to a recommend request (pure apart from caches). */
  async function recommend (req: RecommendRequest): Promise<RecommendResponse> {
    st.recommends++
    const v = votes()
    const index: ClassIndex | undefined = v?.index
    const lookup = (k: string): ModelDescriptor | undefined => index?.model(k)
    let model = (() => { try { return resolveModel(req.model, lookup) } catch { return undefined } })()
    if (model == null && req.model.name != null) {
      // a model this node serves but has no record of yet
      try { model = (await modelSpec(req.model.name)).descriptor } catch {}
    }
    if (model == null) model = resolveModel(req.model, lookup) // throws E_UNKNOWN_MODEL
    const modelId = model.id ?? req.model.id ?? req.model.name ?? 'unknown'
    const hw = req.hardware != null
      ? { ...req.hardware, pricePerHour: req.hardware.pricePerHour ?? 0 }
      : hardwareForAdvice()
    let features = req.features
    if (features == null) {
      const prompts = req.prompts ?? []
      const tok = (req.model.name != null ? tokenizerFor(req.model.name) : undefined) ?? approximateTokenize
      features = workloadFeatures({ prompts: prompts.map(p => tok(p)), maxTokens: prompts.map(() => req.maxTokens ?? DEFAULT_MAX_TOKENS), concurrency: Math.max(1, prompts.length) })
    }
    const m = meta()
    const snapshot = m != null ? m.trainingSetHash.slice(0, 16) : null
    const base = classBase(modelId, features, hw.backend)
    const own = v?.ownEvidence(classKeyOf(base, req.objective)) ?? { records: 0, methods: 0 }
    // the decision only changes with the model, the tally/weights, or this node's own evidence
    const stateVersion = `${snapshot ?? '-'}|${v?.version() ?? 0}|${own.records}|${own.methods}`
    const cacheKey = JSON.stringify([modelId, req.objective, req.budget ?? null, req.slo ?? null, req.hardware ?? null, req.methods ?? null, quantizeFeatures(features)])
    let d = decisionCache.get(cacheKey)
    if (d == null || d.version !== stateVersion) {
      const methods = req.methods ?? catalog.map(x => x.id)
      d = { version: stateVersion, advice: decide(model as SelectTask['model'], modelId, hw, features, { objective: req.objective, budget: req.budget, sloTtftMs: req.slo?.ttftMs, methods, explore: false }) }
      if (decisionCache.size >= 4096) decisionCache.clear()
      decisionCache.set(cacheKey, d)
    } else {
      st.recommendCacheHits++
    }
    const advice = d.advice
    const ev = index?.evidence(base) ?? { records: 0, authors: 0 }
    const res: RecommendResponse = {
      ranking: advice.ranking.map(r => ({ method: r.method, predicted: r.predicted, uncertainty: r.uncertainty, feasible: r.feasible, ...(r.reason != null ? { reason: r.reason } : {}), ...(r.committeeScore != null ? { committeeScore: r.committeeScore } : {}) })),
      evidence: { records: ev.records, authors: ev.authors, snapshot },
      coldStart: advice.coldStart,
      source: advice.source,
      objective: req.objective,
      taskClass: advice.classKey,
      ...(advice.reason != null ? { reason: advice.reason } : {}),
      ...(req.committee === true ? { committee: v?.view(advice.classKey) ?? { classes: [], weights: [] } } : {})
    }
    return res
  }

  const recommendSvc = createRecommendService({
    libp2p: {
      handle: async (...a) => { await components.network.libp2p.handle(...a) },
      unhandle: async (...a) => { await components.network.libp2p.unhandle(...a) }
    },
    answer: async (req) => await recommend(req),
    rejections: components.rejections,
    limits: { ...DEFAULT_RECOMMEND_LIMITS, ...init.recommendLimits },
    onViolation: init.onViolation
  })
  let inferSvc: { start: () => Promise<void>, stop: () => Promise<void>, stats: () => unknown } | undefined

  const service: ServingService = {
    serve,
    recommend,
    engine,
    stats: () => ({ ...st, bySource: { ...bySource }, sessions: sessions.size, recommend: recommendSvc.stats(), infer: inferSvc?.stats() }),
    async start () {
      stopped = false
      await recommendSvc.start()
      const { createInferService } = await import('../net/infer.js')
      inferSvc = createInferService({ libp2p: components.network.libp2p, serve, rejections: components.rejections, limits: init.inferLimits, onViolation: init.onViolation })
      await inferSvc.start()
      const { registerOpenAiRoutes } = await import('./openai.js')
      registerOpenAiRoutes(components.api, { serve, defaultModel: config.engine.defaultModel, knownModels: () => modelNames(config) })
      components.api.route('POST', '/serve', async (r) => {
        const body = await r.json<Record<string, unknown>>()
        if (body == null || typeof body !== 'object' || Array.isArray(body)) throw new ServingError('E_REQ_MALFORMED', 'body must be a JSON object')
        const { method, ...rest } = body
        if (method !== undefined && typeof method !== 'string') throw new ServingError('E_REQ_INVALID', 'method must be a method id')
        const { parseInferRequest } = await import('../net/infer.js')
        return { json: await serve({ ...parseInferRequest(rest), ...(method != null ? { method } : {}) }) }
      })
      components.api.route('POST', '/recommend', async (r) => {
        const { parseRecommendRequest } = await import('../net/recommend.js')
        const body = await r.json<Record<string, unknown>>()
        if (body == null || typeof body !== 'object' || Array.isArray(body)) throw new ServingError('E_REQ_MALFORMED', 'body must be a JSON object')
        return { json: await recommend(parseRecommendRequest(body)) }
      })
      components.api.statusContributors.set('serving', () => ({ ...st, bySource: { ...bySource }, recommend: recommendSvc.stats() }))
    },
    async stop () {
      stopped = true
      await inferSvc?.stop()
      await recommendSvc.stop()
      try { await chain } catch {}
      for (const s of sessions.values()) {
        try { await (await s.session).close() } catch {}
      }
      sessions.clear()
      if (components.engine == null && enginePromise != null) {
        try { await (await enginePromise).close() } catch {}
      }
    }
  }
  return service
}

