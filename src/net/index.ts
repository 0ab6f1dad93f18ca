import type { PeerId } from '@libp2p/interface'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import type { SignedRecord } from '../records/types.js'
import { signLogHead } from '../records/log-head.js'
import { Counters } from '../util/counters.js'
import { SwarmtuneError } from '../util/errors.js'
import { log } from '../util/log.js'
import { createIngest, type Ingest } from './ingest.js'
import { createRateGuard, resolveLimits } from './limits.js'
import { Bootstrapper, createSwarmLibp2p, type SwarmLibp2p } from './libp2p.js'
import { createPacer } from './pacer.js'
import { createVerifyPool, resolveVerifyWorkers, type VerifyPool } from './verify-pool.js'
import { PeerExchange } from './peer-exchange.js'
import { RecordsTopic } from './records-topic.js'
import { SyncService, type SyncResult } from './sync.js'
import { createTokenBucket, DEFAULT_GUARD } from './guard.js'
import { PEERS_PROTOCOL, RECORDS_TOPIC, SYNC2_PROTOCOL, SYNC_PROTOCOL, type NetworkComponents, type NetworkGuard, type NetworkInit, type NetworkLimits, type SwarmNetwork } from './types.js'

export * from './types.js'
export { DEFAULT_LIMITS, WindowLimiter } from './limits.js'
export { validatorResult } from './records-topic.js'
export type { SyncResult } from './sync.js'
export type { SwarmLibp2p } from './libp2p.js'

/** The concrete network: SwarmNetwork plus a few handles tests and benchmarks use. */
export interface SwarmNetworkNode extends SwarmNetwork {
  readonly libp2p: SwarmLibp2p
  readonly limits: NetworkLimits
  /** catch up from one connected peer now */
  syncWith(peer: PeerId): Promise<SyncResult>
}

class Network implements SwarmNetworkNode {
  private readonly log = log('net')
  private readonly stats_ = new Counters()
  private node?: SwarmLibp2p
  private topic?: RecordsTopic
  private sync?: SyncService
  private bootstrap?: Bootstrapper
  private px?: PeerExchange
  private timer?: ReturnType<typeof setInterval>
  private pxTimer?: ReturnType<typeof setInterval>
  private running = false
  private pool?: VerifyPool
  readonly peerId: string

  constructor (private readonly c: NetworkComponents, readonly limits: NetworkLimits, private readonly init: NetworkInit) {
    this.peerId = peerIdFromPrivateKey(c.privateKey).toString()
  }

  /** the libp2p node; exists once start() has begun (libp2p 3 builds its node asynchronously) */
  get libp2p (): SwarmLibp2p {
    if (this.node == null) throw new SwarmtuneError('E_NOT_STARTED', 'the network is not started')
    return this.node
  }

  async start (): Promise<void> {
    if (this.running) return
    this.running = true
    try {
      await this.startInner()
    } catch (err) {
      this.running = false
      try { await this.node?.stop() } catch {}
      if (err instanceof SwarmtuneError) throw err
      const busy = busyListenAddrs(err)
      // libp2p's own message is a multi-line stack with transport-manager advice: say it in one line
      if (busy.length > 0) throw new SwarmtuneError('E_LISTEN_PORT_IN_USE', `libp2p listen address ${busy.join(', ')} is in use (set --listen, e.g. --listen /ip4/0.0.0.0/tcp/4201)`, { cause: err })
      throw new SwarmtuneError('E_NET_START', `network start failed: ${(err as Error)?.message}`, { cause: err })
    }
  }

  private async startInner (): Promise<void> {
    const { c, limits } = this
    const guard = createRateGuard(limits, this.init.guard, (peer, via) => {
      this.stats_.inc(via === 'gossip' ? 'gossipRateLimited' : 'syncRateLimited')
      this.log('rate limit hit by %s on %s', peer, via)
    }, c.config.net.allowPeers)
    const node = this.node ??= await createSwarmLibp2p({ config: c.config, privateKey: c.privateKey, limits, guard: this.init.guard, metrics: this.init.metrics, timing: this.init.timing })
    // issue #7: a peer the guard has banned (graylisted flooder) is hung up on at once; the
    // connection gater keeps it out while the ban lasts
    const hanging = new Set<string>()
    const hangUpIfBanned = (peer: string): void => {
      if (hanging.has(peer) || this.init.guard?.admitConnection?.(peer) !== false) return
      hanging.add(peer)
      this.stats_.inc('guardHangUps')
      this.log('hanging up on banned peer %s', peer)
      node.hangUp(peerIdFromString(peer)).catch(() => {}).finally(() => { hanging.delete(peer) })
    }
    const netGuard: NetworkGuard = {
      ...guard,
      admitGossip: (peer) => {
        const ok = guard.admitGossip?.(peer) ?? true
        if (!ok) hangUpIfBanned(peer)
        return ok
      },
      onViolation: (peer, code, via) => {
        guard.onViolation?.(peer, code, via)
        hangUpIfBanned(peer)
      }
    }
    // issue #7 partitions: a record learned by sync is gossiped on (within the per-peer budget), so
    // after a heal it spreads through each half at gossip speed instead of waiting for the next sync round
    const relay = createTokenBucket(c.config.trust?.gossipPerPeerPerSecond ?? DEFAULT_GUARD.gossipPerPeerPerSecond, c.config.trust?.gossipBurst ?? DEFAULT_GUARD.gossipBurst)
    const relayOne = (record: SignedRecord): void => {
      if (!this.running || !relay()) return
      this.topic?.publish(record).then(() => { this.stats_.inc('syncRelayed') }, () => {})
    }
    const onRecord = (record: SignedRecord, via: 'gossip' | 'sync', attested?: boolean): void => {
      c.onRecord?.(record, via)
      // a record taken in through its author's log head (sync 2.0.0) is relayed once the
      // background check (UncheckedChecker) has verified its own signature, not verified a second
      // time here on the catch-up's path: an author could sign a head over a record whose own
      // signature is broken, and gossip peers would charge us, the relayer, for it
      if (via === 'sync' && attested !== true) relayOne(record)
    }
    // gossip and sync share one pacer: verification bursts yield the event loop every few ms
    const pacer = createPacer()
    const verifier = this.init.verifier ?? (this.pool = this.startPool())
    const ingest: Ingest = createIngest({ store: c.store, rejections: c.rejections, stats: this.stats_, log: this.log, onRecord, pacer, verifier })
    this.topic = new RecordsTopic({ pubsub: node.services.pubsub, ingest, stats: this.stats_, guard: netGuard, pacer, log: log('net:gossip') })
    const sync = this.sync = new SyncService({
      config: c.config,
      limits,
      store: c.store,
      ingest,
      stats: this.stats_,
      rejections: c.rejections,
      guard: netGuard,
      log: log('net:sync'),
      connectionTo: (peer) => node.getConnections(peer).find(conn => conn.status === 'open'),
      self: { author: this.peerId, sign: async (length, root) => await signLogHead(c.privateKey, this.peerId, length, root) },
      maxVersion: c.config.net.sync.maxVersion ?? 2,
      relayChecked: relayOne
    })
    this.bootstrap = new Bootstrapper(node, c.config.net.bootstrap, limits.bootstrapIntervalMs, log('net:bootstrap'))
    sync.start()
    const px = this.px = new PeerExchange(node, { targetPeers: limits.targetPeers, timeoutMs: c.config.net.sync.timeoutMs }, this.stats_, log('net:px'))
    if (limits.targetPeers > 0) await px.start()
    await node.handle([SYNC2_PROTOCOL, SYNC_PROTOCOL], async (stream, conn) => { await sync.handle(stream, conn) }, {
      // our own per-peer counter refuses (and counts) first; this is the hard stop behind it
      maxInboundStreams: limits.maxInboundSyncPerPeer + 2,
      maxOutboundStreams: 4,
      force: true
    })
    await node.start()
    this.topic.start()
    // catch up with every peer as soon as identify says it speaks sync (both sides do this)
    node.addEventListener('peer:identify', this.onIdentify)
    this.timer = setInterval(() => { void this.syncNow() }, c.config.net.sync.intervalMs)
    this.timer.unref?.()
    this.pxTimer = setInterval(() => { this.discover() }, limits.bootstrapIntervalMs)
    this.pxTimer.unref?.()
    this.bootstrap.start()
  }

  /** the verification pool of `net.verifyWorkers`; none (verify inline) for 0 or when the worker cannot start */
  private startPool (): VerifyPool | undefined {
    const n = resolveVerifyWorkers(this.c.config.net.verifyWorkers)
    if (n === 0) return undefined
    try {
      return createVerifyPool({
        size: n,
        onCrash: (err) => {
          this.stats_.inc('verifyWorkerCrashes')
          this.log.error('verification worker crashed (restarting it): %s', (err as Error)?.message)
        }
      })
    } catch (err) {
      this.log.error('verifying inline: %s', (err as Error)?.message)
      return undefined
    }
  }

  private readonly onIdentify = (evt: CustomEvent<{ peerId: PeerId, protocols: string[] }>): void => {
    if (!this.running) return
    const { peerId, protocols } = evt.detail
    if (this.limits.targetPeers > 0 && protocols.includes(PEERS_PROTOCOL)) void this.px?.discoverVia(peerId)
    if (this.init.syncOnConnect !== false && (protocols.includes(SYNC_PROTOCOL) || protocols.includes(SYNC2_PROTOCOL))) void this.sync?.syncWith(peerId).catch(() => {})
  }

  /** below the target degree: ask a random connected peer for more */
  private discover (): void {
    const peers = this.node?.getPeers() ?? []
    if (this.px == null || this.limits.targetPeers === 0 || peers.length === 0 || peers.length >= this.limits.targetPeers) return
    void this.px.discoverVia(peers[Math.floor(Math.random() * peers.length)])
  }

  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    if (this.timer != null) clearInterval(this.timer)
    if (this.pxTimer != null) clearInterval(this.pxTimer)
    this.bootstrap?.stop()
    this.node?.removeEventListener('peer:identify', this.onIdentify)
    this.sync?.stop()
    this.px?.stop()
    this.topic?.stop()
    await this.node?.stop()
    // after libp2p: validators still waiting get a retry verdict (Ignore), never an accept
    await this.pool?.close()
    this.pool = undefined
  }

  addresses (): string[] {
    return this.node?.getMultiaddrs().map(ma => ma.toString()) ?? []
  }

  peerCount (): number {
    return this.node?.getPeers().length ?? 0
  }

  async publishRecord (record: SignedRecord): Promise<void> {
    if (this.topic == null || !this.running) return // not started: sync delivers it later
    await this.topic.publish(record)
  }

  async syncWith (peer: PeerId): Promise<SyncResult> {
    if (this.sync == null) return { peer: peer.toString(), ok: false, received: 0, inserted: 0, pages: 0, code: 'E_NOT_STARTED' }
    return await this.sync.syncWith(peer)
  }

  async syncNow (): Promise<void> {
    const sync = this.sync
    if (!this.running || sync == null || this.node == null) return
    const peers = this.node.getPeers()
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < peers.length) {
        const p = peers[next++]
        await sync.syncWith(p).catch(() => {})
      }
    }
    await Promise.all(Array.from({ length: Math.min(this.limits.syncConcurrency, peers.length) }, worker))
  }

  stats (): Record<string, number> {
    const out = this.stats_.toJSON()
    out.peers = this.peerCount()
    out.gossipTopicPeers = this.node?.services.pubsub.getSubscribers(RECORDS_TOPIC).length ?? 0
    if (this.pool != null) {
      // batches per record checked: how much each worker message carries
      const ps = this.pool.stats()
      out.verifyPoolBatches = ps.batches
      out.verifyPoolRecords = ps.verified
    }
    return out
  }
}

/** Build the node's network; start() creates libp2p, listens, subscribes, bootstraps and syncs. */
export function createNetwork (components: NetworkComponents, init: NetworkInit = {}): SwarmNetworkNode {
  return new Network(components, resolveLimits(init.limits), init)
}

/** The listen multiaddrs a libp2p start failure names as EADDRINUSE (its message lists one per line). */
export function busyListenAddrs (err: unknown): string[] {
  const text = String((err as Error)?.message ?? err)
  const found = [...text.matchAll(/^\s*(\/\S+): Error: listen EADDRINUSE/gm)].map(m => m[1])
  return found.length > 0 || !/EADDRINUSE/.test(text) ? found : ['(one of --listen)']
}

