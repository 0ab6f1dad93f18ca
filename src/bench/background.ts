import type { Engine, Method, ModelSpec } from '../engine/types.js'
import type { UnsignedBody } from '../records/types.js'
import { errorMessage } from '../util/errors.js'
import { log } from '../util/log.js'
import { hardwareFingerprint } from '../engine/hardware.js'
import { runBenchmark } from './runner.js'
import type { Activity } from '../util/activity.js'
import type { Workload } from './workloads.js'

/**
 * The daemon's budgeted background sweep (config.bench.background): while the node is idle it
 * measures one (method, workload) cell at a time, cells with the fewest records first, and
 * spends at most `share` of wall time doing so. Inference always wins: a task that starts
 * during a cell aborts it, and the aborted cell is dropped rather than recorded as a failure.
 */

export interface SweepCell { method: Method, workload: Workload }

export const cellKey = (methodId: string, workloadName: string): string => `${methodId}\u0000${workloadName}`

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
  intervalMs: number
  /** inference and foreground benchmarks mark themselves busy here; the sweep yields to them */
  activity: Activity
  /** engine + model to sweep, created on first use (the caller owns and closes the engine) */
  prepare: () => Promise<{ engine: Engine, model: ModelSpec, cells: SweepCell[], baseline: Method }>
  /** existing record counts per cellKey for this model and hardware */
  counts: (modelId: string, hardwareId: string) => Promise<Map<string, number>>
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
  now?: () => number
}

export interface BackgroundSweep {
  start: () => void
  stop: () => Promise<void>
  /** one step now, if idle and within budget (tests; the timer calls it) */
  tick: () => Promise<'ran' | 'busy' | 'budget' | 'nothing' | 'aborted' | 'error'>
  stats: () => { cells: number, busyMs: number, aborted: number, errors: number }
}

export function createBackgroundSweep (init: BackgroundSweepInit): BackgroundSweep {
  const logger = log('bench:background')
  const activity = init.activity
  const now = init.now ?? Date.now
  let timer: NodeJS.Timeout | undefined
  let running: Promise<unknown> | undefined
  let current: AbortController | undefined
  let notBefore = 0
  let counts: Map<string, number> | undefined
  let ids: { modelId: string, hardwareId: string } | undefined
  let prepared: Awaited<ReturnType<BackgroundSweepInit['prepare']>> | undefined
  const stats = { cells: 0, busyMs: 0, aborted: 0, errors: 0 }
  const unsubscribe = activity.onBusy(() => current?.abort())

  async function tick (): Promise<'ran' | 'busy' | 'budget' | 'nothing' | 'aborted' | 'error'> {
    if (running != null || !activity.idle()) return 'busy'
    if (now() < notBefore) return 'budget'
    const step = (async () => {
      const t0 = now()
      try {
        prepared ??= await init.prepare()
        const { engine, model, cells, baseline } = prepared
        if (counts == null) {
          const d = await engine.describe(model)
          // the hardware id does not depend on threads or price
          const hw = hardwareFingerprint({ backend: engine.backend, gpus: engine.gpus, threads: 1 })
          counts = await init.counts(d.id, hw.id)
          ids = { modelId: d.id, hardwareId: hw.id }
        }
        const wanted = ids != null ? init.prefer?.(ids.modelId, ids.hardwareId) ?? [] : []
        const cell = wanted.map(w => cells.find(c => c.method.id === w.method && c.workload.name === w.workload)).find(c => c != null) ?? nextCell(cells, counts)
        if (cell == null) return 'nothing'
        current = new AbortController()
        const results = await runBenchmark({
          engine, model, methods: [cell.method], workloads: [cell.workload], baseline,
          repeats: init.repeats, timeoutMs: init.timeoutMs, defaultThreads: init.defaultThreads,
          pricePerHour: init.pricePerHour, signal: current.signal
        })
        if (current.signal.aborted) { stats.aborted++; return 'aborted' }
        for (const r of results) {
          await init.record(r.body)
          const k = cellKey(r.method, r.workload)
          counts.set(k, (counts.get(k) ?? 0) + 1)
        }
        stats.cells++
        return 'ran'
      } catch (err) {
        stats.errors++
        logger('background cell failed: %s', errorMessage(err))
        return 'error'
      } finally {
        current = undefined
        const busy = now() - t0
        stats.busyMs += busy
        notBefore = now() + pauseAfter(busy, init.share)
      }
    })()
    running = step
    try { return await step } finally { running = undefined }
  }

  return {
    start () {
      if (timer != null || init.share <= 0) return
      timer = setInterval(() => { void tick() }, init.intervalMs)
      timer.unref()
    },
    async stop () {
      if (timer != null) clearInterval(timer)
      timer = undefined
      unsubscribe()
      current?.abort()
      await running?.catch(() => {})
      // the engine belongs to whoever prepared it (the bench service shares it)
      prepared = undefined
    },
    tick,
    stats: () => ({ ...stats })
  }
}
