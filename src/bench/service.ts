import type { ServerResponse } from 'node:http'
import { statSync } from 'node:fs'
import { cpus } from 'node:os'
import { join } from 'node:path'
import { EMBEDDED_MODELS, embeddedFileName } from '../engine/models.js'
import type { Engine } from '../engine/types.js'
import type { PeerId } from '@libp2p/interface'
import { ApiError, type ApiRequest, type ControlApi } from '../contracts/api.js'
import type { OwnRecordWriter } from '../contracts/records.js'
import type { Startable } from '../contracts/service.js'
import type { RecordStore } from '../store/types.js'
import { newestRecords } from '../store/query.js'
import type { ModelDescriptor } from '../records/types.js'
import type { Activity } from '../util/activity.js'
import type { HostCoordinator } from '../util/host-lock.js'
import type { Registry } from 'prom-client'
import { createBenchMetrics } from './metrics.js'
import { errorCode, errorMessage } from '../util/errors.js'
import { log } from '../util/log.js'
import { createBackgroundSweep, cellKey, type BackgroundSweep } from './background.js'
import type { FeatureTask } from '../meta/features.js'
import { predictTask, type MetaModel } from '../meta/selector.js'
import { knobRecord } from '../engine/methods.js'
import { measuredCellOf, needsQuickFirstPass, tieBreakOf, type CellPrediction, type MeasuredCell } from './schedule.js'
import { logicalModelId } from '../meta/dataset.js'
import { checkSelection, llamaEngineFactory, prepareBench, summarizeCell, type BenchConfig, type BenchSelection, type BenchSummary } from './prepare.js'
import { runBenchmark } from './runner.js'
import { standardWorkloads } from './workloads.js'

/**
 * The daemon's bench service:
 * - `POST /bench` with a JSON BenchSelection runs a benchmark in the daemon, which signs each
 *   result with its own key (source: benchmark) through ownRecord(), stores and gossips it.
 *   The reply streams NDJSON, one event per line, so a run of many minutes never hits an HTTP
 *   timeout and the CLI can show progress:
 *     {"event":"progress", phase, method, workload, done, total, message?}
 *     {"event":"result", ...BenchSummary}            (one per cell, with the record id)
 *     {"event":"done", "results":[BenchSummary...]}  or  {"event":"error", code, message}
 *   One benchmark at a time (409 E_BENCH_BUSY otherwise). A client that disconnects cancels it.
 * - `DELETE /bench` stops the running benchmark as Ctrl-C does the standalone one: the cell under
 *   way ends, what was measured stays stored, and the stream still ends with its `done` event
 *   (so `bench --api` can print the summary). `{ cancelled: false }` when none runs.
 * - the background sweep (config.bench.background), paused whenever inference or a foreground
 *   benchmark runs.
 * The daemon wires it in src/node/services.ts.
 */
export interface BenchServiceInit {
  config: BenchConfig & { trust?: { spotChecks?: boolean } }
}

export interface BenchComponents {
  peerId: PeerId
  store: RecordStore
  api: ControlApi
  ownRecord: OwnRecordWriter
  /** issue #17 item 6: the host's other daemons (util/host-lock.ts); the sweep takes turns with them */
  host?: Pick<HostCoordinator, 'tryBench' | 'othersBusy'>
  /** busy while inference or a foreground benchmark runs; the background sweep yields to it */
  activity: Activity
  /** the node's engine, shared with serving (default: a llama.cpp engine of this service's own) */
  engine?: () => Promise<Engine>
  /** the node's Prometheus registry (src/node/metrics.ts) */
  metrics?: Registry
  /** issue #7 spot checks (src/trust): other authors' claims to re-measure first */
  trust?: { spotChecks: (modelId: string, hardwareId: string) => Array<{ method: string, workload: string }> }
  /** the node's meta-model: the sweep measures where its predictions could change a choice */
  meta?: { current: () => MetaModel | null }
}

export interface BenchService extends Startable {
  /** the sweep, when config.bench.background.enabled */
  readonly sweep?: BackgroundSweep
}

export function createBenchService (init: BenchServiceInit, c: BenchComponents): BenchService {
  const logger = log('bench:service')
  const { config } = init
  const activity = c.activity
  /** an engine this service made itself (closed on stop); a shared one belongs to the node */
  let engine: Promise<Engine> | undefined
  let foreground: AbortController | undefined
  let stopping = false

  const getEngine = async (): Promise<Engine> => {
    if (c.engine != null) return await c.engine()
    engine ??= llamaEngineFactory(config)
    engine.catch(() => { engine = undefined })
    return await engine
  }

  async function handleBench (req: ApiRequest, res: ServerResponse): Promise<undefined> {
    if (stopping) throw new ApiError(503, 'E_STOPPING', 'the node is stopping')
    if (foreground != null) throw new ApiError(409, 'E_BENCH_BUSY', 'a benchmark is already running on this node')
    const raw = await req.json<BenchSelection>()
    if (raw == null || typeof raw !== 'object' || Array.isArray(raw)) throw new ApiError(400, 'E_USAGE', 'body must be a JSON object')
    const sel: BenchSelection = raw
    try {
      checkSelection(sel)
    } catch (err) {
      throw new ApiError(400, errorCode(err), errorMessage(err))
    }
    const ac = new AbortController()
    foreground = ac
    const end = activity.begin()
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-cache' })
    const write = (event: Record<string, unknown>): void => {
      if (!res.writableEnded && !res.destroyed) res.write(JSON.stringify(event) + '\n')
    }
    res.on('close', () => { if (!res.writableFinished) ac.abort() })
    const summaries: BenchSummary[] = []
    try {
      const p = await prepareBench(config, sel)
      const eng = await getEngine()
      await runBenchmark({
        engine: eng,
        // PreparedBench holds exactly the runner's model/method/workload options
        ...p,
        signal: ac.signal,
        onProgress: ev => { write({ event: 'progress', ...ev }) },
        onResult: async cell => {
          const record = await c.ownRecord(cell.body)
          const s = summarizeCell(cell, record)
          summaries.push(s)
          write({ event: 'result', ...s })
        }
      })
      write({ event: 'done', results: summaries })
      metrics?.foregroundRuns.inc({ outcome: 'ok' })
    } catch (err) {
      logger('bench failed: %s', errorMessage(err))
      write({ event: 'error', code: errorCode(err), message: errorMessage(err), results: summaries })
      metrics?.foregroundRuns.inc({ outcome: 'error' })
    } finally {
      end()
      foreground = undefined
      res.end()
    }
    return undefined
  }

  c.api.route('POST', '/bench', handleBench)
  c.api.route('DELETE', '/bench', async () => {
    const running = foreground != null
    foreground?.abort()
    return { json: { cancelled: running } }
  })

  const bg = config.bench.background
  const sweep = bg.enabled ? createSweep(config, c, getEngine) : undefined

  const metrics = c.metrics != null ? createBenchMetrics(c.metrics, sweep) : undefined

  c.api.statusContributors.set('bench', () => ({
    running: foreground != null,
    background: sweep != null
      ? { enabled: true, share: bg.share, ...sweep.status(), ...sweep.stats() }
      : { enabled: false, running: false, cell: null, phase: 'off', spentShare: 0, cellsDone: 0, lastError: null }
  }))

  return {
    sweep,
    start () {
      stopping = false
      sweep?.start()
    },
    async stop () {
      stopping = true
      foreground?.abort()
      await sweep?.stop()
      const e = engine
      engine = undefined
      if (e != null) await (await e.catch(() => undefined))?.close().catch((err: unknown) => { logger('engine close: %s', errorMessage(err)) })
    }
  }
}

/**
 * The background sweep over the default model: a quick first pass (`firstPassMethods` on the
 * tiny-scale workloads), then every method on the tiny and default-scale workloads, in the
 * order the scheduler (schedule.ts) picks.
 */
function createSweep (config: BenchServiceInit['config'], c: BenchComponents, getEngine: () => Promise<Engine>): BackgroundSweep {
  const bg = config.bench.background
  const activity = c.activity
  let knobs: Record<string, Record<string, number>> = {}
  const ownPages = async function * (modelId: string, hardwareId: string): AsyncGenerator<Awaited<ReturnType<RecordStore['query']>>['records'][number]> {
    let cursor: string | undefined
    do {
      const page = await c.store.query({ author: c.peerId.toString(), modelId, hardwareId, source: 'benchmark', limit: 1000, cursor })
      yield * page.records
      cursor = page.cursor
    } while (cursor != null)
  }
  return createBackgroundSweep({
    share: bg.share,
    firstPassShare: bg.firstPassShare,
    intervalMs: bg.intervalMs,
    activity,
    ...(c.host != null ? { host: c.host } : {}),
    repeats: config.bench.repeats,
    timeoutMs: config.bench.timeoutMs,
    defaultThreads: config.engine.threads > 0 ? config.engine.threads : Math.max(1, cpus().length),
    pricePerHour: config.hardware.pricePerHour,
    publishHardware: config.engine.publishHardware,
    prepare: async () => {
      const p = await prepareBench(config, {})
      knobs = Object.fromEntries(p.methods.map(m => [m.id, knobRecord(m.knobs)]))
      const quick = new Set(bg.firstPassMethods)
      const tiny = standardWorkloads('tiny')
      const cells = [
        ...p.methods.flatMap(method => tiny.map(workload => ({ method, workload, firstPass: quick.has(method.id) }))),
        ...p.methods.flatMap(method => standardWorkloads('default').map(workload => ({ method, workload })))
      ]
      return { engine: await getEngine(), model: p.model, baseline: p.baseline, cells }
    },
    counts: async (modelId, hardwareId) => {
      const counts = new Map<string, number>()
      for await (const r of ownPages(modelId, hardwareId)) {
        const k = cellKey(r.body.method.id, r.body.workload.name)
        counts.set(k, (counts.get(k) ?? 0) + 1)
      }
      return counts
    },
    tasks: async (modelId, hardwareId) => {
      const tasks = new Map<string, FeatureTask>()
      for await (const r of ownPages(modelId, hardwareId)) {
        if (r.body.result.ok) tasks.set(r.body.workload.name, { hardware: r.body.hardware, model: r.body.model, workload: { features: r.body.workload.features } })
      }
      return tasks
    },
    prepareQuick: async () => {
      const quickModel = bg.firstPassModel === undefined ? 'tiny' : bg.firstPassModel
      if (!needsQuickFirstPass({ defaultModel: config.engine.defaultModel, quickModel, file: defaultModelFile(config) })) return undefined
      const p = await prepareBench(config, { model: quickModel as string, methods: bg.firstPassMethods })
      const cells = p.methods.flatMap(method => standardWorkloads('tiny').map(workload => ({ method, workload, firstPass: true })))
      return { engine: await getEngine(), model: p.model, baseline: p.baseline, cells }
    },
    predict: (task, methods) => predictCells(c.meta?.current() ?? null, task, methods, knobs),
    measured: async (model, hardwareId) => await swarmMeasured(c.store, model, hardwareId),
    served: async model => await recentlyServed(c.store, model),
    tieBreak: tieBreakOf(c.peerId.toString()),
    record: async body => { await c.ownRecord(body) },
    // issue #7: re-measure other authors' most influential claims (src/trust spot checks)
    prefer: (modelId, hardwareId) => config.trust?.spotChecks === false ? [] : c.trust?.spotChecks(modelId, hardwareId) ?? []
  })
}

/** Bounds of what the sweep reads per cell: the swarm's newest benchmark records and served tasks. */
export const SWEEP_HISTORY_MAX = 5000
export const SWEEP_SERVED_MAX = 200
/** Served tasks older than this are no longer demand. */
export const SWEEP_DEMAND_WINDOW_MS = 30 * 60_000

/** Every author's benchmark records of this (logical) model on this hardware, per cellKey (issue #17 demand and near-tie steps). */
async function swarmMeasured (store: RecordStore, model: ModelDescriptor, hardwareId: string): Promise<Map<string, MeasuredCell>> {
  const logical = logicalModelId(model)
  const perf = new Map<string, number[]>()
  for await (const r of newestRecords(store, { hardwareId, source: 'benchmark' }, SWEEP_HISTORY_MAX)) {
    if (logicalModelId(r.body.model) !== logical) continue
    const k = cellKey(r.body.method.id, r.body.workload.name)
    let xs = perf.get(k)
    if (xs == null) perf.set(k, xs = [])
    xs.push(r.body.result.ok ? r.body.result.totalTokensPerSecond : 0)
  }
  return new Map([...perf].map(([k, xs]) => [k, measuredCellOf(xs)]))
}

/** Workload features of the tasks served on this (logical) model within SWEEP_DEMAND_WINDOW_MS, any author. */
async function recentlyServed (store: RecordStore, model: ModelDescriptor, now = Date.now()): Promise<Array<Record<string, number>>> {
  const logical = logicalModelId(model)
  const out: Array<Record<string, number>> = []
  for await (const r of newestRecords(store, { source: 'serving' }, SWEEP_SERVED_MAX)) {
    if (r.body.timestamp < now - SWEEP_DEMAND_WINDOW_MS) continue
    if (logicalModelId(r.body.model) === logical) out.push(r.body.workload.features)
  }
  return out
}

/** The default model's file as it is now, without generating it: configured, or where a built-in one will be written. */
function defaultModelFile (config: BenchServiceInit['config']): { exists: boolean, bytes: number } | undefined {
  const name = config.engine.defaultModel
  const configured = config.engine.models.find(m => m.name === name)
  const entry = EMBEDDED_MODELS[name]
  const path = configured?.path ?? (entry != null ? join(config.dataDir, 'models', embeddedFileName(entry.main)) : undefined)
  if (path == null) return undefined
  try {
    return { exists: true, bytes: statSync(path).size }
  } catch {
    return { exists: false, bytes: 0 }
  }
}

/** ln(speedup) predictions of the meta-model for one task, or undefined (no model, a method it cannot place). */
export function predictCells (model: MetaModel | null, task: FeatureTask, methods: string[], knobs: Record<string, Record<string, number>>): Map<string, CellPrediction> | undefined {
  if (model == null) return undefined
  try {
    const preds = predictTask(model, task, methods, { ...model.methodKnobs, ...knobs })
    return new Map(preds.map(p => [p.method, { mean: p.logSpeedup, std: p.logSpeedupStd }]))
  } catch {
    return undefined
  }
}
