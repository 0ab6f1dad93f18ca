import type { Libp2p } from '@libp2p/interface'
import type { ControlApi } from '../contracts/api.js'
import type { OwnRecordsWriter } from '../contracts/records.js'
import type { Startable } from '../contracts/service.js'
import { loadMethods, knobRecord } from '../engine/methods.js'
import { modelNames } from '../engine/models.js'
import type { Engine, Method } from '../engine/types.js'
import type { MetaModel } from '../meta/selector.js'
import type { RecommendRequest, RecommendResponse } from '../net/recommend.js'
import type { RpcLimits, ViolationHook } from '../net/rpc/limits.js'
import type { Activity } from '../util/activity.js'
import type { Counters } from '../util/counters.js'
import { createRng } from '../util/random.js'
import { errorMessage } from '../util/errors.js'
import { log } from '../util/log.js'
import type { VoteService } from '../vote/service.js'
import { createMethodDecider, createRecommender } from './decision.js'
import { createServingEngine } from './engine.js'
import { createServingProtocols } from './protocols.js'
import { createBatchQueue } from './queue.js'
import { registerServingRoutes } from './routes.js'
import { createServePipeline } from './serve.js'
import { createServingMetrics } from './metrics.js'
import type { Registry } from 'prom-client'
import { createEngineSessions } from './sessions.js'
import { ServingError, type MetaSource, type ServeRequest, type ServeResult, type ServingConfig } from './types.js'
import type { OwnCapability } from '../engine/capability-probe.js'

export type { ServingConfig } from './types.js'

/**
 * Serving (issue #6): for each incoming batch of prompts the node computes the workload features
 * from the real tokens, picks the method (meta-model, a small exploration rate, the committee
 * while the node is cold for the task's class), runs it on the engine (sessions cached per model
 * and method), returns the outputs with the method and the realized metrics, and stores and
 * gossips the realized performance as a signed `source: serving` record through
 * `ownRecords`, between batches (recorder.ts) — which the next training uses and which scores the voters' reputation.
 *
 * The same service answers `/swarmtune/recommend/1.0.0` (src/net/recommend.ts), serves
 * `/swarmtune/infer/1.0.0` (src/net/infer.ts) and the OpenAI-compatible routes (./openai.ts).
 *
 * This file composes the parts: sessions.ts (engine sessions, model specs), decision.ts (method
 * choice, recommend answers), queue.ts (one batch at a time), serve.ts (one served batch),
 * recorder.ts (its record, written while no batch runs), protocols.ts and routes.ts (how peers and HTTP clients reach it).
 */

export interface ServingComponents {
  api: ControlApi
  network: { libp2p: Libp2p }
  rejections: Counters
  /** served batches' records go out in batches, between batches (src/serving/recorder.ts) */
  ownRecords: OwnRecordsWriter
  /** each batch marks itself busy here, so background benchmarks yield to it */
  activity: Activity
  /** the node's engine, shared with the bench service (default: a llama.cpp engine of its own) */
  engine?: () => Promise<Engine>
  /** the meta-model (src/meta/service.ts) */
  meta?: MetaSource
  /** the committee (src/vote/service.ts), asked while the node is cold for a task's class */
  votes?: VoteService
  /** the node's Prometheus registry (src/node/metrics.ts) */
  metrics?: Registry
  /** issue #16: this machine's measured capability (engine/capability-probe.ts), once probed */
  ownCapability?: () => OwnCapability | undefined
}

export interface ServingInit {
  config: ServingConfig
  explorationRate?: number
  /** sessions kept open (model × method), least recently used closed first */
  maxSessions?: number
  /** batches waiting for the engine before new ones are refused with E_OVERLOADED */
  maxQueue?: number
  recommendLimits?: Partial<RpcLimits>
  inferLimits?: Partial<RpcLimits>
  onViolation?: ViolationHook
  standing?: (peer: string) => boolean
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

export function createServingService (init: ServingInit, components: ServingComponents): ServingService {
  const { config } = init
  const catalog: Method[] = loadMethods()
  const meta = (): MetaModel | null => components.meta?.current() ?? null
  const votes = (): VoteService | undefined => components.votes
  const engine = createServingEngine(config, components.engine)
  const sessions = createEngineSessions({
    config,
    engine: engine.get,
    maxSessions: Math.max(1, init.maxSessions ?? 4),
    onModel: descriptor => { votes()?.index.addModel(descriptor) }
  })
  const decide = createMethodDecider({
    explorationRate: init.explorationRate ?? config.meta.explorationRate,
    pricePerHour: config.hardware.pricePerHour,
    rng: createRng(init.seed ?? (Date.now() >>> 0)),
    methodKnobs: Object.fromEntries(catalog.map(m => [m.id, knobRecord(m.knobs)])),
    meta,
    votes,
    ownCapability: components.ownCapability
  })
  const queue = createBatchQueue(init.maxQueue ?? 64)
  const pipeline = createServePipeline({
    config, record: init.record !== false, catalog, engine, sessions, decide, queue, activity: components.activity, ownRecords: components.ownRecords,
    metrics: components.metrics != null ? createServingMetrics(components.metrics, () => queue.depth()) : undefined,
    onPrediction: (predicted, realized) => components.meta?.observeServed?.(predicted, realized) ?? null
  })
  // one array for every request (the catalog is loaded once): recommend answers flag what is not in it
  const catalogIds = Object.freeze(catalog.map(x => x.id)) as string[]
  const recommender = createRecommender({
    decide, catalogIds: () => catalogIds, meta, votes, modelSpec: sessions.modelSpec, tokenizerFor: sessions.tokenizerFor, hardwareForAdvice: engine.hardwareForAdvice
  })
  let stopped = false
  // the default model's files are prepared at start, not by the first request (which must answer in time)
  const prepared: Record<string, 'preparing' | 'ready' | 'failed'> = {}
  function prepare (name: string): void {
    if (prepared[name] != null) return
    prepared[name] = 'preparing'
    const logger = log('serving')
    sessions.modelSpec(name).then(() => { prepared[name] = 'ready'; logger('model %s ready', name) }, (err: unknown) => {
      prepared[name] = 'failed'
      // not fatal: requests for this model answer the error themselves
      logger.error('preparing model %s failed: %s', name, errorMessage(err))
    })
  }

  async function serve (req: ServeRequest): Promise<ServeResult> {
    if (stopped) throw new ServingError('E_UNAVAILABLE', 'node stopping')
    return await pipeline.serve(req)
  }
  const recommend = recommender.recommend

  const protocols = createServingProtocols({
    network: components.network, rejections: components.rejections, serve, recommend, recommendLimits: init.recommendLimits, inferLimits: init.inferLimits, onViolation: init.onViolation, standing: init.standing
  })
  // the status counters, in the order /status has always listed them
  const counts = (): Record<string, number> => ({ ...pipeline.counts(), ...recommender.counts(), queued: queue.depth() })

  return {
    serve,
    recommend,
    engine: engine.get,
    stats: () => ({ ...counts(), bySource: pipeline.bySource(), sessions: sessions.size(), recommend: protocols.recommendStats(), infer: protocols.inferStats() }),
    async start () {
      stopped = false
      await protocols.start()
      registerServingRoutes(components.api, { serve, recommend, defaultModel: config.engine.defaultModel, knownModels: () => modelNames(config), openai: config.openai, recentChoices: pipeline.recentChoices })
      components.api.statusContributors.set('serving', () => ({ ...counts(), bySource: pipeline.bySource(), recommend: protocols.recommendStats(), infer: protocols.inferStats(), models: { ...prepared } }))
      // what the dashboard shows as "this node": configured, not loaded (reading it must not start the engine)
      components.api.statusContributors.set('engine', () => {
        const hw = engine.hardwareForAdvice()
        return { gpu: config.engine.gpu, threads: config.engine.threads, defaultModel: config.engine.defaultModel, models: modelNames(config), hardware: { id: hw.id, cpuModel: hw.cpuModel, cores: hw.cores, ramMiB: hw.ramMiB, backend: hw.backend, gpus: hw.gpus } }
      })
      engine.hardwareForAdvice()
      if (config.engine.prepareOnStart !== false) prepare(config.engine.defaultModel)
    },
    async stop () {
      stopped = true
      await protocols.stop()
      await queue.idle()
      await pipeline.flushRecords()
      await sessions.closeAll()
      await engine.close()
    }
  }
}
