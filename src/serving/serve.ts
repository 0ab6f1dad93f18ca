import type { OwnRecordsWriter } from '../contracts/records.js'
import { knobRecord } from '../engine/methods.js'
import type { BatchOutcome, Engine, EngineSession, InferenceRequest, Method, ModelSpec } from '../engine/types.js'
import { workloadFeatures } from '../meta/workload-features.js'
import { absLogError } from '../meta/served-error.js'
import type { HardwareFingerprint, ModelDescriptor, ResultMetrics, UnsignedBody } from '../records/types.js'
import type { Activity } from '../util/activity.js'
import { errorCode, errorMessage } from '../util/errors.js'
import { log } from '../util/log.js'
import { percentile } from '../util/stats.js'
import { classBase, classKeyOf } from '../vote/task-class.js'
import type { Objective } from '../contracts/objective.js'
import type { DecideFn } from './decision.js'
import type { ServingEngine } from './engine.js'
import type { BatchQueue } from './queue.js'
import type { EngineSessions } from './sessions.js'
import { DEFAULT_MAX_TOKENS, ServingError, type ServeFn, type ServeOutput, type ServeRequest, type ServeResult, type ServingConfig } from './types.js'
import type { ServingMetrics } from './metrics.js'
import { createServedRecorder } from './recorder.js'
import { checkPromptChars, tokenizePrompts } from './tokenize.js'
import { createServedLog, type ServedLog } from './served-log.js'

/** How long serving trusts the engine's list of methods that run a model (a rewritten model file is seen after this). */
export const SUPPORTED_TTL_MS = 5000

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
    peakRssMiB: Math.round(process.memoryUsage.rss() / 2 ** 20), // rss() alone: no heap walk per batch
    spread: 0
  }
}

/** Name for the workload of a served batch (record.workload.name). */
export function servingWorkloadName (features: Record<string, number>): string {
  return `serving-n${features.requests ?? 0}-p${Math.round(features.promptTokensMean ?? 0)}-o${Math.round(features.outputTokensMean ?? 0)}`
}

/** The output cap of each prompt of a batch; refuses an empty batch or a bad cap. */
export function outputCaps (req: ServeRequest): number[] {
  if (!Array.isArray(req.prompts) || req.prompts.length === 0) throw new ServingError('E_REQ_INVALID', 'prompts must be a non-empty array')
  const caps = Array.isArray(req.maxTokens) ? req.maxTokens : req.prompts.map(() => (req.maxTokens as number | undefined) ?? DEFAULT_MAX_TOKENS)
  if (caps.length !== req.prompts.length || caps.some(c => !Number.isInteger(c) || c < 1)) throw new ServingError('E_REQ_INVALID', 'maxTokens must be a positive integer (or one per prompt)')
  return caps
}

/** The `source: serving` record of a served batch. */
export function servedRecordBody (hw: HardwareFingerprint, engine: Engine, session: EngineSession, method: Method, features: Record<string, number>, metrics: ResultMetrics): UnsignedBody {
  return {
    source: 'serving',
    hardware: hw,
    engine: engine.info,
    model: session.model,
    workload: { family: 'serving', name: servingWorkloadName(features), features },
    method: { id: method.id, knobs: knobRecord(method.knobs) },
    result: metrics
  }
}

function outputsOf (outcome: BatchOutcome): ServeOutput[] {
  return outcome.requests.map(r => ({ text: r.text, promptTokens: r.promptTokens, outputTokens: r.outputTokens, ttftMs: Math.round(r.ttftMs * 1000) / 1000, latencyMs: Math.round(r.latencyMs * 1000) / 1000 }))
}

/** What the method is chosen for; `taskClass`: the class key when the method is forced. */
interface ServeTask { model: ModelDescriptor, hw: HardwareFingerprint, features: Record<string, number>, objective: Objective, taskClass: string }

interface MethodChoice { method: Method, source: string, explored: boolean, taskClass: string, predictedWallMs: number | null }

export interface ServePipelineInit {
  config: Pick<ServingConfig, 'engine'>
  /** record the served batches */
  record: boolean
  catalog: Method[]
  engine: ServingEngine
  sessions: EngineSessions
  decide: DecideFn
  queue: BatchQueue
  /** each batch marks itself busy here, so background benchmarks yield to it */
  activity: Activity
  ownRecords: OwnRecordsWriter
  /** Prometheus families (src/serving/metrics.ts), when the node exports metrics */
  metrics?: ServingMetrics
  /** realized vs predicted of each decided batch (the meta service tracks the error) */
  onPrediction?: (predictedWallMs: number | null, realizedWallMs: number) => number | null
}

export interface ServePipeline {
  serve: ServeFn
  counts: () => { served: number, failed: number, recorded: number, recordErrors: number, explored: number }
  /** served batches by why their method was chosen */
  bySource: () => Record<string, number>
  /** store the served batches' records still waiting for an idle moment */
  flushRecords: () => Promise<void>
  /** the last chosen (not forced) methods, predicted vs realized (GET /serving/choices) */
  recentChoices: ServedLog['recent']
}

/**
 * One served batch: features from the model's own tokens, the method (forced or decided), the
 * run on the engine, and the realized performance stored and gossiped as a serving record.
 */
/** A decided batch's realized vs predicted: the served-choices log, the meta service's error, the metric. */
function realizedVsPredicted (init: ServePipelineInit, choices: ServedLog, model: string, choice: MethodChoice, metrics: ResultMetrics): void {
  if (choice.source !== 'forced') {
    choices.add({ at: Date.now(), model, method: choice.method.id, source: choice.source, taskClass: choice.taskClass, predictedWallMs: choice.predictedWallMs, realizedWallMs: metrics.wallMs, tokens: metrics.promptTokens + metrics.outputTokens })
  }
  if (choice.predictedWallMs == null) return
  init.onPrediction?.(choice.predictedWallMs, metrics.wallMs)
  const err = absLogError(choice.predictedWallMs, metrics.wallMs)
  if (err != null) init.metrics?.predictionAbsLogError.observe(err)
}

/** A served batch into the Prometheus families. */
function observeBatch (m: ServingMetrics | undefined, r: ServeResult): void {
  if (m == null) return
  m.batches.inc({ outcome: 'ok' })
  m.methodChosen.inc({ method: r.method, source: r.source })
  m.promptTokens.inc(r.metrics.promptTokens)
  m.outputTokens.inc(r.metrics.outputTokens)
  m.outputTokensPerSecond.observe(r.metrics.outputTokensPerSecond)
  for (const o of r.outputs) m.ttftSeconds.observe(o.ttftMs / 1000)
}

/**
 * Which catalog methods the engine runs for a model: asked once per model spec and engine for
 * SUPPORTED_TTL_MS, not for every method of every batch (each answer stats the model files).
 */
function supportedMethodsOf (catalog: readonly Method[]): (e: Engine, spec: ModelSpec) => Method[] {
  const cache = new WeakMap<ModelSpec, { engine: Engine, at: number, methods: Method[] }>()
  return (e, spec) => {
    const hit = cache.get(spec)
    const now = performance.now()
    if (hit != null && hit.engine === e && now - hit.at < SUPPORTED_TTL_MS) return hit.methods
    const methods = catalog.filter(m => e.supports(spec, m).ok)
    cache.set(spec, { engine: e, at: now, methods })
    return methods
  }
}

export function createServePipeline (init: ServePipelineInit): ServePipeline {
  const { catalog, engine, sessions } = init
  const supportedMethods = supportedMethodsOf(catalog)
  const logger = log('serving')
  const counts = { served: 0, failed: 0, recorded: 0, recordErrors: 0, explored: 0 }
  const bySource: Record<string, number> = {}
  const choices = createServedLog()

  async function serve (req: ServeRequest): Promise<ServeResult> {
    checkPromptChars(req.prompts)
    const t0 = performance.now()
    const name = req.model ?? init.config.engine.defaultModel
    const caps = outputCaps(req)
    try {
      const result = await init.queue.run(async () => await runBatch(req, name, caps, t0))
      observeBatch(init.metrics, result)
      return result
    } catch (err) {
      init.metrics?.batches.inc({ outcome: errorCode(err) === 'E_OVERLOADED' ? 'overloaded' : 'error' })
      throw err
    }
  }

  async function runBatch (req: ServeRequest, name: string, caps: number[], t0: number): Promise<ServeResult> {
    req.signal?.throwIfAborted()
    const { spec, descriptor } = await sessions.modelSpec(name)
    const e = await engine.get()
    const hw = await engine.hardware()
    const supported = supportedMethods(e, spec)
    if (supported.length === 0) throw new ServingError('E_NO_METHODS', `no method of the catalog runs model ${name} here`)
    // tokens come from the model's own tokenizer: open (or reuse) a baseline session for it
    const tokSession = await sessions.open(name, spec, supported.find(m => m.id === 'baseline') ?? supported[0])
    // in slices with yields, refused early when over the context (src/serving/tokenize.ts)
    const tTok = performance.now()
    const tokens = await tokenizePrompts(p => tokSession.tokenize(p), req.prompts, descriptor.ctx > 0 ? descriptor.ctx : Infinity)
    const tokenizeMs = performance.now() - tTok
    const features = workloadFeatures({ prompts: tokens, maxTokens: caps, concurrency: req.prompts.length })
    const objective = req.objective ?? 'throughput'
    const taskClass = classKeyOf(classBase(descriptor.id, features, hw.backend), objective)
    const tSel = performance.now()
    const choice = chooseMethod(req, supported, { model: descriptor, hw, features, objective, taskClass })
    const selectMs = performance.now() - tSel
    const s = await sessions.open(name, spec, choice.method)
    // the same model file as the tokenizing session (a method may load another, e.g. Q8_0): the
    // engine runs these tokens instead of tokenizing every prompt a second time
    const sameTokens = s.model.id === tokSession.model.id
    const requests: InferenceRequest[] = req.prompts.map((prompt, i) => ({ prompt, maxTokens: caps[i], ...(sameTokens ? { tokens: tokens[i] } : {}) }))
    const tEng = performance.now()
    const outcome = await runOnEngine(s, requests, req.signal)
    const engineMs = performance.now() - tEng
    const metrics = metricsOf(outcome)
    counts.served++
    if (choice.explored) counts.explored++
    bySource[choice.source] = (bySource[choice.source] ?? 0) + 1
    if (init.record) recordBatch(servedRecordBody(hw, e, s, choice.method, features, metrics))
    // bookkeeping (served-choices log, prediction error) after the answer is on its way
    setImmediate(() => { realizedVsPredicted(init, choices, name, choice, metrics) })
    return {
      model: name,
      method: choice.method.id,
      source: choice.source,
      explored: choice.explored,
      taskClass: choice.taskClass,
      outputs: outputsOf(outcome),
      metrics,
      features,
      timings: { tokenizeMs, selectMs, engineMs, totalMs: performance.now() - t0 }
    }
  }


  function chooseMethod (req: ServeRequest, supported: Method[], task: ServeTask): MethodChoice {
    if (req.method != null) {
      const m = supported.find(x => x.id === req.method)
      if (m == null) throw new ServingError('E_UNKNOWN_METHOD', `method ${req.method} is not in the catalog or does not run here`)
      return { method: m, source: 'forced', explored: false, taskClass: task.taskClass, predictedWallMs: null }
    }
    const d = init.decide(task.model, task.model.id, task.hw, task.features, { objective: task.objective, budget: req.budget, sloTtftMs: req.sloTtftMs, methods: supported.map(m => m.id), explore: true })
    const method = supported.find(m => m.id === d.choice) ?? supported[0]
    const predictedWallMs = d.selection.ranking.find(r => r.method === method.id)?.predicted.wallMs ?? null
    return { method, source: d.explored ? 'explore' : d.source, explored: d.explored, taskClass: d.classKey, predictedWallMs }
  }

  async function runOnEngine (s: EngineSession, requests: InferenceRequest[], signal: AbortSignal | undefined): Promise<BatchOutcome> {
    // pauses the background benchmark sweep while a served batch runs
    const done = init.activity.begin()
    try {
      return await s.runBatch(requests, { signal })
    } catch (err) {
      counts.failed++
      throw err
    } finally {
      done()
    }
  }

  // signed, stored and gossiped when no batch runs, several at once (issue #19 item 4)
  const recorder = createServedRecorder({
    ownRecords: init.ownRecords,
    activity: init.activity,
    onWritten: n => { counts.recorded += n },
    onError: (err, n) => {
      counts.recordErrors += n
      logger.error('recording %d served batches failed: %s', n, errorMessage(err))
    }
  })
  function recordBatch (body: UnsignedBody): void {
    recorder.add(body)
  }

  return { serve, counts: () => ({ ...counts }), bySource: () => ({ ...bySource }), flushRecords: recorder.flush, recentChoices: choices.recent }
}
