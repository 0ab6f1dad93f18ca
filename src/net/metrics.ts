import type { AvgMinMax, Gauge as GsGauge, Histogram as GsHistogram, MetricsRegister } from '@libp2p/gossipsub/metrics'
import { Gauge, Histogram, type Registry } from 'prom-client'

type Labels = Record<string, string | number>

/**
 * gossipsub's metrics interface (`metricsRegister`: gauge, histogram, avgMinMax with collect
 * hooks) over a prom-client registry, so mesh sizes, peer scores and RPC counts land on the
 * node's /metrics next to libp2p's own (the adapter Lodestar writes for the same library).
 */
export function gossipsubMetricsRegister (registry: Registry): MetricsRegister {
  return {
    gauge<L extends Labels> (cfg: { name: string, help: string, labelNames?: readonly string[] }): GsGauge<L> {
      const collects: Array<(g: GsGauge<L>) => void> = []
      const g = new Gauge({
        name: cfg.name,
        help: cfg.help,
        labelNames: [...(cfg.labelNames ?? [])],
        registers: [registry],
        collect () { for (const fn of collects) fn(wrapped) }
      })
      const wrapped = {
        inc: (a?: L | number, b?: number) => { typeof a === 'object' ? g.inc(a, b ?? 1) : g.inc(a ?? 1) },
        set: (a: L | number, b?: number) => { typeof a === 'object' ? g.set(a, b ?? 0) : g.set(a) },
        addCollect: (fn: (g: GsGauge<L>) => void) => { collects.push(fn) }
      } as unknown as GsGauge<L>
      return wrapped
    },
    histogram<L extends Labels> (cfg: { name: string, help: string, labelNames?: readonly string[], buckets?: number[] }): GsHistogram<L> {
      const h = new Histogram({ name: cfg.name, help: cfg.help, labelNames: [...(cfg.labelNames ?? [])], ...(cfg.buckets != null ? { buckets: cfg.buckets } : {}), registers: [registry] })
      return {
        startTimer: () => h.startTimer(),
        observe: (a: L | number, b?: number) => { typeof a === 'object' ? h.observe(a, b ?? 0) : h.observe(a) },
        reset: () => { h.reset() }
      } as unknown as GsHistogram<L>
    },
    avgMinMax<L extends Labels> (cfg: { name: string, help: string, labelNames?: readonly string[] }): AvgMinMax<L> {
      const g = new Gauge({ name: cfg.name, help: cfg.help, labelNames: [...(cfg.labelNames ?? []), 'stat'], registers: [registry] })
      const set = (labels: Labels, values: number[]): void => {
        if (values.length === 0) return
        let sum = 0
        let min = Infinity
        let max = -Infinity
        for (const v of values) { sum += v; if (v < min) min = v; if (v > max) max = v }
        g.set({ ...labels, stat: 'avg' }, sum / values.length)
        g.set({ ...labels, stat: 'min' }, min)
        g.set({ ...labels, stat: 'max' }, max)
      }
      return {
        set: (a: L | number[], b?: number[]) => { Array.isArray(a) ? set({}, a) : set(a, b ?? []) }
      } as unknown as AvgMinMax<L>
    }
  } as MetricsRegister
}
