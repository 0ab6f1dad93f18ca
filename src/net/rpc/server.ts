import { lpStream } from '@libp2p/utils'
import type { Connection, Libp2p, Stream } from '@libp2p/interface'
import type { Counters } from '../../util/counters.js'
import { errorMessage } from '../../util/errors.js'
import { log } from '../../util/log.js'
import { BLAMEWORTHY, RpcError, RpcErrorCode, rpcErrorCode } from './errors.js'
import { encodeJson, lengthPrefixed, parseJsonObject } from './framing.js'
import { PeerPenalties, type RpcLimits, type ViolationHook } from './limits.js'

/**
 * Server side of a length-prefixed JSON RPC protocol (src/net/rpc/framing.ts), shared by
 * `/swarmtune/recommend/1.0.0` and `/swarmtune/infer/1.0.0`.
 *
 * One exchange per stream: the client writes one length-prefixed (unsigned varint) UTF-8 JSON
 * request, the server answers one length-prefixed JSON response — the answer or
 * `{ "error": { "code", "message" } }` — and closes. Every request is untrusted: size limit
 * (checked on the length prefix, before the body is buffered), one deadline for the whole
 * exchange, concurrent streams per peer and in total, schema validation. A refused request gets a
 * coded error response when the stream still allows it, the stream is closed, the code is
 * counted in the node's rejections as `<protocol>:<code>`, and the peer collects a penalty; a
 * peer with too many penalties in a window is refused outright for a while (E_PEER_PENALIZED).
 */

export interface RpcServerInit<Req, Res> {
  protocol: string
  /** short name used in counters and logs, e.g. "recommend" */
  name: string
  limits: RpcLimits
  /** validate an untrusted parsed request; throw RpcError(E_REQ_INVALID) (or any coded error) to refuse */
  parse: (value: Record<string, unknown>) => Req
  /** answer a valid request; a thrown coded error becomes the error response */
  answer: (req: Req, ctx: { peer: string, signal: AbortSignal }) => Promise<Res>
  rejections: Counters
  onViolation?: ViolationHook
}

export interface RpcServerStats {
  requests: number
  answered: number
  errors: number
  active: number
  /** per error code */
  byCode: Record<string, number>
  /**
   * time from a whole request read to the response written, over the last 1024 answered
   * exchanges: what this node adds, against what a client sees end to end
   */
  answerMs: { n: number, p50: number, p99: number, max: number }
}

/** Pure: nearest-rank percentiles of a sample (zeros when empty). */
export function summarizeMs (xs: readonly number[]): { n: number, p50: number, p99: number, max: number } {
  if (xs.length === 0) return { n: 0, p50: 0, p99: 0, max: 0 }
  const s = [...xs].sort((a, b) => a - b)
  const at = (p: number): number => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]
  return { n: s.length, p50: at(0.5), p99: at(0.99), max: s[s.length - 1] }
}

export interface RpcServer {
  handler: (stream: Stream, connection: Connection) => Promise<void>
  stats: () => RpcServerStats
  /** abort every exchange in flight */
  stop: () => void
  /** streams per connection libp2p should allow: above our own per-peer limit, so we see and answer the excess */
  readonly maxInboundStreams: number
}

export function createRpcServer<Req, Res> (init: RpcServerInit<Req, Res>): RpcServer {
  const logger = log(init.name)
  const { limits } = init
  const active = new Map<string, number>()
  let total = 0
  const penalties = new PeerPenalties(limits.maxPenalties, limits.penaltyWindowMs)
  const inFlight = new Set<AbortController>()
  const st = { requests: 0, answered: 0, errors: 0 }
  const byCode: Record<string, number> = {}
  const answerMs: number[] = []
  let answerAt = 0

  function refuse (peer: string, code: string): void {
    st.errors++
    byCode[code] = (byCode[code] ?? 0) + 1
    if (BLAMEWORTHY.has(code)) {
      init.rejections.inc(`${init.name}:${code}`)
      // BUSY is bounded by the stream limit itself: a heavy but honest client is not banned for it
      if (code !== RpcErrorCode.PENALIZED && code !== RpcErrorCode.BUSY) penalties.add(peer)
      init.onViolation?.(peer, code, init.protocol)
    }
  }

  /**
   * Best-effort coded error, then close. The request side is shut first so a peer still sending
   * (an oversize body) cannot overflow our buffer while we answer.
   */
  async function sendError (stream: Stream, code: string, message: string, signal: AbortSignal, lp?: { unwrap: () => unknown }): Promise<void> {
    try {
      try { lp?.unwrap() } catch {}
      await stream.closeRead({ signal }).catch(() => {})
      const body = encodeJson({ error: { code, message } })
      stream.send(lengthPrefixed(body))
      await stream.close({ signal })
    } catch {
      stream.abort(new RpcError(code, message))
    }
  }

  async function handler (stream: Stream, connection: Connection): Promise<void> {
    const peer = connection.remotePeer.toString()
    st.requests++
    if (penalties.penalized(peer)) {
      refuse(peer, RpcErrorCode.PENALIZED)
      await sendError(stream, RpcErrorCode.PENALIZED, 'too many bad requests from this peer: try later', AbortSignal.timeout(1000))
      return
    }
    const n = active.get(peer) ?? 0
    if (n >= limits.maxStreamsPerPeer || total >= limits.maxStreamsTotal) {
      refuse(peer, RpcErrorCode.BUSY)
      await sendError(stream, RpcErrorCode.BUSY, `too many concurrent ${init.name} streams`, AbortSignal.timeout(1000))
      return
    }
    active.set(peer, n + 1)
    total++
    const lp = lpStream(stream, { maxDataLength: limits.maxRequestBytes, maxBufferSize: limits.maxRequestBytes + 64 * 1024 })
    // the buffer above lets a moderately oversize request arrive whole, so it gets a coded
    // answer; a grossly oversize one overflows it and the stream is reset (counted the same)
    let exchanges = 0
    try {
      // one or more exchanges per stream: a client may pipeline requests (one at a time) on a
      // stream it keeps open, which saves the stream set-up per request
      while (exchanges < limits.maxExchangesPerStream) {
        const more = await exchange(stream, lp, peer, exchanges)
        exchanges++
        if (!more) return
      }
      await stream.close({ signal: AbortSignal.timeout(1000) }).catch(() => { stream.abort(new RpcError(RpcErrorCode.CLOSED, 'exchange limit')) })
    } finally {
      total--
      const left = (active.get(peer) ?? 1) - 1
      if (left <= 0) active.delete(peer)
      else active.set(peer, left)
    }
  }

  /** One request → response on an open stream. False when the stream is done (closed or failed). */
  async function exchange (stream: Stream, lp: ReturnType<typeof lpStream>, peer: string, index: number): Promise<boolean> {
    const controller = new AbortController()
    inFlight.add(controller)
    // the first request must arrive within the exchange deadline; later ones within the idle time
    let timer = setTimeout(() => {
      controller.abort(index === 0 ? new RpcError(RpcErrorCode.TIMEOUT, `exchange exceeded ${limits.timeoutMs} ms`) : new RpcError(RpcErrorCode.IDLE, 'idle stream'))
    }, index === 0 ? limits.timeoutMs : limits.idleMs)
    const signal = controller.signal
    try {
      let reply: unknown
      let failed: { code: string, message: string } | undefined
      let reading = true
      let readAt = 0
      try {
        const bytes = (await lp.read({ signal })).subarray()
        reading = false
        readAt = performance.now()
        if (index > 0) {
          clearTimeout(timer)
          timer = setTimeout(() => { controller.abort(new RpcError(RpcErrorCode.TIMEOUT, `exchange exceeded ${limits.timeoutMs} ms`)) }, limits.timeoutMs)
          st.requests++
        }
        const req = init.parse(parseJsonObject(bytes))
        reply = await init.answer(req, { peer, signal })
        if (signal.aborted) throw signal.reason
      } catch (err) {
        let code = rpcErrorCode(signal.aborted ? signal.reason : err)
        if (reading && index > 0 && (code === RpcErrorCode.CLOSED || code === RpcErrorCode.IDLE)) {
          // the client finished (or left an idle stream): a normal end, not a fault
          await stream.close({ signal: AbortSignal.timeout(1000) }).catch(() => { stream.abort(new RpcError(code, 'stream ended')) })
          return false
        }
        if (reading && code === RpcErrorCode.CLOSED) code = RpcErrorCode.TRUNCATED
        const message = code === 'E_INTERNAL' ? 'internal error' : code === RpcErrorCode.OVERSIZE ? `request over ${limits.maxRequestBytes} bytes` : errorMessage(signal.aborted ? signal.reason : err)
        if (code === 'E_INTERNAL') logger.error('%s request from %s failed: %s', init.name, peer, (err as Error)?.stack ?? err)
        failed = { code, message }
      }
      if (failed != null) {
        refuse(peer, failed.code)
        if (failed.code === RpcErrorCode.CLOSED || failed.code === RpcErrorCode.TRUNCATED) { stream.abort(new RpcError(failed.code, failed.message)); return false }
        // the answer deadline may have passed: give the error response its own short deadline
        await sendError(stream, failed.code, failed.message, AbortSignal.timeout(1000), lp)
        return false
      }
      await lp.write(encodeJson(reply), { signal })
      st.answered++
      answerMs[answerAt++ % 1024] = performance.now() - readAt
      return true
    } catch (err) {
      const code = rpcErrorCode(signal.aborted ? signal.reason : err)
      refuse(peer, code)
      stream.abort(err instanceof Error ? err : new Error(String(err)))
      return false
    } finally {
      clearTimeout(timer)
      inFlight.delete(controller)
    }
  }

  return {
    handler,
    maxInboundStreams: limits.maxStreamsPerPeer * 2,
    stats: () => ({ ...st, active: total, byCode: { ...byCode }, answerMs: summarizeMs(answerMs) }),
    stop: () => { for (const c of inFlight) c.abort(new RpcError(RpcErrorCode.UNAVAILABLE, 'node stopping')) }
  }
}

/** A server registered on a libp2p node: what createRecommendService and createInferService return. */
export interface RpcService {
  start: () => Promise<void>
  stop: () => Promise<void>
  stats: () => RpcServerStats
}

/** Registers an RPC server's handler for `protocol` on start and removes it on stop. */
export function rpcService (libp2p: Pick<Libp2p, 'handle' | 'unhandle'>, protocol: string, server: RpcServer): RpcService {
  return {
    async start () {
      await libp2p.handle(protocol, server.handler, { maxInboundStreams: server.maxInboundStreams, runOnLimitedConnection: false })
    },
    async stop () {
      server.stop()
      await libp2p.unhandle(protocol).catch(() => {})
    },
    stats: server.stats
  }
}
