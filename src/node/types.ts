import type { PeerId, PrivateKey } from '@libp2p/interface'
import type { Registry } from 'prom-client'
import type { ControlApi } from '../contracts/api.js'
import type { OwnRecordsWriter, OwnRecordWriter, RecordEvents } from '../contracts/records.js'
import type { RecordStore } from '../store/types.js'
import type { PeerGuard } from '../net/guard.js'
import type { SwarmNetwork } from '../net/types.js'
import type { Counters } from '../util/counters.js'
import type { SwarmtuneConfig } from './config.js'
import type { LoopMonitor } from './loop-monitor.js'

/**
 * What the daemon builds before any service (src/node/daemon.ts): identity, store, network,
 * control API and the own-record path. The services (src/node/services.ts) each take the slice
 * of these that their own `XComponents` names.
 */
export interface CoreComponents {
  config: SwarmtuneConfig
  privateKey: PrivateKey
  peerId: PeerId
  store: RecordStore
  network: SwarmNetwork
  api: ControlApi
  rejections: Counters
  events: RecordEvents
  ownRecords: OwnRecordsWriter
  ownRecord: OwnRecordWriter
  /** the node's Prometheus registry (src/node/metrics.ts): services register their families on it */
  metrics: Registry
  /** ms since the Unix epoch when the daemon started */
  startedAt: number
  /** the network's flood control (src/net/guard.ts): per-peer violation counters, allow/deny */
  peerGuard?: PeerGuard
  /** this process's event-loop delay (src/node/loop-monitor.ts) */
  loop?: LoopMonitor
}
