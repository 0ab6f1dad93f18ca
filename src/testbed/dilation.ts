import type { Libp2pTiming, NetworkLimits } from '../net/types.js'
import { SwarmtuneError } from '../util/errors.js'

/**
 * Time dilation for the in-process swarm (DieCast, Gupta et al., NSDI 2008): every clock the
 * simulated world runs on is slowed by one factor D, so each simulated second lasts D real
 * seconds and the one CPU that hosts all nodes looks D times faster to them. Times measured in
 * the run are divided by D to give simulated times. Pure: this file only computes the scaled
 * parameters; src/testbed/simulation.ts applies them.
 *
 * What is scaled (every timing the swarm's code sets, each ×D):
 * - gossipsub options in ms: heartbeatInterval, fanoutTTL, seenTTL, gossipsubIWantFollowupMs,
 *   pruneBackoff, unsubcribeBackoff, graftFloodThreshold. Parameters counted in heartbeats
 *   (mcacheLength, mcacheGossip, opportunisticGraftTicks, directConnectTicks, the prune backoff
 *   slack) follow the heartbeat and need nothing;
 * - gossipsub peer scoring: decayInterval, retainScore, and per topic timeInMeshQuantum and
 *   meshMessageDeliveriesActivation/-Window (decays are per decayInterval, caps per quantum);
 * - libp2p: the connection manager's dial, per-address dial and inbound upgrade timeouts, the
 *   stream protocol negotiation timeouts both ways, the connection close timeout, the
 *   connection monitor's ping interval, yamux's keep-alive interval, identify's timeout;
 * - swarmtune: the bootstrap/peer-exchange interval, the sync session timeout and interval, the
 *   sync session time limit, the per-second and per-minute rate limits (divided by D);
 * - the simulation itself: link latency, the verification cost model, the pause between
 *   publishes, the propagation timeout.
 * What is not (constants inside the libraries, see docs/BENCHMARKS.md for their effect):
 * gossipsub's first heartbeat delay (100 ms), its accept-from-whitelist window (1 s) and its
 * score's delivery-record lifetime (120 s), libp2p's peer-store clean-up on disconnect (5 s),
 * its pruner's close (1 s) and its stop (500 ms), and the pacer's CPU time slice (CPU time,
 * which dilation is meant to make cheaper).
 */

/** The real-time values of everything dilation scales (gossipsub, libp2p and swarmtune defaults). */
export const BASE_TIMING = {
  gossipsub: {
    heartbeatInterval: 1_000,
    fanoutTTL: 60_000,
    seenTTL: 120_000,
    gossipsubIWantFollowupMs: 3_000,
    pruneBackoff: 60_000,
    unsubcribeBackoff: 10_000,
    graftFloodThreshold: 10_000
  },
  scoreParams: { decayInterval: 1_000, retainScore: 3_600_000 },
  // swarmtune's own quantum (src/net/libp2p.ts recordsTopicScoreParams), gossipsub's window/activation
  topicScoreParams: { timeInMeshQuantum: 1_000, meshMessageDeliveriesWindow: 10, meshMessageDeliveriesActivation: 5_000 },
  connectionManager: { dialTimeout: 10_000, addressDialTimeout: 6_000, inboundUpgradeTimeout: 10_000, inboundStreamProtocolNegotiationTimeout: 10_000, outboundStreamProtocolNegotiationTimeout: 10_000, connectionCloseTimeout: 1_000 },
  connectionMonitor: { pingInterval: 10_000 },
  yamux: { keepAliveInterval: 30_000 },
  identify: { timeout: 5_000 },
  limits: { bootstrapIntervalMs: 10_000, sessionTimeoutMs: 600_000, gossipPerPeerPerSecond: 1_000, syncSessionsPerPeerPerMinute: 30 },
  sync: { timeoutMs: 10_000, intervalMs: 3_600_000 },
  trust: { gossipPerPeerPerSecond: 100 }
} as const

export interface DilationOptions {
  /** the factor D (≥ 1; 1 = real time) */
  factor: number
  /**
   * turn off per-connection timers that play no part in record propagation: the connection
   * monitor's pings (with abortConnectionOnPingFailure false they only measure RTT, which
   * nothing reads) and yamux keep-alives (memory connections never go silently dead)
   */
  quietTimers?: boolean
}

export interface DilationPlan {
  factor: number
  timing: Libp2pTiming
  limits: Pick<NetworkLimits, 'bootstrapIntervalMs' | 'sessionTimeoutMs' | 'gossipPerPeerPerSecond' | 'syncSessionsPerPeerPerMinute'>
  sync: { timeoutMs: number, intervalMs: number }
  trust: { gossipPerPeerPerSecond: number }
}

export class DilationError extends SwarmtuneError {}

const scaleAll = <T extends Record<string, number>>(o: T, d: number): Record<keyof T, number> =>
  Object.fromEntries(Object.entries(o).map(([k, v]) => [k, v * d])) as Record<keyof T, number>

/** Check a dilation factor: a finite number ≥ 1. */
export function checkDilation (factor: number): number {
  if (!Number.isFinite(factor) || factor < 1) throw new DilationError('E_SIM_DILATION', `the dilation factor must be a number ≥ 1 (got ${factor})`)
  return factor
}

/** Every timing of a node, slowed by `factor` (pure). */
export function dilate (o: DilationOptions): DilationPlan {
  const d = checkDilation(o.factor)
  const b = BASE_TIMING
  const quiet = o.quietTimers === true
  return {
    factor: d,
    timing: {
      gossipsub: scaleAll(b.gossipsub, d),
      scoreParams: scaleAll(b.scoreParams, d),
      topicScoreParams: scaleAll(b.topicScoreParams, d),
      connectionManager: scaleAll(b.connectionManager, d),
      connectionMonitor: quiet ? { enabled: false } : scaleAll(b.connectionMonitor, d),
      yamux: quiet ? { enableKeepAlive: false } : scaleAll(b.yamux, d),
      identify: scaleAll(b.identify, d)
    },
    limits: {
      bootstrapIntervalMs: b.limits.bootstrapIntervalMs * d,
      sessionTimeoutMs: b.limits.sessionTimeoutMs * d,
      gossipPerPeerPerSecond: b.limits.gossipPerPeerPerSecond / d,
      syncSessionsPerPeerPerMinute: b.limits.syncSessionsPerPeerPerMinute / d
    },
    // config values are integers (config/schema.json)
    sync: { timeoutMs: Math.round(b.sync.timeoutMs * d), intervalMs: Math.round(b.sync.intervalMs * d) },
    trust: { gossipPerPeerPerSecond: Math.max(1, Math.ceil(b.trust.gossipPerPeerPerSecond / d)) }
  }
}

/** A real duration measured in a run at `factor`, in simulated ms. */
export function toSimulatedMs (realMs: number, factor: number): number {
  return realMs / factor
}

/** A simulated duration, in real ms at `factor`. */
export function toRealMs (simulatedMs: number, factor: number): number {
  return simulatedMs * factor
}

/** FNV-1a over a string: a stable 32-bit hash (no crypto needed for drawing latencies). */
function hash32 (s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h
}

/**
 * The one-way latency of the link between peers `a` and `b` in simulated ms: the same both ways,
 * fixed per link for a seed, log-uniform in [minMs, maxMs] (the spread of internet paths between
 * nearby and distant hosts, median √(min·max)). 0 when maxMs is 0.
 */
export function linkLatencyMs (a: string, b: string, seed: number, minMs: number, maxMs: number): number {
  if (maxMs <= 0) return 0
  if (!(minMs > 0) || minMs > maxMs) throw new DilationError('E_SIM_LATENCY', `link latency needs 0 < min ≤ max (got ${minMs}-${maxMs})`)
  const key = a < b ? `${seed}|${a}|${b}` : `${seed}|${b}|${a}`
  const u = hash32(key) / 0x1_0000_0000
  return minMs * Math.pow(maxMs / minMs, u)
}

/**
 * The smallest whole D at which `peers` idle nodes need at most `coreShare` of one core, given
 * their measured idle cost in CPU ms per node per simulated second (idle cost per real second is
 * that divided by D). The rest of the core is left for propagation, verification and sync.
 */
export function suggestDilation (idleCpuMsPerPeerPerSimSecond: number, peers: number, coreShare = 0.2): number {
  if (!(coreShare > 0) || !(idleCpuMsPerPeerPerSimSecond >= 0) || !(peers >= 0)) throw new DilationError('E_SIM_DILATION', 'suggestDilation needs a cost ≥ 0, peers ≥ 0 and a core share > 0')
  return Math.max(1, Math.ceil(idleCpuMsPerPeerPerSimSecond * peers / (1000 * coreShare)))
}
