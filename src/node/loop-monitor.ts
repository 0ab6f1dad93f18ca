import { createHistogram, performance, type RecordableHistogram } from 'node:perf_hooks'

/**
 * Event-loop delay of this process (issue #7: is a flood stalling the node?). A timer due every
 * `resolutionMs` records how late it fired (what any callback waiting for the loop suffers; the
 * same measure as perf_hooks' monitorEventLoopDelay, whose histogram cannot be merged across
 * windows); the samples are cut into one-second slices kept for
 * `keepSeconds`, so a reader can ask for any recent window ("since the attack began") and get
 * exact percentiles over it, not an average of averages. Shown in GET /status (`eventLoop`, last
 * 10 s), GET /metrics and GET /eventloop?since=<ms since epoch>.
 */
export interface LoopDelay {
  /** the window the figures cover (ms since epoch) */
  fromMs: number
  toMs: number
  samples: number
  meanMs: number
  p50Ms: number
  p99Ms: number
  maxMs: number
  /** CPU time this process used over the window, % of one core (a starved loop vs a busy one) */
  cpuPct: number
}

export interface LoopMonitor {
  start: () => void
  stop: () => void
  /** delay over the slices that end after `sinceMs` (default: the last 10 s), including the current one */
  delay: (sinceMs?: number) => LoopDelay
}

export interface LoopMonitorOptions {
  resolutionMs?: number
  keepSeconds?: number
  now?: () => number
}

const NS_PER_MS = 1e6

export function createLoopMonitor (opts: LoopMonitorOptions = {}): LoopMonitor {
  const now = opts.now ?? Date.now
  const keep = opts.keepSeconds ?? 600
  const resolution = opts.resolutionMs ?? 10
  let h: RecordableHistogram | undefined
  let timer: NodeJS.Timeout | undefined
  let tick: NodeJS.Timeout | undefined
  let sliceStart = now()
  /** closed one-second slices, oldest first */
  const slices: Array<{ from: number, to: number, hist: RecordableHistogram, cpuUs: number }> = []
  let cpuAt = process.cpuUsage()
  const cpuSince = (): number => { const d = process.cpuUsage(cpuAt); return d.user + d.system }

  const cut = (): void => {
    if (h == null) return
    const t = now()
    slices.push({ from: sliceStart, to: t, hist: h, cpuUs: cpuSince() })
    cpuAt = process.cpuUsage()
    if (slices.length > keep) slices.shift()
    h = createHistogram()
    sliceStart = t
  }

  return {
    start () {
      if (h != null) return
      h = createHistogram()
      sliceStart = now()
      cpuAt = process.cpuUsage()
      let due = performance.now() + resolution
      const sample = (): void => {
        const t = performance.now()
        h?.record(Math.max(1, Math.round((t - due) * NS_PER_MS)))
        due = t + resolution
        tick = setTimeout(sample, resolution)
        tick.unref()
      }
      tick = setTimeout(sample, resolution)
      tick.unref()
      timer = setInterval(cut, 1000)
      timer.unref()
    },
    stop () {
      if (timer != null) clearInterval(timer)
      if (tick != null) clearTimeout(tick)
      h = undefined
    },
    delay (sinceMs = now() - 10_000) {
      const all = createHistogram()
      let from = Infinity
      let cpuUs = 0
      for (const s of slices) {
        if (s.to <= sinceMs) continue
        from = Math.min(from, s.from)
        cpuUs += s.cpuUs
        if (s.hist.count > 0) all.add(s.hist)
      }
      if (h != null) { cpuUs += cpuSince(); from = Math.min(from, sliceStart); if (h.count > 0) all.add(h) }
      const n = all.count
      const t = now()
      const fromMs = Number.isFinite(from) ? from : t
      return {
        fromMs,
        toMs: t,
        samples: n,
        meanMs: n > 0 ? all.mean / NS_PER_MS : 0,
        p50Ms: n > 0 ? all.percentile(50) / NS_PER_MS : 0,
        p99Ms: n > 0 ? all.percentile(99) / NS_PER_MS : 0,
        maxMs: n > 0 ? all.max / NS_PER_MS : 0,
        cpuPct: t > fromMs ? 100 * (cpuUs / 1000) / (t - fromMs) : 0
      }
    }
  }
}
