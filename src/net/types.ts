import type { Libp2p, PrivateKey } from '@libp2p/interface'
import type { SignedRecord } from '../records/types.js'
import type { RecordStore } from '../store/types.js'
import type { SwarmtuneConfig } from '../node/config.js'
import type { Counters } from '../util/counters.js'

/** Names from DESIGN.md §5. */
export const RECORDS_TOPIC = '/swarmtune/records/1'
export const VOTES_TOPIC = '/swarmtune/votes/1'
export const SYNC_PROTOCOL = '/swarmtune/sync/1.0.0'
export const RECOMMEND_PROTOCOL = '/swarmtune/recommend/1.0.0'
export const INFER_PROTOCOL = '/swarmtune/infer/1.0.0'

export interface NetworkComponents {
  config: SwarmtuneConfig
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
  readonly libp2p: Libp2p
  addresses(): string[]
  peerCount(): number
  /** gossip a record that is already durably stored (own records) */
  publishRecord(record: SignedRecord): Promise<void>
  /** run catch-up sync with every connected peer now (also runs on connect and on a timer) */
  syncNow(): Promise<void>
  /** counters of network activity: gossip received/accepted, sync records/sessions, etc. */
  stats(): Record<string, number>
}
