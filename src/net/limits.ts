import type { NetworkGuard, NetworkLimits } from './types.js'

export const DEFAULT_LIMITS: NetworkLimits = {
  maxRecordFrameBytes: 70 * 1024,
  maxHeadsAuthors: 20_000,
  maxHeadsFrameBytes: 2 * 1024 * 1024,
  maxPageBytes: 1024 * 1024,
  sessionTimeoutMs: 10 * 60_000,
  maxInboundSyncPerPeer: 2,
  maxInboundSyncTotal: 32,
  syncConcurrency: 4,
  bootstrapIntervalMs: 10_000,
  targetPeers: 8,
  invalidMessageWeight: -40,
  // generous: an honest peer relays what the whole swarm publishes; a flooder is far above
  gossipPerPeerPerSecond: 1000,
  syncSessionsPerPeerPerMinute: 30
}

export function resolveLimits (over: Partial<NetworkLimits> = {}): NetworkLimits {
  return { ...DEFAULT_LIMITS, ...over }
}

/**
 * Fixed-window counter per key (no timers, so nothing to clean up on stop). Memory is bounded by
 * the keys seen within one window: the map is dropped wholesale when the window rolls over.
 */
export class WindowLimiter {
  private counts = new Map<string, number>()
  private windowStart = 0
  private readonly points: number
  private readonly windowMs: number
  /**
   * A fractional `points` keeps its rate as whole points over a longer window (0.9375 per 60 s is 1
   * per 64 s): compared as it is, a rate under one point per window refused every take (a time-
   * dilated simulation divides the sync rate by D, so at D ≥ 31 no late joiner could ever sync).
   */
  constructor (points: number, windowMs: number) {
    const whole = Math.max(1, Math.ceil(points))
    this.points = points > 0 ? whole : 0
    this.windowMs = points > 0 ? windowMs * whole / points : windowMs
  }

  /** true when `key` may spend one more point in the current window */
  take (key: string, now = Date.now()): boolean {
    if (now - this.windowStart >= this.windowMs) {
      this.counts = new Map()
      this.windowStart = now
    }
    const used = (this.counts.get(key) ?? 0) + 1
    this.counts.set(key, used)
    return used <= this.points
  }
}

/**
 * The built-in guard: per-peer rate limits on the records topic and on inbound sync sessions,
 * chained with a caller's guard (which can only tighten, never loosen, these limits).
 */
export function createRateGuard (limits: NetworkLimits, user: NetworkGuard = {}, onLimited?: (peer: string, via: 'gossip' | 'sync') => void, allowPeers: Iterable<string> = []): NetworkGuard {
  const gossip = new WindowLimiter(limits.gossipPerPeerPerSecond, 1000)
  const sync = new WindowLimiter(limits.syncSessionsPerPeerPerMinute, 60_000)
  // config net.allowPeers: trusted peers (own fleet, bootstrap nodes) are exempt from rate limits
  const trusted = new Set(allowPeers)
  return {
    admitGossip: (peer) => {
      if (!trusted.has(peer) && !gossip.take(peer)) { onLimited?.(peer, 'gossip'); return false }
      return user.admitGossip?.(peer) ?? true
    },
    admitSync: (peer) => {
      if (!trusted.has(peer) && !sync.take(peer)) { onLimited?.(peer, 'sync'); return false }
      return user.admitSync?.(peer) ?? true
    },
    onViolation: user.onViolation,
    appSpecificScore: user.appSpecificScore,
    reserveGossipAuthor: user.reserveGossipAuthor,
    refundGossipAuthor: user.refundGossipAuthor
  }
}
