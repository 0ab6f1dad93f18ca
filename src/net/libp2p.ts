import { createHash } from 'node:crypto'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { gossipsub, type GossipSub } from '@libp2p/gossipsub'
import { identify, type Identify } from '@libp2p/identify'
import { memory } from '@libp2p/memory'
import { tcp } from '@libp2p/tcp'
import { withCoalescedWrites } from './coalesce-writes.js'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2p } from 'libp2p'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import { SwarmtuneError } from '../util/errors.js'
import type { Logger } from '../util/log.js'
import { RECORDS_TOPIC, VOTES_TOPIC, type Libp2pTiming, type NetworkConfig, type NetworkGuard, type NetworkLimits } from './types.js'
import { prometheusMetrics } from '@libp2p/prometheus-metrics'
import type { Registry } from 'prom-client'
import { gossipsubMetricsRegister } from './metrics.js'

export type SwarmLibp2p = Libp2p<{ pubsub: GossipSub, identify: Identify }>

export interface SwarmLibp2pOptions {
  config: NetworkConfig
  privateKey: PrivateKey
  limits: NetworkLimits
  guard?: NetworkGuard
  /** export libp2p's and gossipsub's metrics on this registry (the daemon's /metrics) */
  metrics?: Registry
  /** timing knobs over the defaults below (the time-dilated simulation, src/testbed/dilation.ts); daemons leave it unset */
  timing?: Libp2pTiming
}

/** Records are self-signed and content-addressed: the gossip message id is the hash of its data. */
export function contentMsgId (msg: { data: Uint8Array }): Uint8Array {
  return createHash('sha256').update(msg.data).digest()
}

/**
 * Score thresholds scaled like Lodestar's (the gossipsub defaults, -10/-50/-80, let a single
 * broken IWANT promise, weight -10, push an honest but busy peer below the gossip threshold: it
 * is pruned from every mesh and delivery falls back to 1 s heartbeat gossip, or is lost).
 */
export const SCORE_THRESHOLDS = {
  gossipThreshold: -4000,
  publishThreshold: -8000,
  graylistThreshold: -16000,
  acceptPXThreshold: 100,
  opportunisticGraftThreshold: 5
} as const

/** messages at least this large get gossipsub IDONTWANTs (see createSwarmLibp2p) */
export const IDONTWANT_MIN_BYTES = 16 * 1024

/** P5 weight is gossipsub's default 10: one guard unit is exactly the graylist threshold. */
const APP_SPECIFIC_WEIGHT = 10
const APP_SCORE_UNIT = -SCORE_THRESHOLDS.graylistThreshold / APP_SPECIFIC_WEIGHT

/** Gossipsub scoring for the records topic (issue #7): invalid records push the relayer to the graylist. */
export function recordsTopicScoreParams (limits: NetworkLimits): Record<string, unknown> {
  return {
    topicWeight: 1,
    timeInMeshWeight: 0.0027,
    timeInMeshQuantum: 1000,
    timeInMeshCap: 3600,
    firstMessageDeliveriesWeight: 1,
    firstMessageDeliveriesDecay: 0.9,
    firstMessageDeliveriesCap: 10,
    // records are rare and bursty: a quiet mesh peer is not a faulty one, so no P3/P3b penalty
    meshMessageDeliveriesWeight: 0,
    meshFailurePenaltyWeight: 0,
    // P4: the counter is squared: with weight -40, 20 outstanding invalid records reach the
    // graylist (-16000); honest peers never relay one (validators gate forwarding)
    invalidMessageDeliveriesWeight: limits.invalidMessageWeight,
    invalidMessageDeliveriesDecay: 0.9
  }
}

/**
 * The transport follows the addresses: `/memory/<name>` listen or bootstrap addresses select
 * @libp2p/memory (in-process, for the 1,000-peer simulation in src/testbed/simulation.ts: the
 * same node, gossipsub settings and validators as a daemon, only the wire differs); else TCP.
 */
export function usesMemoryTransport (net: Pick<NetworkConfig['net'], 'listen' | 'bootstrap'>): boolean {
  return [...net.listen, ...net.bootstrap].some(a => a.startsWith('/memory/'))
}

/** Build (not start) the libp2p node: TCP (or memory) + noise + yamux + identify + gossipsub 17. */
export async function createSwarmLibp2p (opts: SwarmLibp2pOptions): Promise<SwarmLibp2p> {
  const { config, privateKey, limits, guard } = opts
  const net = config.net
  // net.metrics: false leaves libp2p's and gossipsub's metrics off (the registry keeps the node's own)
  const metrics = net.metrics === false ? undefined : opts.metrics
  const deny = new Set(net.denyPeers)
  // issue #7: a non-empty allow list admits only the peers it names (deny still wins)
  const allow = new Set(net.allowPeers ?? [])
  const refused = (peer: PeerId): boolean => deny.has(peer.toString()) || (allow.size > 0 && !allow.has(peer.toString())) || guard?.admitConnection?.(peer.toString()) === false
  const local = net.localTestbed
  const t = opts.timing ?? {}
  const topicParams = (): never => ({ ...recordsTopicScoreParams(limits), ...t.topicScoreParams }) as never
  try {
    return await createLibp2p({
      privateKey,
      start: false,
      // a separate registry per node (not prom-client's global one): several nodes may share a process
      ...(metrics != null ? { metrics: prometheusMetrics({ registry: metrics }) } : {}),
      addresses: { listen: net.listen, announce: net.announce },
      // one socket write per loop turn, not per frame (coalesce-writes.ts, issue #19)
      transports: usesMemoryTransport(net) ? [memory()] : [withCoalescedWrites(tcp())],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux({ ...t.yamux })],
      connectionManager: local
        ? {
            // many peers on one host: the per-IP inbound rate limit would refuse most of them
            allow: ['/ip4/127.0.0.0/ipcidr/8'],
            inboundConnectionThreshold: 1000,
            maxIncomingPendingConnections: 100,
            ...t.connectionManager
          }
        : { ...t.connectionManager },
      // a busy node answers pings late; aborting the connection for it (the default) made loaded
      // peers drop out of the swarm and redial in a loop. Dead peers are still found by the
      // muxer's keep-alive and by TCP.
      connectionMonitor: { abortConnectionOnPingFailure: false, ...t.connectionMonitor },
      connectionGater: {
        denyDialPeer: refused,
        denyInboundEncryptedConnection: refused,
        denyOutboundEncryptedConnection: refused
      },
      services: {
        identify: identify({ ...t.identify }),
        pubsub: gossipsub({
          globalSignaturePolicy: 'StrictNoSign',
          msgIdFn: contentMsgId,
          allowPublishToZeroTopicPeers: true,
          ...(metrics != null ? { metricsRegister: gossipsubMetricsRegister(metrics), metricsTopicStrToLabel: new Map([[RECORDS_TOPIC, 'records'], [VOTES_TOPIC, 'votes']]) } : {}),
          ignoreDuplicatePublishError: true,
          emitSelf: false,
          allowedTopics: [RECORDS_TOPIC, '/swarmtune/votes/1'],
          // IDONTWANT (gossipsub 1.2) goes to every mesh peer for every new message over this size,
          // BEFORE the topic validator runs: a flooder's messages, even those the guard drops,
          // made each honest peer send an RPC per message per mesh peer (issue #7: most of an
          // honest daemon's CPU during a flood). Records are ~1 KiB, where the duplicate it
          // saves costs less than the RPC; only unusually large records still use it.
          idontwantMinDataSize: IDONTWANT_MIN_BYTES,
          ...t.gossipsub,
          scoreThresholds: { ...SCORE_THRESHOLDS },
          scoreParams: {
            IPColocationFactorWeight: local ? 0 : -5,
            // P7 (broken IWANT promises, GRAFT during backoff): tolerate a few on a loaded machine
            behaviourPenaltyWeight: -10,
            behaviourPenaltyThreshold: 6,
            behaviourPenaltyDecay: 0.9,
            // the guard speaks in graylist units (-1 = graylisted by P5 alone); scale to our thresholds
            appSpecificWeight: APP_SPECIFIC_WEIGHT,
            appSpecificScore: (p: string) => (guard?.appSpecificScore?.(p) ?? 0) * APP_SCORE_UNIT,
            // votes are scored like records: a forged or garbage vote (Reject) counts as P4 too
            topics: { [RECORDS_TOPIC]: topicParams(), [VOTES_TOPIC]: topicParams() },
            ...t.scoreParams
          }
        })
      }
    })
  } catch (err) {
    throw new SwarmtuneError('E_NET_CONFIG', `cannot create the libp2p node: ${(err as Error).message}`, { cause: err })
  }
}

/**
 * Keeps the configured bootstrap peers connected: dials each by multiaddr at start and again
 * whenever it is disconnected (dialing by peer id fails before identify has run).
 */
export class Bootstrapper {
  private timer?: ReturnType<typeof setInterval>
  private readonly targets: Array<{ addr: Multiaddr, peer: string }> = []
  private readonly inFlight = new Set<string>()

  constructor (private readonly node: SwarmLibp2p, addrs: string[], private readonly intervalMs: number, private readonly log: Logger) {
    const self = node.peerId.toString()
    for (const a of addrs) {
      try {
        const addr = multiaddr(a)
        const peer = addr.getComponents().filter(c => c.name === 'p2p').pop()?.value
        if (peer == null || peer === self) continue
        this.targets.push({ addr, peer })
      } catch (err) {
        log.error('ignoring bad bootstrap address %s: %s', a, (err as Error).message)
      }
    }
  }

  start (): void {
    if (this.targets.length === 0) return
    this.tick()
    this.timer = setInterval(() => { this.tick() }, this.intervalMs)
    this.timer.unref?.()
  }

  stop (): void {
    if (this.timer != null) clearInterval(this.timer)
    this.timer = undefined
  }

  private tick (): void {
    const connected = new Set(this.node.getConnections().map(c => c.remotePeer.toString()))
    for (const t of this.targets) {
      if (connected.has(t.peer) || this.inFlight.has(t.peer)) continue
      this.inFlight.add(t.peer)
      this.node.dial(t.addr)
        .then(() => { this.log('connected to bootstrap peer %s', t.peer) })
        .catch((err: Error) => { this.log('bootstrap dial %a failed: %s', t.addr, err.message) })
        .finally(() => { this.inFlight.delete(t.peer) })
    }
  }
}
