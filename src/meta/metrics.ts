import { Counter, Gauge, Histogram, type Registry } from 'prom-client'

/** What the meta service exports on /metrics (registered by src/node/metrics.ts). */
export interface MetaMetrics {
  trainings: Counter<'outcome'>
  trainingSeconds: Histogram
  trainingRows: Gauge
  snapshotAgeSeconds: Gauge
}

/** `trainedAt` gives the live snapshot's training time (ms since the epoch), or null before the first one. */
export function createMetaMetrics (register: Registry, trainedAt: () => number | null = () => null): MetaMetrics {
  const registers = [register]
  return {
    trainings: new Counter({ name: 'swarmtune_meta_trainings_total', help: 'Meta-model trainings by outcome (ok, error, empty)', labelNames: ['outcome'], registers }),
    trainingSeconds: new Histogram({ name: 'swarmtune_meta_training_seconds', help: 'Wall time of one meta-model training (worker thread)', buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600], registers }),
    trainingRows: new Gauge({ name: 'swarmtune_meta_training_rows', help: 'Rows the live meta-model was trained on', registers }),
    snapshotAgeSeconds: new Gauge({
      name: 'swarmtune_meta_snapshot_age_seconds',
      help: 'Seconds since the live meta-model snapshot was trained (absent before the first)',
      registers,
      collect () {
        const t = trainedAt()
        if (t == null) this.reset()
        else this.set(Math.max(0, (Date.now() - t) / 1000))
      }
    })
  }
}

/**
 * `swarmtune_meta_eval_default_regret`: the default selector's regret in the node's latest
 * in-daemon evaluation (learning-curve.ts); absent before the first.
 */
export function registerEvalGauge (register: Registry, regret: () => number | null): Gauge {
  return new Gauge({
    name: 'swarmtune_meta_eval_default_regret',
    help: 'Regret (mean 1 - perf(choice)/perf(best)) of the default selector in the latest in-daemon evaluation on held-out folds of this node\'s history',
    registers: [register],
    collect () {
      const r = regret()
      if (r == null) this.reset()
      else this.set(r)
    }
  })
}
