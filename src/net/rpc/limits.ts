/** What an RPC server accepts and how it treats peers that misbehave (src/net/rpc/server.ts). */
export interface RpcLimits {
  /** largest request body, bytes */
  maxRequestBytes: number
  /** largest response the client accepts, bytes */
  maxResponseBytes: number
  /** deadline of one whole exchange (read request, answer, write response), ms */
  timeoutMs: number
  /**
   * the first request on a stream must have arrived whole within this (ms): a stream that sends
   * a length prefix and stalls holds a slot for seconds, not for `timeoutMs` (E_REQ_STALLED)
   */
  firstFrameMs: number
  /** concurrent inbound streams per remote peer / in total */
  maxStreamsPerPeer: number
  maxStreamsTotal: number
  /**
   * of `maxStreamsTotal`, slots only peers with standing may take (RpcServerInit.standing): fresh
   * identities compete among themselves for the rest, so a Sybil swarm cannot lock out the
   * operator's fleet or proven peers
   */
  reservedStreams: number
  /** penalties within `penaltyWindowMs` after which a peer is refused for `penaltyWindowMs` */
  maxPenalties: number
  penaltyWindowMs: number
  /** a kept-open stream is closed after this long without a request */
  idleMs: number
  /** exchanges on one stream before the server closes it */
  maxExchangesPerStream: number
}

/** Largest response a client accepts unless told otherwise (the recommend protocol's limit). */
export const DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024

/** Hook for peer scoring (issue #7): every refused request, attributed to its peer. */
export type ViolationHook = (peer: string, code: string, protocol: string) => void

/** Bounded per-peer penalty counts in fixed windows (no timers). */
export class PeerPenalties {
  private counts = new Map<string, number>()
  private previous = new Map<string, number>()
  private windowStart = 0
  constructor (private readonly max: number, private readonly windowMs: number) {}

  private roll (now: number): void {
    if (now - this.windowStart >= this.windowMs) {
      // keep the last window too, so a ban lasts at least one full window
      this.previous = now - this.windowStart >= 2 * this.windowMs ? new Map() : this.counts
      this.counts = new Map()
      this.windowStart = now
    }
  }

  add (peer: string, now = Date.now()): number {
    this.roll(now)
    const n = (this.counts.get(peer) ?? 0) + 1
    this.counts.set(peer, n)
    return n
  }

  penalized (peer: string, now = Date.now()): boolean {
    this.roll(now)
    return (this.counts.get(peer) ?? 0) >= this.max || (this.previous.get(peer) ?? 0) >= this.max
  }

  count (peer: string): number {
    return (this.counts.get(peer) ?? 0) + (this.previous.get(peer) ?? 0)
  }
}
