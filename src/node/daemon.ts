import { join } from 'node:path'
import { createRecord } from '../records/sign.js'
import { recordVersionFor, type SignedRecord, type UnsignedBody } from '../records/types.js'
import { validateBody } from '../records/validate.js'
import { createRecordStore } from '../store/record-store.js'
import { removeStaleModelTemps } from '../engine/models.js'
import { createNetwork } from '../net/index.js'
import { createPeerGuard, createTokenBucket, DEFAULT_GUARD } from '../net/guard.js'
import type { NetworkInit, SwarmNetwork } from '../net/types.js'
import { Counters } from '../util/counters.js'
import { SwarmtuneError } from '../util/errors.js'
import { log } from '../util/log.js'
import { createApi } from './api.js'
import { createApiMetrics, createMetricsRegistry, registerCoreMetrics } from './metrics.js'
import { isLoopbackHost } from './api-access.js'
import { loadApiToken, type ApiToken } from './api-token.js'
import type { SwarmtuneConfig } from './config.js'
import { loadOrCreateIdentity } from './identity.js'
import { createLoopMonitor } from './loop-monitor.js'
import { registerCoreRoutes } from './routes.js'
import { registerDashboardRoutes } from './dashboard.js'
import { createServices, SERVICE_NAMES, type NodeServices, type ServiceName } from './services.js'
import type { CoreComponents } from './types.js'
import type { OwnRecordsOptions, RecordEventDetail } from '../contracts/records.js'
import type { Startable } from '../contracts/service.js'
import type { ControlApi } from '../contracts/api.js'
import type { Registry } from 'prom-client'

/**
 * A node daemon: identity → store → network → control API → services (src/node/services.ts),
 * started in that order and stopped in reverse.
 */
export interface Daemon {
  start: () => Promise<void>
  stop: () => Promise<void>
  /** available once started */
  readonly components: CoreComponents
  /** the services running on top of the core, available once started */
  readonly services: NodeServices
  /** the API's bearer token and whether requests need it (available once started) */
  readonly apiAccess: { required: boolean, token: ApiToken }
}

export interface DaemonOptions {
  /** which of the node's services to run (default all: SERVICE_NAMES) */
  services?: readonly ServiceName[]
  /** extra services built on the core, started after the node's own (tests, embedders) */
  extraServices?: Array<(core: CoreComponents) => Startable>
  network?: NetworkInit
  /** how long a stop waits for the control API's requests in flight (default SHUTDOWN_GRACE_MS) */
  shutdownGraceMs?: number
}

/** At most this long for in-flight requests at shutdown (issue #18: exit within 1 s plus in-flight work, at most 10 s). */
export const SHUTDOWN_GRACE_MS = 10_000

export function createDaemon (config: SwarmtuneConfig, opts: DaemonOptions = {}): Daemon {
  const logger = log('daemon')
  let components: CoreComponents | undefined
  let services: NodeServices | undefined
  /** what has started, to stop in reverse (also after a failed start) */
  const running: Array<{ name: string, stop: () => Promise<void> | void }> = []
  let apiAccess: { required: boolean, token: ApiToken } | undefined

  async function stop (): Promise<void> {
    // stop accepting at once, let the requests in flight finish (bounded), then stop the rest
    const drainStarted = performance.now()
    await components?.api.drain?.(opts.shutdownGraceMs ?? SHUTDOWN_GRACE_MS)
    if (components != null) logger('api drained in %d ms', Math.round(performance.now() - drainStarted))
    while (running.length > 0) {
      const s = running.pop()!
      const t0 = performance.now()
      try {
        await s.stop()
        logger('stopped %s in %d ms', s.name, Math.round(performance.now() - t0))
      } catch (err) {
        logger.error('stopping %s failed: %s', s.name, (err as Error).message)
      }
    }
  }

  async function start (): Promise<void> {
    const startedAt = Date.now()
    const { privateKey, peerId } = await loadOrCreateIdentity(config.dataDir)
    const author = peerId.toString()
    const store = createRecordStore({ path: join(config.dataDir, 'store'), maxRecords: config.store.maxRecords, writeBufferMb: config.store.writeBufferMb, ownAuthor: author, dataDir: config.dataDir })
    const rejections = new Counters()
    const events = new EventTarget()
    const emit = (detail: RecordEventDetail): void => { events.dispatchEvent(new CustomEvent('record', { detail })) }
    let network: SwarmNetwork | undefined
    // own gossip stays within what neighbours accept from one peer (src/net/guard.ts); the rest goes by sync
    const gossipBudget = createTokenBucket(config.trust?.gossipPerPeerPerSecond ?? DEFAULT_GUARD.gossipPerPeerPerSecond, config.trust?.gossipBurst ?? DEFAULT_GUARD.gossipBurst)

    const ownRecords = createOwnRecordsWriter({ store, privateKey, author, logger, gossipBudget, emit, network: () => network })

    // event-loop delay from the first moment: a stalled loop is what every request waits on
    const loop = createLoopMonitor()
    loop.start()
    running.push({ name: 'loop-monitor', stop: () => { loop.stop() } })
    await store.start()
    running.push({ name: 'store', stop: async () => { await store.stop() } })
    // the data dir is ours now (the store's lock): drop model temp files a killed writer left
    await reportStaleModelTemps(config.dataDir, logger)
    try {
      // flood control and allow/deny lists (src/net/guard.ts), unless the caller brings its own guard
      const peerGuard = opts.network?.guard == null
        ? createPeerGuard({ allowPeers: config.net.allowPeers, denyPeers: config.net.denyPeers, priorityPeers: config.net.priorityPeers, gossipPerPeerPerSecond: config.trust?.gossipPerPeerPerSecond, gossipBurst: config.trust?.gossipBurst, gossipPerAuthorPerSecond: config.trust?.gossipPerAuthorPerSecond, gossipAuthorBurst: config.trust?.gossipAuthorBurst })
        : undefined
      const metrics = createMetricsRegistry()
      const net = network = createNetwork({ config, privateKey, store, rejections, onRecord: (record, via) => { emit({ record, via }) } }, { ...opts.network, metrics, ...(peerGuard != null ? { guard: peerGuard } : {}) })
      await net.start()
      running.push({ name: 'network', stop: async () => { await net.stop() } })
      const { api, access } = createControlApi(config, metrics)
      apiAccess = access
      components = {
        config,
        privateKey,
        peerId,
        store,
        network: net,
        api,
        rejections,
        events,
        ownRecords,
        ownRecord: async body => (await ownRecords([body]))[0],
        metrics,
        startedAt,
        loop,
        ...(peerGuard != null ? { peerGuard } : {})
      }
      registerCoreMetrics(metrics, components)
      registerCoreRoutes(components)
      registerDashboardRoutes(components.api)
      // store health (issue #18): a failed write shows here until a later write succeeds
      api.statusContributors.set('store', () => store.health?.() ?? { healthy: true, error: null })
      const core = components
      services = createServices(core, opts.services ?? SERVICE_NAMES)
      const all: Array<[string, Startable]> = [...services.ordered, ...(opts.extraServices ?? []).map((f, i): [string, Startable] => [f.name || `extra-${i}`, f(core)])]
      await api.start()
      running.push({ name: 'api', stop: async () => { await api.stop() } })
      for (const [name, svc] of all) {
        await svc.start()
        running.push({ name, stop: async () => { await svc.stop() } })
      }
      components.api.ready?.()
      logger('started %s', author)
    } catch (err) {
      await stop()
      throw err
    }
  }

  return {
    start,
    stop,
    get components () {
      if (components == null) throw new SwarmtuneError('E_NOT_STARTED', 'the daemon is not started')
      return components
    },
    get services () {
      if (services == null) throw new SwarmtuneError('E_NOT_STARTED', 'the daemon is not started')
      return services
    },
    get apiAccess () {
      if (apiAccess == null) throw new SwarmtuneError('E_NOT_STARTED', 'the daemon is not started')
      return apiAccess
    }
  }
}

/** Remove stale `*.gguf.tmp-*` files (issue #18); one line on stderr when any were removed. */
async function reportStaleModelTemps (dataDir: string, logger: ReturnType<typeof log>): Promise<void> {
  try {
    const t = await removeStaleModelTemps(dataDir)
    if (t.removed > 0) process.stderr.write(`swarmtune: removed ${t.removed} stale model temp file(s) (${t.bytes} bytes) left in ${join(dataDir, 'models')} by a writer that was killed\n`)
  } catch (err) {
    // a cleanup that fails must not keep the node from starting
    logger.error('cleaning model temp files failed: %s', (err as Error).message)
  }
}

/**
 * Stop the daemon on SIGINT/SIGTERM (a second signal exits at once). Returns a promise that
 * resolves after the stop, with the signal name.
 */
export function stopOnSignals (daemon: Daemon): Promise<string> {
  return new Promise(resolve => {
    let stopping = false
    const onSignal = (sig: NodeJS.Signals): void => {
      if (stopping) process.exit(130)
      stopping = true
      daemon.stop().finally(() => {
        process.off('SIGINT', onSignal)
        process.off('SIGTERM', onSignal)
        resolve(sig)
      })
    }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
  })
}

interface OwnRecordsInit {
  store: CoreComponents['store']
  privateKey: CoreComponents['privateKey']
  author: string
  logger: ReturnType<typeof log>
  /** own gossip stays within what neighbours accept from one peer; the rest goes by sync */
  gossipBudget: () => boolean
  emit: (detail: RecordEventDetail) => void
  network: () => SwarmNetwork | undefined
}

/**
 * The node's one path for local records (import, bench, serving): validate, sign with the next
 * seq, store durably as own, then gossip. Serialized: seq allocation, signing and the durable
 * write must not interleave.
 */
function createOwnRecordsWriter (init: OwnRecordsInit): (bodies: UnsignedBody[], opts?: OwnRecordsOptions) => Promise<SignedRecord[]> {
  const { store, privateKey, author, logger } = init
  let ownLock: Promise<unknown> = Promise.resolve()
  return async function ownRecords (bodies, opts = {}) {
    const run = async (): Promise<SignedRecord[]> => {
      const now = Date.now()
      let seq = await store.nextSeq(author)
      const records: SignedRecord[] = []
      for (const unsigned of bodies) {
        const body = { ...unsigned, v: recordVersionFor(unsigned), author, seq, timestamp: unsigned.timestamp ?? now }
        validateBody(body, now)
        records.push(await createRecord(privateKey, author, seq++, body, now))
      }
      const statuses = await store.putMany(records, { own: true, tags: opts.tags })
      const bad = statuses.findIndex(s => s !== 'inserted')
      if (bad >= 0) throw new SwarmtuneError('E_OWN_SEQ', `own record seq ${records[bad].body.seq} was already taken (${statuses[bad]})`)
      return records
    }
    const done = ownLock.then(run, run)
    ownLock = done.catch(() => {})
    const records = await done
    // durable first, then gossip: a publish failure (no peers yet) is repaired by sync
    for (const r of records) {
      init.emit({ record: r, via: 'own' })
      if (!init.gossipBudget()) continue
      init.network()?.publishRecord(r).catch(err => { logger('publish %s: %s', r.id, (err as Error).message) })
    }
    return records
  }
}

/** The control API with its access rules (issue #18) and request metrics. */
function createControlApi (config: SwarmtuneConfig, metrics: Registry): { api: ControlApi, access: { required: boolean, token: ApiToken } } {
  // beyond loopback every request needs the token: created on first start
  const required = config.api.requireToken === true || !isLoopbackHost(config.api.host)
  const token = loadApiToken(config.dataDir, required)
  const apiRequests = createApiMetrics(metrics)
  const api = createApi({
    host: config.api.host,
    port: config.api.port,
    allowHosts: config.api.allowHosts,
    allowOrigins: config.api.allowOrigins,
    token: token.token,
    requireToken: required,
    onAnswered: (method, route, status) => { apiRequests.inc({ method, route, status: String(status) }) }
  })
  return { api, access: { required, token } }
}
