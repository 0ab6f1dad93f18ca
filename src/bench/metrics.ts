import { Counter, type Registry } from 'prom-client'
import type { BackgroundSweep } from './background.js'

/** What the bench service exports on /metrics (the families are listed in src/node/metrics.ts). */
export interface BenchMetrics {
  foregroundRuns: Counter<'outcome'>
}

export function createBenchMetrics (register: Registry, sweep?: Pick<BackgroundSweep, 'stats'>): BenchMetrics {
  const registers = [register]
  if (sweep != null) {
    // the sweep keeps cumulative counts: mirror them at scrape time (still counters: they only go up)
    new Counter({ // eslint-disable-line no-new
      name: 'swarmtune_bench_background_cells_total',
      help: 'Background sweep cells by outcome (ran, aborted, error)',
      labelNames: ['outcome'],
      registers,
      collect () {
        const s = sweep.stats()
        this.reset()
        this.inc({ outcome: 'ran' }, s.cells)
        this.inc({ outcome: 'aborted' }, s.aborted)
        this.inc({ outcome: 'error' }, s.errors)
      }
    })
    new Counter({ // eslint-disable-line no-new
      name: 'swarmtune_bench_background_seconds_total',
      help: 'Wall time spent measuring in the background sweep',
      registers,
      collect () {
        this.reset()
        this.inc(sweep.stats().busyMs / 1000)
      }
    })
  }
  return {
    foregroundRuns: new Counter({ name: 'swarmtune_bench_runs_total', help: 'Foreground benchmarks (POST /bench) by outcome (ok, error)', labelNames: ['outcome'], registers })
  }
}
