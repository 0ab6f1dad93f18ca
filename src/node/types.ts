import type { PeerId, PrivateKey } from '@libp2p/interface'
import type { SignedRecord, UnsignedBody } from '../records/types.js'
import type { RecordStore } from '../store/types.js'
import type { SwarmNetwork } from '../net/types.js'
import type { Counters } from '../util/counters.js'
import type { ControlApi } from './api.js'
import type { SwarmtuneConfig } from './config.js'
import type { PeerGuard } from '../net/guard.js'
import type { LoopMonitor } from './loop-monitor.js'

/** How a record reached this node: its own (import, bench, serving) or from a peer. */
export type RecordVia = 'own' | 'gossip' | 'sync'
export interface RecordEventDetail { record: SignedRecord, via: RecordVia }

/**
 * Everything a node service gets (src/node/services.ts). `events` emits 'record'
 * (CustomEvent<RecordEventDetail>) once for every record newly stored, own or from the network.
 */
export interface NodeComponents {
  config: SwarmtuneConfig
  privateKey: PrivateKey
  peerId: PeerId
  store: RecordStore
  network: SwarmNetwork
  api: ControlApi
  rejections: Counters
  events: EventTarget
  /**
   * The one path for every local record (import, bench, serving): validate, sign with the next
   * seq, store durably as own, then gossip. Throws RecordValidationError on an invalid body
   * (nothing is stored then). Returns the signed records in order.
   */
  ownRecords: (bodies: UnsignedBody[]) => Promise<SignedRecord[]>
  ownRecord: (body: UnsignedBody) => Promise<SignedRecord>
  /** ms since the Unix epoch when the daemon started */
  startedAt: number
  /** the network's flood control (src/trust/guard.ts): per-peer violation counters, allow/deny */
  peerGuard?: PeerGuard
  /** this process's event-loop delay (src/node/loop-monitor.ts) */
  loop?: LoopMonitor
}

export interface Service {
  start: () => Promise<void> | void
  stop: () => Promise<void> | void
}

export type ServiceFactory = (components: NodeComponents) => Service
