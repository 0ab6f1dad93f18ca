import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { Counter, Gauge, Registry } from 'prom-client'
import type { CoreComponents } from './types.js'

/**
 * The node's metrics catalogue (Prometheus, through prom-client), one registry per daemon:
 * - the core families below: store, peers, rejections, network events, event loop, control API;
 * - libp2p's own (connections, streams, bytes by protocol, process and Node.js runtime) through
 *   @libp2p/prometheus-metrics, and gossipsub's (mesh sizes, peer scores, RPCs) through
 *   src/net/metrics.ts: the network registers them when the daemon hands it the registry;
 * - each service's families, registered by the service at creation from its own metrics module:
 *   src/serving/metrics.ts (swarmtune_serving_*), src/meta/metrics.ts (swarmtune_meta_*),
 *   src/bench/metrics.ts (swarmtune_bench_*).
 * Names follow the Prometheus conventions: counters end in `_total`, times are `_seconds`.
 */
export function createMetricsRegistry (): Registry {
  return new Registry()
}

/** Network stats that are levels, not counts (every other network stat only goes up). */
const NET_GAUGES = new Set(['peers', 'gossipTopicPeers'])

const snake = (k: string): string => k.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase()

/** The core families, read from the components at scrape time. */
export function registerCoreMetrics (register: Registry, c: Pick<CoreComponents, 'store' | 'network' | 'rejections' | 'startedAt' | 'loop' | 'config'>): void {
  const registers = [register]
  // one store count per scrape for the four gauges (prom-client collects them concurrently)
  let counting: ReturnType<typeof c.store.counts> | undefined
  const counts = async (): ReturnType<typeof c.store.counts> => await (counting ??= c.store.counts().finally(() => { counting = undefined }))
  const storeGauge = (name: string, help: string, pick: (n: Awaited<ReturnType<typeof c.store.counts>>) => number): void => {
    new Gauge({ name, help, registers, async collect () { this.set(pick(await counts())) } }) // eslint-disable-line no-new
  }
  storeGauge('swarmtune_records', 'Records stored', n => n.records)
  storeGauge('swarmtune_own_records', 'Records authored by this node', n => n.own)
  storeGauge('swarmtune_authors', 'Distinct record authors', n => n.authors)
  storeGauge('swarmtune_equivocations', 'Author+seq pairs with conflicting records', n => n.equivocations)
  new Gauge({ // eslint-disable-line no-new
    name: 'swarmtune_store_bytes',
    help: 'Bytes on disk of the LevelDB store',
    registers,
    async collect () { this.set(await dirBytes(join(c.config.dataDir, 'store'))) }
  })
  // write health (issue #18): a failed write (disk full, I/O) marks the store unhealthy until one succeeds
  new Gauge({ // eslint-disable-line no-new
    name: 'swarmtune_store_healthy',
    help: '1 while the store accepts writes, 0 after a failed write until one succeeds',
    registers,
    collect () { this.set(c.store.health?.().healthy === false ? 0 : 1) }
  })
  new Counter({ // eslint-disable-line no-new
    name: 'swarmtune_store_write_errors_total',
    help: 'Store writes that failed (disk full, I/O)',
    registers,
    collect () { this.reset(); this.inc(c.store.health?.().writeErrors ?? 0) }
  })
  new Counter({ // eslint-disable-line no-new
    name: 'swarmtune_store_recoveries_total',
    help: 'Times the store reopened and wrote again after failed writes',
    registers,
    collect () { this.reset(); this.inc(c.store.health?.().recoveries ?? 0) }
  })
  new Gauge({ name: 'swarmtune_peers', help: 'Connected peers', registers, collect () { this.set(c.network.peerCount()) } }) // eslint-disable-line no-new
  new Gauge({ name: 'swarmtune_uptime_seconds', help: 'Seconds since the daemon started', registers, collect () { this.set(Math.round((Date.now() - c.startedAt) / 1000)) } }) // eslint-disable-line no-new
  if (c.loop != null) {
    const loop = c.loop
    new Gauge({ // eslint-disable-line no-new
      name: 'swarmtune_event_loop_delay_seconds',
      help: 'Event-loop delay over the last 10 s (p99 and max)',
      labelNames: ['stat'],
      registers,
      collect () {
        const d = loop.delay()
        this.set({ stat: 'p99' }, d.p99Ms / 1000)
        this.set({ stat: 'max' }, d.maxMs / 1000)
      }
    })
  }
  // rejections and network events are cumulative counts kept by the code that sees them:
  // mirrored at scrape time, they stay counters (they only go up)
  new Counter({ // eslint-disable-line no-new
    name: 'swarmtune_rejected_total',
    help: 'Records and votes refused, by error code',
    labelNames: ['code'],
    registers,
    collect () {
      this.reset()
      for (const [code, n] of Object.entries(c.rejections.toJSON())) this.inc({ code }, n)
    }
  })
  new Counter({ // eslint-disable-line no-new
    name: 'swarmtune_net_events_total',
    help: 'Network events by kind (gossip received/accepted/published, sync sessions and records, peers served, ...)',
    labelNames: ['event'],
    registers,
    collect () {
      this.reset()
      for (const [k, n] of Object.entries(c.network.stats())) if (!NET_GAUGES.has(k)) this.inc({ event: snake(k) }, n)
    }
  })
  new Gauge({ // eslint-disable-line no-new
    name: 'swarmtune_net_gossip_topic_peers',
    help: 'Peers subscribed to the records topic',
    registers,
    collect () { this.set(c.network.stats().gossipTopicPeers ?? 0) }
  })
}

/** Control-API requests, by method, route (the registered path; `unmatched` otherwise) and status. */
export function createApiMetrics (register: Registry): Counter<'method' | 'route' | 'status'> {
  return new Counter({ name: 'swarmtune_api_requests_total', help: 'Control API requests by method, route and HTTP status', labelNames: ['method', 'route', 'status'], registers: [register] })
}

async function dirBytes (dir: string): Promise<number> {
  let total = 0
  try {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      if (e.isFile()) total += (await stat(join(dir, e.name)).catch(() => ({ size: 0 }))).size
    }
  } catch {}
  return total
}
