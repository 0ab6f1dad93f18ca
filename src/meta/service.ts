import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import type { RecordStore } from '../store/types.js'
import type { ControlApi } from '../contracts/api.js'
import type { RecordEvents } from '../contracts/records.js'
import type { Startable } from '../contracts/service.js'
import { errorCode, errorMessage } from '../util/errors.js'
import { log } from '../util/log.js'
import { packageRoot } from '../util/paths.js'
import { createRng } from '../util/random.js'
import type { HistoryBody } from './dataset.js'
import { FEATURE_SCHEMA_VERSION } from './features.js'
import { HISTORY_READING_VERSION } from './legacy-records.js'
import { load, MetaError, MIN_CELLS, selectMethod, type MetaModel, type SelectOptions, type SelectTask, type Selection } from './selector.js'
import type { TrainReply, TrainRequest } from './train-worker.js'
import type { Registry } from 'prom-client'
import { createMetaMetrics, registerEvalGauge } from './metrics.js'
import { createServedErrorTracker } from './served-error.js'
import { createEarlyTrainingState, shouldTrainEarly } from './early-training.js'
import type { RecordEventDetail } from '../contracts/records.js'
import { buildDataset } from './dataset.js'
import { createLearningCurve, defaultRow, type LearningCurve, type LearningCurveState } from './learning-curve.js'
import { measuredFor, type OwnCapability } from '../engine/capability-probe.js'
import { createLiveEvidence, type LiveEvidence } from './live-evidence.js'

/** Default of `meta.liveEvidenceMs`. */
export const LIVE_EVIDENCE_MS = 3000

/**
 * The meta-model inside the daemon: loads the persisted snapshot at start, retrains in a worker
 * thread when `meta.retrainEveryRecords` new records arrived or every `meta.retrainIntervalMs`
 * (if anything arrived), persists the snapshot under `meta:snapshot`, and answers `select()`
 * from the current model (cold-start rule before the first one).
 */
export const SNAPSHOT_KEY = 'meta:snapshot'

/** The `meta` section of the config. */
export interface MetaConfig {
  backend: 'ml-random-forest' | 'histogram'
  trees: number
  retrainEveryRecords: number
  retrainIntervalMs: number
  explorationRate: number
  /**
   * issue #17: train the first snapshots early, on the second author or after this many records
   * (then doubling) while the model is young; 0 = only the periodic thresholds above
   */
  firstTrainRecords: number
  /** issue #17/#20: least ms between two in-daemon evaluations of the selectors (learning-curve.ts); 0 = off */
  evalIntervalMs: number
  /**
   * issue #17 item 6: least ms between two rebuilds of a machine's fixed rule from the store's
   * current benchmark records (live-evidence.ts); 0 = the snapshot's rule only. Absent: 3000.
   */
  liveEvidenceMs?: number
}

export interface MetaServiceInit {
  config: { meta: MetaConfig, hardware: { pricePerHour: number } }
}

export interface MetaServiceComponents {
  store: RecordStore
  events: RecordEvents
  api?: ControlApi
  /** issue #7: per-author training weights (src/trust), when the node runs the trust service */
  trust?: { weights: () => Record<string, number> }
  /** the node's Prometheus registry (src/node/metrics.ts) */
  metrics?: Registry
  /** issue #16: this machine's measured capability (engine/capability-probe.ts), once probed: its own records' rows use it where the spec table knows nothing */
  ownCapability?: () => OwnCapability | undefined
}

export interface SnapshotStatus { version: number, rows: number, trainedAt: number, hash: string, backend: string }

export interface PersistedSnapshot {
  version: number
  trainingSetHash: string
  trainedAt: number
  rows: number
  backend: string
  model: unknown
  /** legacy-records.ts HISTORY_READING_VERSION the model was trained under (absent: before it existed) */
  reading?: number
}

export interface MetaServiceStatus {
  snapshot: SnapshotStatus | null
  training: boolean
  pendingRecords: number
  lastError?: { code: string, message: string }
  /** mean |ln predicted − ln realized| throughput over the last 100 served tasks; null before any */
  servedPredictionError: number | null
  /** served tasks in that window */
  servedPredictions: number
  /** issue #17 item 6: the live-evidence views (machine, benchmark records read, when); absent when meta.liveEvidenceMs is 0 */
  liveEvidence?: Array<{ hardwareId: string, records: number, builtAt: number }>
}

export interface MetaService extends Startable {
  current: () => MetaModel | null
  select: (task: SelectTask, opts?: SelectOptions) => Selection
  /** retrain now (resolves when the new snapshot is live; null when there was nothing to train on) */
  retrain: () => Promise<MetaModel | null>
  status: () => MetaServiceStatus
  /** a served task's predicted and realized wall time (same tokens: the throughput error); returns |ln error| or null */
  observeServed: (predictedWallMs: number | null | undefined, realizedWallMs: number) => number | null
  /** the latest in-daemon evaluation and the learning curve (GET /meta/eval) */
  evalState: () => LearningCurveState
}

function workerPath (): string {
  const here = fileURLToPath(new URL('./train-worker.js', import.meta.url))
  // under vitest this module runs from src/ (TypeScript): use the compiled worker
  return existsSync(here) ? here : join(packageRoot(), 'dist', 'src', 'meta', 'train-worker.js')
}

/**
 * Runs one training at a time in a worker thread (the forest blocks for seconds); `terminate()`
 * stops the one in flight, which then rejects.
 */
class TrainWorker {
  private current: Worker | undefined

  async run (req: TrainRequest): Promise<unknown> {
    return await new Promise((resolve, reject) => {
      const w = new Worker(workerPath())
      this.current = w
      let settled = false
      w.once('message', (reply: TrainReply) => {
        settled = true
        if (reply.ok) resolve(reply.snapshot)
        else reject(new MetaError(reply.code, reply.message))
        void w.terminate()
      })
      w.once('error', err => { if (!settled) { settled = true; reject(err) } })
      w.once('exit', code => {
        if (this.current === w) this.current = undefined
        if (!settled) { settled = true; reject(new MetaError('E_TRAIN_WORKER', `training worker exited with code ${code}`)) }
      })
      w.postMessage(req)
    })
  }

  async terminate (): Promise<void> {
    await this.current?.terminate()
  }
}

/** The training history; this machine's own rows get its measured capability, in memory only (the stored records are unchanged). */
async function historyBodies (store: RecordStore, own: OwnCapability | undefined): Promise<{ bodies: HistoryBody[], authors: number }> {
  const bodies: HistoryBody[] = []
  const authors = new Set<string>()
  for await (const r of store.all()) {
    const measured = measuredFor(r.body.hardware, own)
    bodies.push(measured != null ? { ...r.body, hardware: { ...r.body.hardware, measured } } : r.body)
    authors.add(r.body.author)
  }
  return { bodies, authors: authors.size }
}

function trainRequest (meta: MetaConfig, bodies: HistoryBody[], authorWeights: Record<string, number> | undefined): TrainRequest {
  return { bodies, opts: { backend: meta.backend, nTrees: meta.trees, seed: 1, ...(authorWeights != null ? { authorWeights } : {}) } }
}

/** The persisted snapshot, if any, as a live model, or the (coded) reason it cannot be used. */
async function restoreSnapshot (store: RecordStore): Promise<{ model: MetaModel } | { error?: { code: string, message: string } }> {
  const saved = await store.getMeta<PersistedSnapshot>(SNAPSHOT_KEY)
  if (saved == null) return {}
  try {
    return { model: await loadSnapshot(saved) }
  } catch (err) {
    return { error: { code: errorCode(err), message: errorMessage(err) } }
  }
}

/** The stored snapshot as a live model; throws (coded) when it is stale or corrupt. */
async function loadSnapshot (saved: PersistedSnapshot): Promise<MetaModel> {
  if (saved.version !== FEATURE_SCHEMA_VERSION) throw new MetaError('E_SNAPSHOT_SCHEMA', `stored snapshot has feature schema ${saved.version}`)
  const model = await load(saved.model)
  // trained before older records were read as they are now (e.g. old llama-bench imports): retrain
  if ((saved.reading ?? 0) !== HISTORY_READING_VERSION) throw new MetaError('E_SNAPSHOT_READING', `stored snapshot was trained under history reading ${saved.reading ?? 0}, this node reads ${HISTORY_READING_VERSION}: retrain`)
  return model
}

function snapshotStatus (model: MetaModel | null): SnapshotStatus | null {
  return model == null ? null : { version: model.schemaVersion, rows: model.rows, trainedAt: model.trainedAt, hash: model.trainingSetHash, backend: model.backend }
}

function toPersisted (model: MetaModel, snapshot: unknown): PersistedSnapshot {
  return { version: model.schemaVersion, trainingSetHash: model.trainingSetHash, trainedAt: model.trainedAt, rows: model.rows, backend: model.backend, model: snapshot, reading: HISTORY_READING_VERSION }
}

/** GET /status contributions, POST /meta/select and GET /meta/eval. */
function registerRoutes (api: ControlApi, config: MetaConfig, rng: () => number, service: Pick<MetaService, 'status' | 'select' | 'evalState'>): void {
  api.route('GET', '/meta/eval', () => ({ json: service.evalState() }))
  api.statusContributors.set('snapshot', () => service.status().snapshot)
  api.statusContributors.set('meta', () => { const { snapshot: _s, ...rest } = service.status(); return rest })
  api.route('POST', '/meta/select', async (req) => {
    const body = await req.json<{ task: SelectTask } & SelectOptions>()
    const { task, ...opts } = body
    if (task == null) throw new MetaError('E_BAD_TASK', 'body must be { task, objective?, budget?, sloTtftMs? }')
    const explore = config.explorationRate > 0 ? { rate: config.explorationRate, rng } : undefined
    return { json: service.select(task, { ...opts, explore: (opts as { explore?: boolean }).explore === true ? explore : undefined }) }
  })
}

/** issue #17: whether a record event should train a young model now (early-training.ts). */
function earlyTrigger (firstRecords: number, model: () => MetaModel | null): (ev: Event) => boolean {
  const early = createEarlyTrainingState(firstRecords)
  return ev => {
    const m = model()
    // young: no model, or one too small for the selector to trust (it answers by the cold-start rule)
    const young = m == null || m.rows < 4 * MIN_CELLS
    const author = (ev as CustomEvent<RecordEventDetail>).detail?.record?.body?.author ?? ''
    return shouldTrainEarly(early, author, young, firstRecords)
  }
}

/** The in-daemon evaluation over this node's history (learning-curve.ts), off the training path. */
function learningCurve (meta: MetaConfig, store: RecordStore, logger: ReturnType<typeof log>, registry: Registry | undefined, own: () => OwnCapability | undefined): LearningCurve {
  const curve = createLearningCurve({ intervalMs: meta.evalIntervalMs ?? 0, nTrees: Math.min(meta.trees, 30) }, {
    store,
    dataset: bodies => buildDataset(bodies),
    // the rows training reads (own capability attached), so the score is of the model the node trains
    history: async () => await historyBodies(store, own()),
    onPoint: p => { logger('evaluated on %d records (%d tasks, %s split)', p.records, p.tasks, p.split) },
    onError: e => { logger.error('evaluation failed: %s', e.message) }
  })
  if (registry != null) registerEvalGauge(registry, () => defaultRow(curve.state().curve.at(-1)?.rows ?? [])?.regret ?? null)
  return curve
}

/** The model the node answers with: the snapshot plus the live evidence (one object per snapshot). */
function answeringModel (meta: MetaConfig, store: RecordStore, events: RecordEvents): { set: (m: MetaModel | null) => void, get: () => MetaModel | null, live?: LiveEvidence } {
  const ms = meta.liveEvidenceMs ?? LIVE_EVIDENCE_MS
  const live = ms > 0 ? createLiveEvidence({ refreshMs: ms }, { store, events }) : undefined
  let answering: MetaModel | null = null
  return {
    set: m => { answering = m == null || live == null ? m : { ...m, live } },
    get: () => answering,
    ...(live != null ? { live } : {})
  }
}

export function createMetaService (init: MetaServiceInit, components: MetaServiceComponents): MetaService {
  const { config } = init
  const { store, events, api } = components
  const logger = log('meta')
  const rng = createRng(Date.now() >>> 0)
  const trainer = new TrainWorker()
  let model: MetaModel | null = null
  const answering = answeringModel(config.meta, store, events)
  const setModel = (m: MetaModel | null): void => { model = m; answering.set(m) }
  let pending = 0
  let training: Promise<MetaModel | null> | null = null
  let again = false
  let timer: NodeJS.Timeout | undefined
  let stopped = true
  let lastError: { code: string, message: string } | undefined
  const metrics = components.metrics != null ? createMetaMetrics(components.metrics, () => model?.trainedAt ?? null) : undefined
  const served = createServedErrorTracker()
  const curve = learningCurve(config.meta, store, logger, components.metrics, () => components.ownCapability?.())

  const trainEarly = earlyTrigger(config.meta.firstTrainRecords, () => model)
  const onRecord = (ev: Event): void => {
    pending++
    if (trainEarly(ev) || pending >= config.meta.retrainEveryRecords) void retrainSafe()
  }

  async function doRetrain (): Promise<MetaModel | null> {
    const arrived = pending
    const { bodies } = await historyBodies(store, components.ownCapability?.())
    if (bodies.length === 0) {
      pending = Math.max(0, pending - arrived)
      metrics?.trainings.inc({ outcome: 'empty' })
      return null
    }
    const endTimer = metrics?.trainingSeconds.startTimer()
    const snapshot = await trainer.run(trainRequest(config.meta, bodies, components.trust?.weights()))
    const next = await load(snapshot)
    endTimer?.()
    metrics?.trainings.inc({ outcome: 'ok' })
    metrics?.trainingRows.set(next.rows)
    if (stopped) return next
    await store.putMeta(SNAPSHOT_KEY, toPersisted(next, snapshot))
    setModel(next)
    pending = Math.max(0, pending - arrived)
    lastError = undefined
    logger('retrained on %d records: %d rows, hash %s', bodies.length, next.rows, next.trainingSetHash)
    curve.trained()
    return next
  }

  async function retrain (): Promise<MetaModel | null> {
    if (training != null) {
      again = true
      return await training
    }
    training = doRetrain().finally(() => { training = null })
    try {
      return await training
    } finally {
      if (again && !stopped) {
        again = false
        void retrainSafe()
      }
    }
  }

  async function retrainSafe (): Promise<void> {
    try {
      await retrain()
    } catch (err) {
      lastError = { code: errorCode(err), message: errorMessage(err) }
      metrics?.trainings.inc({ outcome: 'error' })
      logger.error('retraining failed: %s', lastError.message)
    }
  }

  const status = (): MetaServiceStatus => ({ snapshot: snapshotStatus(model), training: training != null, pendingRecords: pending, ...(lastError != null ? { lastError } : {}), ...served.status(), ...(answering.live != null ? { liveEvidence: answering.live.status() } : {}) })

  function select (task: SelectTask, opts: SelectOptions = {}): Selection {
    return selectMethod(answering.get(), task, { pricePerHour: config.hardware.pricePerHour, ...opts })
  }

  return {
    async start () {
      stopped = false
      await curve.load()
      const restored = await restoreSnapshot(store)
      answering.live?.start()
      if ('model' in restored) {
        setModel(restored.model)
      } else if (restored.error != null) {
        // a stale or corrupt snapshot is not fatal: retrain from the history instead
        lastError = restored.error
        logger('ignoring stored snapshot: %s', lastError.message)
        pending = Math.max(pending, config.meta.retrainEveryRecords)
      }
      events.addEventListener('record', onRecord)
      timer = setInterval(() => {
        if (pending > 0 || model == null) void retrainSafe()
      }, config.meta.retrainIntervalMs)
      timer.unref()
      if (api != null) registerRoutes(api, config.meta, rng, { status, select, evalState: curve.state })
      if (model == null || pending > 0) void retrainSafe()
    },
    async stop () {
      stopped = true
      curve.stop()
      answering.live?.stop()
      events.removeEventListener('record', onRecord)
      if (timer != null) clearInterval(timer)
      await trainer.terminate()
      try { await training } catch {}
    },
    current: answering.get,
    select,
    retrain,
    status,
    observeServed: (predicted, realized) => served.observe(predicted, realized),
    evalState: curve.state
  }
}
