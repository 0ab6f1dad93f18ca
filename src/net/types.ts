import type { Registry } from 'prom-client'
import type { GossipSub } from '@libp2p/gossipsub'
import type { Libp2p, PrivateKey } from '@libp2p/interface'
import type { SignedRecord } from '../records/types.js'
import type { RecordStore } from '../store/types.js'
import type { Counters } from '../util/counters.js'

/** Names from DESIGN.md §5. */
export const RECORDS_TOPIC = '/swarmtune/records/1'
export const VOTES_TOPIC = '/swarmtune/votes/1'
export const SYNC_PROTOCOL = '/swarmtune/sync/1.0.0'
/** catch-up sync with runs attested by signed log heads (docs/records.md); served beside 1.0.0 */
export const SYNC2_PROTOCOL = '/swarmtune/sync/2.0.0'
export const RECOMMEND_PROTOCOL = '/swarmtune/recommend/1.0.0'
export const INFER_PROTOCOL = '/swarmtune/infer/1.0.0'
/** peer exchange: a newcomer learns more peers than its bootstrap list (src/net/peer-exchange.ts) */
export const PEERS_PROTOCOL = '/swarmtune/peers/1.0.0'

/** The `net` section of the config (config/default.json, config/schema.json). */
export interface NetConfig {
  listen: string[]
  announce: string[]
  bootstrap: string[]
  /** loopback swarm: relax per-IP limits and gossipsub IP colocation scoring */
  localTestbed: boolean
  allowPeers: string[]
  denyPeers: string[]
  /** peers given the RPC slots kept for peers with standing (issue #18), without excluding others as allowPeers does */
  priorityPeers?: string[]
  /**
   * maxVersion: highest sync version used as a client (default 2; 1 = /swarmtune/sync/1.0.0 only);
   * pack: as a 2.0.0 client, ask for records several to a frame (default true)
   */
  sync: { intervalMs: number, pageSize: number, timeoutMs: number, maxRecordsPerSession: number, maxVersion?: 1 | 2, pack?: boolean }
  /**
   * threads that verify record signatures (gossip and sync): 'auto' (default) = one per core, the
   * main thread only coordinating; 0 = verify inline on the main thread (testbeds with many
   * daemons on one box)
   */
  verifyWorkers?: number | 'auto'
  /** libp2p's and gossipsub's metrics on /metrics (default true; false measures their cost, #19) */
  metrics?: boolean
}

/** The gossip budgets of the `trust` config section that the network enforces (src/net/guard.ts). */
export interface GossipBudgetConfig {
  gossipPerPeerPerSecond?: number
  gossipBurst?: number
  gossipPerAuthorPerSecond?: number
  gossipAuthorBurst?: number
}

/** The slice of the node's config the network reads. */
export interface NetworkConfig { net: NetConfig, trust?: GossipBudgetConfig }

export interface NetworkComponents {
  config: NetworkConfig
  privateKey: PrivateKey
  store: RecordStore
  /** rejection counters by error code (shown in status and metrics); the network increments them */
  rejections: Counters
  /** called once for every record newly inserted from the network (gossip or sync) */
  onRecord?: (record: SignedRecord, via: 'gossip' | 'sync') => void
}

/** The node's libp2p side: records gossip + catch-up sync (issue #2). */
export interface SwarmNetwork {
  start(): Promise<void>
  stop(): Promise<void>
  readonly peerId: string
  /** the underlying libp2p node, for other protocols (recommend, infer) and topics (votes) */
  readonly libp2p: Libp2p<{ pubsub: GossipSub }>
  addresses(): string[]
  peerCount(): number
  /** gossip a record that is already durably stored (own records) */
  publishRecord(record: SignedRecord): Promise<void>
  /** run catch-up sync with every connected peer now (also runs on connect and on a timer) */
  syncNow(): Promise<void>
  /** counters of network activity: gossip received/accepted, sync records/sessions, etc. */
  stats(): Record<string, number>
}

/**
 * Tunables of the network layer that are not in the config file (defaults in src/net/limits.ts).
 * Tests and benchmarks shrink them; issue #7's flood control plugs in through `guard`.
 */
export interface NetworkLimits {
  /** largest sync frame carrying one record: a 64 KiB body + envelope + framing, with slack */
  maxRecordFrameBytes: number
  /** most authors a client may list in its heads message (the rest are synced from seq 1) */
  maxHeadsAuthors: number
  /** largest heads message a server accepts */
  maxHeadsFrameBytes: number
  /** a server ends a page after this many bytes even if pageSize records were not reached */
  maxPageBytes: number
  /** a whole sync session (all pages) must finish within this */
  sessionTimeoutMs: number
  /** concurrent inbound sync sessions per remote peer, and in total */
  maxInboundSyncPerPeer: number
  maxInboundSyncTotal: number
  /** concurrent outbound sync sessions when syncing with every peer */
  syncConcurrency: number
  /** re-dial disconnected bootstrap peers this often */
  bootstrapIntervalMs: number
  /** peer exchange dials discovered peers until this many are connected (0 turns it off) */
  targetPeers: number
  /** gossipsub P4 weight for invalid records on RECORDS_TOPIC (negative; squared counter; graylist at -16000) */
  invalidMessageWeight: number
  /** per-peer token buckets (#7): records topic messages per second, sync sessions per minute */
  gossipPerPeerPerSecond: number
  syncSessionsPerPeerPerMinute: number
}

/** Hooks for flood control and peer scoring (issue #7). Every method is optional. */
export interface NetworkGuard {
  /** before validating a gossip message relayed by `peer`; false → Ignore it unvalidated */
  admitGossip?: (peer: string) => boolean
  /** before serving an inbound sync session; false → refuse the stream */
  admitSync?: (peer: string) => boolean
  /** every refused input, attributed to the peer that sent it */
  onViolation?: (peer: string, code: string, via: 'gossip' | 'sync' | 'recommend' | 'infer') => void
  /**
   * gossipsub P5 application score, in graylist units: -1 reaches the graylist threshold on
   * its own (the network scales it to its thresholds, which are large, Lodestar-like)
   */
  appSpecificScore?: (peer: string) => number
  /**
   * false → hang up on `peer` now and refuse its connections (both directions) while it stays
   * false: a graylisted flooder is ignored by gossipsub, but every byte it keeps sending still
   * costs decryption and decoding
   */
  admitConnection?: (peer: string) => boolean
  /**
   * per-author gossip budget (issue #7): takes one unit of the budget of the author a gossiped
   * record claims, before any verification; false → Ignore it unverified (the relayer is not at
   * fault). Given back (refundGossipAuthor) unless the record turns out valid, new and really
   * that author's, so forged records cannot use up an honest author's budget for long
   */
  reserveGossipAuthor?: (author: string) => boolean
  refundGossipAuthor?: (author: string) => void
}

/**
 * Timing parameters a caller may set over src/net/libp2p.ts's choices: each object is spread over the
 * option object of the same part. Only the in-process simulation uses it, to slow every clock of
 * a node by one factor (time dilation); a daemon runs with none.
 */
export interface Libp2pTiming {
  /** gossipsub options in ms (heartbeatInterval, fanoutTTL, seenTTL, pruneBackoff, ...) */
  gossipsub?: Record<string, number>
  /** gossipsub peer-score parameters (decayInterval, retainScore) */
  scoreParams?: Record<string, number>
  /** per-topic score parameters merged into the records and votes topics (timeInMeshQuantum, ...) */
  topicScoreParams?: Record<string, number>
  /** libp2p connection manager (dialTimeout, addressDialTimeout, inboundUpgradeTimeout, ...) */
  connectionManager?: Record<string, number>
  /** libp2p connection monitor (enabled, pingInterval) */
  connectionMonitor?: { enabled?: boolean, pingInterval?: number }
  /** yamux (enableKeepAlive, keepAliveInterval) */
  yamux?: { enableKeepAlive?: boolean, keepAliveInterval?: number }
  /** identify (timeout) */
  identify?: { timeout?: number }
}

export interface NetworkInit {
  limits?: Partial<NetworkLimits>
  guard?: NetworkGuard
  /** sync with each peer once identify completes (default true; tests of single sessions turn it off) */
  syncOnConnect?: boolean
  /** export libp2p's and gossipsub's metrics on this prom-client registry */
  metrics?: Registry
  /** timing knobs for libp2p and gossipsub (the time-dilated simulation; daemons leave it unset) */
  timing?: Libp2pTiming
  /** verifies gossip and sync records instead of net.verifyWorkers' pool (the simulation's timed cost model) */
  verifier?: {
    verify: (wire: Uint8Array, now?: number) => Promise<SignedRecord>
    check?: (wire: Uint8Array, now?: number) => Promise<SignedRecord>
  }
}
