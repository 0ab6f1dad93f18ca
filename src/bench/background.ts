import type { Engine, Method, ModelSpec } from '../engine/types.js'
import type { FeatureTask } from '../meta/features.js'
import type { ModelDescriptor, UnsignedBody } from '../records/types.js'
import { errorCode, errorMessage } from '../util/errors.js'
import { log } from '../util/log.js'
import { hardwareFingerprint, type PublishHardware } from '../engine/hardware.js'
import { runBenchmark, type BenchCellResult } from './runner.js'
import type { Activity } from '../util/activity.js'
import type { HostCoordinator } from '../util/host-lock.js'
import type { Workload } from './workloads.js'
import { cellKey, demandOf, failureBackoffMs, scheduleNext, type CellPrediction, type MeasuredCell, type ScheduleReason } from './schedule.js'

export { cellKey } from './schedule.js'

/**
 * The daemon's budgeted background sweep (config.bench.background): while the node is idle it
 * measures one (method, workload) cell at a time, chosen by the scheduler (schedule.ts: quick
 * first pass, trust spot checks, serving demand and its near-ties, value of information from the
 * meta-model, then coverage), and
 * spends at most `share` of wall time doing so (`firstPassShare` until the first pass is done).
 * Inference always wins: a task that starts during a cell aborts it, and the aborted cell is
 * dropped rather than recorded as a failure. A cell that fails is recorded once (its error in
 * the record) and backed off; a store error stops the sweep (never the daemon).
 */

export interface SweepCell { method: Method, workload: Workload, firstPass?: boolean }

export interface SweepPlan { engine: Engine, model: ModelSpec, cells: SweepCell[], baseline: Method }

/** The cell with the fewest records; ties go to catalog order (pure). */
export function nextCell (cells: readonly SweepCell[], counts: ReadonlyMap<string, number>): SweepCell | undefined {
  let best: SweepCell | undefined
  let bestCount = Infinity
  for (const c of cells) {
    const n = counts.get(cellKey(c.method.id, c.workload.name)) ?? 0
    if (n < bestCount) { best = c; bestCount = n }
  }
  return best
}

/** Pause after a cell of `busyMs` so that benchmarking takes `share` of the time (pure). */
export function pauseAfter (busyMs: number, share: number): number {
  if (share <= 0) return Infinity
  if (share >= 1) return 0
  return busyMs * (1 / share - 1)
}

export interface BackgroundSweepInit {
  share: number
  /** share of wall time while first-pass cells remain (default: share) */
  firstPassShare?: number
  intervalMs: number
  /** inference and foreground benchmarks mark themselves busy here; the sweep yields to them */
  activity: Activity
  /** engine + model to sweep, created on first use (the caller owns and closes the engine) */
  prepare: () => Promise<SweepPlan>
  /**
   * issue #17: a quick first pass on another, small model, swept before `prepare` is even called
   * while any of its first-pass cells is unmeasured (undefined: none, e.g. the default model is
   * already small). Its failure skips it, never the sweep.
   */
  prepareQuick?: () => Promise<SweepPlan | undefined>
  /** existing record counts per cellKey for this model and hardware */
  counts: (modelId: string, hardwareId: string) => Promise<Map<string, number>>
  /** a measured task per workload name (for predictions after a restart) */
  tasks?: (modelId: string, hardwareId: string) => Promise<Map<string, FeatureTask>>
  /** the meta-model's predicted ln(speedup) (mean, spread over trees) per method, if it can predict */
  predict?: (task: FeatureTask, methods: string[]) => Map<string, CellPrediction> | undefined
  /**
   * issue #17: the swarm's records of this model on this hardware (every author) per cellKey,
   * read before each cell; with `served`, the scheduler's demand and near-tie steps
   */
  measured?: (model: ModelDescriptor, hardwareId: string) => Promise<Map<string, MeasuredCell>>
  /** the workload features of tasks served recently on this model, by any peer */
  served?: (model: ModelDescriptor) => Promise<Array<Record<string, number>>>
  /** in [0, 1), fixed per peer: which of several equally due cells it takes (schedule.ts tieBreakOf) */
  tieBreak?: number
  /** sign, store and gossip one body */
  record: (body: UnsignedBody) => Promise<void>
  /**
   * issue #7 spot checks (src/trust): cells other authors claimed that this node should
   * re-measure first, best first; cells not in the sweep are skipped
   */
  prefer?: (modelId: string, hardwareId: string) => Array<{ method: string, workload: string }>
  repeats: number
  timeoutMs: number
  defaultThreads: number
  pricePerHour: number
  /** engine.publishHardware: the sweep's records and the hardware id it counts them by */
  publishHardware?: PublishHardware
  /**
   * issue #17 item 6: the host's other daemons (util/host-lock.ts). A cell runs only while this
   * sweep holds the host's benchmark lock and no other daemon of the host serves inference; one
   * that starts serving aborts the running cell, as this node's own inference does.
   */
  host?: Pick<HostCoordinator, 'tryBench' | 'othersBusy'>
  /** back-off of a failing cell: base · 2^(failures−1), capped (defaults 10 min, 6 h) */
  failureBackoffMs?: { base: number, max: number }
  now?: () => number
}

export type TickResult = 'ran' | 'busy' | 'budget' | 'nothing' | 'aborted' | 'error' | 'stopped'

export interface SweepStatus {
  running: boolean
  /** what it measures now (or null) and why */
  cell: { model: string, workload: string, method: string, reason: ScheduleReason } | null
  phase: 'first-pass' | 'explore' | 'stopped'
  /** busy time / wall time since start */
  spentShare: number
  cellsDone: number
  lastError: { code: string, message: string } | null
  /** the last cells measured or aborted (newest last), when each ran: the host's cells never overlap */
  recent: Array<{ model: string, workload: string, method: string, startedAt: number, endedAt: number, outcome: 'ran' | 'aborted' }>
}

export interface BackgroundSweep {
  start: () => void
  stop: () => Promise<void>
  /** one step now, if idle and within budget (tests; the timer calls it) */
  tick: () => Promise<TickResult>
  /** `hostYields`: ticks that found the host's lock taken or another daemon serving */
  stats: () => { cells: number, busyMs: number, aborted: number, errors: number, hostYields: number }
  status: () => SweepStatus
}

/** The engine, model and cells, with this node's existing records of them. */
async function prepareSweep (init: BackgroundSweepInit, plan: SweepPlan): Promise<Prepared> {
  const p = plan
  const d = await p.engine.describe(p.model)
  // the hardware id does not depend on threads or price
  const hw = hardwareFingerprint({ backend: p.engine.backend, gpus: p.engine.gpus, threads: 1, publish: init.publishHardware })
  const counts = await init.counts(d.id, hw.id)
  const tasks = await init.tasks?.(d.id, hw.id) ?? new Map<string, FeatureTask>()
  return { ...p, descriptor: d, modelId: d.id, hardwareId: hw.id, counts, tasks }
}

/** Consecutive failures per cellKey and when their back-off ends. */
interface FailureBook { blocked: (key: string) => boolean, fail: (key: string) => number, clear: (key: string) => void }

function createFailureBook (now: () => number, backoff: { base: number, max: number }): FailureBook {
  const failures = new Map<string, { n: number, until: number }>()
  return {
    blocked: key => { const f = failures.get(key); return f != null && now() < f.until },
    fail: key => {
      const f = failures.get(key) ?? { n: 0, until: 0 }
      f.n++
      f.until = now() + failureBackoffMs(f.n, backoff.base, backoff.max)
      failures.set(key, f)
      return f.n
    },
    clear: key => { failures.delete(key) }
  }
}

/**
 * A cell aborted by arriving tasks waits a little (15 s, doubling, at most 5 min), so that a cell
 * longer than the gaps between tasks does not take every idle moment while shorter cells could
 * finish; never recorded, and cleared by a finished measurement.
 */
const ABORT_BACKOFF_MS = { base: 15_000, max: 300_000 }
/** How often a running cell looks for another daemon of the host serving (a directory listing). */
const HOST_POLL_MS = 200
/** Cells kept in the status's `recent`. */
const RECENT_CELLS = 20

/** Failures (recorded, long back-off) and aborts (short wait); `blocked`: failures only, `pickable`: both. */
function createCellBooks (now: () => number, backoff: { base: number, max: number }): { book: FailureBook, aborts: FailureBook, blocked: (key: string) => boolean, pickable: (key: string) => boolean } {
  const book = createFailureBook(now, backoff)
  const aborts = createFailureBook(now, ABORT_BACKOFF_MS)
  return { book, aborts, blocked: book.blocked, pickable: key => book.blocked(key) || aborts.blocked(key) }
}

/** Busy time over wall time, rounded to 0.001. */
export function spentShare (busyMs: number, wallMs: number): number {
  return wallMs > 0 ? Math.round(Math.min(1, busyMs / wallMs) * 1000) / 1000 : 0
}

function firstPassLeft (p: Prepared, blocked: (key: string) => boolean): boolean {
  return p.cells.some(c => c.firstPass === true && (p.counts.get(cellKey(c.method.id, c.workload.name)) ?? 0) === 0 && !blocked(cellKey(c.method.id, c.workload.name)))
}

/** What the demand and near-tie steps read: the swarm's measurements and the demand per workload (empty without the hooks). */
async function demandInput (init: BackgroundSweepInit, p: Prepared): Promise<Swarm> {
  if (init.measured == null || init.served == null) return {}
  const [measured, served] = await Promise.all([init.measured(p.descriptor, p.hardwareId), init.served(p.descriptor)])
  const workloads = new Map([...p.tasks].map(([name, t]) => [name, t.workload.features]))
  return { measured, demand: demandOf(served, workloads) }
}

interface Swarm { measured?: Map<string, MeasuredCell>, demand?: Map<string, number> }

/** The scheduler's next cell (schedule.ts) over the prepared cells. */
function pickCell (init: BackgroundSweepInit, p: Prepared, blocked: (key: string) => boolean, swarm: Swarm = {}): { cell: SweepCell, reason: ScheduleReason } | undefined {
  const predict = init.predict
  const next = scheduleNext({
    ...swarm,
    tieBreak: init.tieBreak,
    cells: p.cells.map(c => ({ method: c.method.id, workload: c.workload.name, firstPass: c.firstPass })),
    counts: p.counts,
    blocked,
    spotChecks: init.prefer?.(p.modelId, p.hardwareId) ?? [],
    baseline: p.baseline.id,
    predict: predict == null
      ? undefined
      : (workload, methods) => {
          const task = p.tasks.get(workload)
          return task != null ? predict(task, methods) : undefined
        }
  })
  if (next == null) return undefined
  const c = p.cells.find(x => x.method.id === next.cell.method && x.workload.name === next.cell.workload)
  return c != null ? { cell: c, reason: next.reason } : undefined
}

/**
 * Store a cell's results: a success resets its failures; a failure is recorded only the first
 * time (with its error) and backs the cell off. Returns the failure, if any.
 */
async function recordResults (init: BackgroundSweepInit, p: Prepared, book: ReturnType<typeof createFailureBook>, results: BenchCellResult[]): Promise<SweepStatus['lastError']> {
  let error: SweepStatus['lastError'] = null
  for (const r of results) {
    const k = cellKey(r.method, r.workload)
    const ok = r.body.result.ok
    const n = ok ? 0 : book.fail(k)
    if (ok) book.clear(k)
    else error = { code: 'E_CELL_FAILED', message: `${r.method} on ${r.workload}: ${r.body.result.error ?? 'failed'}` }
    if (n > 1) continue
    await init.record(r.body)
    p.counts.set(k, (p.counts.get(k) ?? 0) + 1)
    if (ok) p.tasks.set(r.workload, { hardware: r.body.hardware, model: r.body.model, workload: { features: r.body.workload.features } })
  }
  return error
}

interface Prepared { engine: Engine, model: ModelSpec, cells: SweepCell[], baseline: Method, descriptor: ModelDescriptor, modelId: string, hardwareId: string, counts: Map<string, number>, tasks: Map<string, FeatureTask> }

/** The sweep's plans: the quick first pass (prepared once; null when there is none or it failed) and the default model's. */
interface Plans {
  main: Prepared | undefined
  quick: () => Promise<Prepared | null>
  /** the quick plan while its first pass is left, else the default model's (prepared on first use; throws when it cannot be) */
  active: (blocked: (key: string) => boolean) => Promise<Prepared>
  firstPass: (blocked: (key: string) => boolean) => boolean
  reset: () => void
}

function createPlans (init: BackgroundSweepInit, onQuickFailed: (err: unknown) => void): Plans {
  let quick: Prepared | null | undefined
  return {
    main: undefined,
    async quick () {
      if (quick !== undefined || init.prepareQuick == null) return quick ?? null
      try {
        const plan = await init.prepareQuick()
        quick = plan != null ? await prepareSweep(init, plan) : null
      } catch (err) {
        quick = null
        onQuickFailed(err)
      }
      return quick
    },
    async active (blocked) {
      const q = await this.quick()
      if (q != null && firstPassLeft(q, blocked)) return q
      this.main ??= await prepareSweep(init, await init.prepare())
      return this.main
    },
    firstPass (blocked) {
      return this.main == null || firstPassLeft(this.main, blocked) || (quick != null && firstPassLeft(quick, blocked))
    },
    reset () {
      this.main = undefined
      quick = undefined
    }
  }
}

/**
 * The host's other daemons: one benchmark at a time, none while another serves. The release of
 * the host's benchmark lock; null when it is not this sweep's turn; undefined without a host.
 */
function hostTurn (host: BackgroundSweepInit['host'], logger: ReturnType<typeof log>): (() => void) | null | undefined {
  if (host == null) return undefined
  try {
    return host.othersBusy() ? null : host.tryBench() ?? null
  } catch (err) {
    // an unusable directory (another user's, a full /tmp): measure without the host's turns rather than never
    if (!warned.has(host)) logger.error('host lock unusable, measuring without it: %s', errorMessage(err))
    warned.add(host)
    return undefined
  }
}
const warned = new WeakSet<object>()

function remember (recent: SweepStatus['recent'], c: SweepStatus['recent'][number]): void {
  recent.push(c)
  if (recent.length > RECENT_CELLS) recent.shift()
}

/** Run one cell; another daemon of the host starting inference aborts it, as this node's own does. */
async function measureCell (init: BackgroundSweepInit, p: Prepared, cell: SweepCell, ac: AbortController): Promise<BenchCellResult[]> {
  const host = init.host
  const watch = host != null ? setInterval(() => { if (host.othersBusy()) ac.abort() }, HOST_POLL_MS) : undefined
  try {
    return await runBenchmark({
      engine: p.engine, model: p.model, methods: [cell.method], workloads: [cell.workload], baseline: p.baseline,
      repeats: init.repeats, timeoutMs: init.timeoutMs, defaultThreads: init.defaultThreads,
      pricePerHour: init.pricePerHour, publishHardware: init.publishHardware, signal: ac.signal
    })
  } finally {
    clearInterval(watch)
  }
}

export function createBackgroundSweep (init: BackgroundSweepInit): BackgroundSweep {
  const logger = log('bench:background')
  const activity = init.activity
  const now = init.now ?? Date.now
  const backoff = init.failureBackoffMs ?? { base: 600_000, max: 6 * 3_600_000 }
  let timer: NodeJS.Timeout | undefined, firstTimer: NodeJS.Timeout | undefined
  let closed = false
  let running: Promise<unknown> | undefined, current: AbortController | undefined
  let notBefore = 0
  let startedAt: number | undefined
  const plans = createPlans(init, (err) => { logger('quick first pass skipped: %s', errorMessage(err)) })
  let prepareFailures = 0
  let stoppedBy: { code: string, message: string } | undefined
  let cell: SweepStatus['cell'] = null
  let lastError: SweepStatus['lastError'] = null
  const { book, aborts, blocked, pickable } = createCellBooks(now, backoff)
  const stats = { cells: 0, busyMs: 0, aborted: 0, errors: 0, hostYields: 0 }
  const recent: SweepStatus['recent'] = []
  const unsubscribe = activity.onBusy(() => current?.abort())

  async function runCell (p: Prepared, chosen: { cell: SweepCell, reason: ScheduleReason }): Promise<TickResult> {
    const ac = current = new AbortController()
    cell = { model: p.modelId, workload: chosen.cell.workload.name, method: chosen.cell.method.id, reason: chosen.reason }
    const startedAt = now()
    const results = await measureCell(init, p, chosen.cell, ac)
    remember(recent, { model: p.modelId, workload: chosen.cell.workload.name, method: chosen.cell.method.id, startedAt, endedAt: now(), outcome: ac.signal.aborted ? 'aborted' : 'ran' })
    const key = cellKey(chosen.cell.method.id, chosen.cell.workload.name)
    if (ac.signal.aborted) { stats.aborted++; aborts.fail(key); return 'aborted' }
    aborts.clear(key)
    lastError = await recordResults(init, p, book, results) ?? lastError
    stats.cells++
    return 'ran'
  }

  function onError (err: unknown): TickResult {
    stats.errors++
    lastError = { code: errorCode(err), message: errorMessage(err) }
    // a full disk or a broken store: measuring more would only fail again; the daemon goes on
    if (lastError.code.startsWith('E_STORE')) stoppedBy = lastError
    if (stoppedBy != null) logger.error('background sweep stopped by a store error: %s', lastError.message)
    else logger('background cell failed: %s', lastError.message)
    return stoppedBy != null ? 'stopped' : 'error'
  }

  async function tick (): Promise<TickResult> {
    if (stoppedBy != null || closed) return 'stopped'
    if (running != null || !activity.idle()) return 'busy'
    if (now() < notBefore) return 'budget'
    const unlock = hostTurn(init.host, logger)
    if (unlock === null) { stats.hostYields++; return 'busy' }
    const step = (async (): Promise<TickResult> => {
      const t0 = now()
      let share = init.share
      let outcome: TickResult = 'error'
      try {
        let p: Prepared
        try {
          p = await plans.active(blocked)
          prepareFailures = 0
        } catch (err) {
          // a model that fails to load: retry later, with a growing pause
          prepareFailures++
          notBefore = now() + failureBackoffMs(prepareFailures, 60_000, backoff.max)
          return (outcome = onError(err))
        }
        if (firstPassLeft(p, blocked)) share = init.firstPassShare ?? init.share
        const chosen = pickCell(init, p, pickable, await demandInput(init, p))
        if (chosen == null) return (outcome = 'nothing')
        return (outcome = await runCell(p, chosen))
      } catch (err) {
        return (outcome = onError(err))
      } finally {
        unlock?.()
        current = undefined
        cell = null
        if (outcome !== 'nothing' && !(outcome === 'error' && prepareFailures > 0)) {
          const busy = now() - t0
          stats.busyMs += busy
          notBefore = Math.max(notBefore, now() + pauseAfter(busy, share))
        }
      }
    })()
    running = step
    try { return await step } finally { running = undefined }
  }

  return {
    start () {
      if (timer != null || init.share <= 0) return
      startedAt ??= now()
      // the first tick comes soon after start (the first pass), later ones every intervalMs
      firstTimer = setTimeout(() => { void tick() }, Math.min(init.intervalMs, 1000))
      firstTimer.unref()
      timer = setInterval(() => { void tick() }, init.intervalMs)
      timer.unref()
    },
    async stop () {
      closed = true
      if (firstTimer != null) clearTimeout(firstTimer)
      if (timer != null) clearInterval(timer)
      timer = undefined
      unsubscribe()
      current?.abort()
      await running?.catch(() => {})
      // the engine belongs to whoever prepared it (the bench service shares it)
      plans.reset()
    },
    tick,
    stats: () => ({ ...stats }),
    status: () => ({
      running: cell != null,
      cell,
      phase: stoppedBy != null ? 'stopped' : plans.firstPass(blocked) ? 'first-pass' : 'explore',
      spentShare: spentShare(stats.busyMs, now() - (startedAt ?? now())),
      cellsDone: stats.cells,
      lastError,
      recent: [...recent]
    })
  }
}
