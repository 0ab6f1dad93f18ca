import { lpStream } from '@libp2p/utils'
import type { Connection, Libp2p, Stream } from '@libp2p/interface'
import type { Counters } from '../../util/counters.js'
import { errorMessage } from '../../util/errors.js'
import { log, type Logger } from '../../util/log.js'
import { BLAMEWORTHY, RpcError, RpcErrorCode, rpcErrorCode } from './errors.js'
import { encodeJson, lengthPrefixed, parseJsonObject, type LpStream } from './framing.js'
import { PeerPenalties, type RpcLimits, type ViolationHook } from './limits.js'
import { percentile } from '../../util/stats.js'

/**
 * Server side of a length-prefixed JSON RPC protocol (src/net/rpc/framing.ts), shared by
 * `/swarmtune/recommend/1.0.0` and `/swarmtune/infer/1.0.0`.
 *
 * One exchange per stream: the client writes one length-prefixed (unsigned varint) UTF-8 JSON
 * request, the server answers one length-prefixed JSON response — the answer or
 * `{ "error": { "code", "message" } }` — and closes. Every request is untrusted: size limit
 * (checked on the length prefix, before the body is buffered), one deadline for the whole
 * exchange and a short one for the first request to arrive, concurrent streams per peer and in
 * total with a share kept for peers with standing, schema validation. A refused request gets a
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
  /**
   * peers with standing (allow/priority lists, proven authors) may use the reserved slots;
   * default: nobody has standing, so `reservedStreams` stay free for nobody
   */
  standing?: (peer: string) => boolean
}

export interface RpcServerStats {
  requests: number
  answered: number
  errors: number
  active: number
  /** of `active`, streams held by peers without standing */
  activeStrangers: number
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
  return { n: xs.length, p50: percentile(xs, 50, 'nearest-rank'), p99: percentile(xs, 99, 'nearest-rank'), max: xs.reduce((m, x) => Math.max(m, x), -Infinity) }
}

export interface RpcServer {
  handler: (stream: Stream, connection: Connection) => Promise<void>
  stats: () => RpcServerStats
  /** abort every exchange in flight */
  stop: () => void
  /** streams per connection libp2p should allow: above our own per-peer limit, so we see and answer the excess */
  readonly maxInboundStreams: number
}

/**
 * Concurrent inbound streams, per peer and in total (RpcLimits.maxStreamsPerPeer, maxStreamsTotal).
 * `reservedStreams` of the total are kept for peers with standing: the others share the rest.
 */
class StreamSlots {
  private readonly perPeer = new Map<string, number>()
  private open = 0
  /** streams held by peers without standing */
  private strangers = 0
  constructor (private readonly limits: RpcLimits) {}

  get held (): { total: number, strangers: number } { return { total: this.open, strangers: this.strangers } }

  /** false when the peer, its class (strangers) or the node is at its limit */
  take (peer: string, standing: boolean): boolean {
    const n = this.perPeer.get(peer) ?? 0
    if (n >= this.limits.maxStreamsPerPeer || this.open >= this.limits.maxStreamsTotal) return false
    if (!standing && this.strangers >= this.limits.maxStreamsTotal - this.limits.reservedStreams) return false
    this.perPeer.set(peer, n + 1)
    this.open++
    if (!standing) this.strangers++
    return true
  }

  give (peer: string, standing: boolean): void {
    this.open--
    if (!standing) this.strangers--
    const left = (this.perPeer.get(peer) ?? 1) - 1
    if (left <= 0) this.perPeer.delete(peer)
    else this.perPeer.set(peer, left)
  }
}

/** The counts behind RpcServerStats. */
class ServerStats {
  requests = 0
  answered = 0
  errors = 0
  private readonly byCode: Record<string, number> = {}
  // a ring of the last 1024 answer times
  private readonly answerMs: number[] = []
  private answerAt = 0

  error (code: string): void {
    this.errors++
    this.byCode[code] = (this.byCode[code] ?? 0) + 1
  }

  answer (ms: number): void {
    this.answered++
    this.answerMs[this.answerAt++ % 1024] = ms
  }

  snapshot (held: { total: number, strangers: number }): RpcServerStats {
    return { requests: this.requests, answered: this.answered, errors: this.errors, active: held.total, activeStrangers: held.strangers, byCode: { ...this.byCode }, answerMs: summarizeMs(this.answerMs) }
  }
}

/** What the exchanges of one server share. */
interface ServerContext<Req, Res> {
  init: RpcServerInit<Req, Res>
  logger: Logger
  stats: ServerStats
  inFlight: Set<AbortController>
  /** count a refused request and, when it is the peer's fault, penalize the peer */
  refuse: (peer: string, code: string) => void
}

export function createRpcServer<Req, Res> (init: RpcServerInit<Req, Res>): RpcServer {
  const { limits } = init
  const slots = new StreamSlots(limits)
  const penalties = new PeerPenalties(limits.maxPenalties, limits.penaltyWindowMs)
  const stats = new ServerStats()
  const inFlight = new Set<AbortController>()

  function refuse (peer: string, code: string): void {
    stats.error(code)
    if (BLAMEWORTHY.has(code)) {
      init.rejections.inc(`${init.name}:${code}`)
      // BUSY is bounded by the stream limit itself: a heavy but honest client is not banned for it
      if (code !== RpcErrorCode.PENALIZED && code !== RpcErrorCode.BUSY) penalties.add(peer)
      init.onViolation?.(peer, code, init.protocol)
    }
  }

  const ctx: ServerContext<Req, Res> = { init, logger: log(init.name), stats, inFlight, refuse }

  async function handler (stream: Stream, connection: Connection): Promise<void> {
    const peer = connection.remotePeer.toString()
    stats.requests++
    if (penalties.penalized(peer)) {
      refuse(peer, RpcErrorCode.PENALIZED)
      await sendError(stream, RpcErrorCode.PENALIZED, 'too many bad requests from this peer: try later', AbortSignal.timeout(1000))
      return
    }
    const standing = init.standing?.(peer) === true
    if (!slots.take(peer, standing)) {
      refuse(peer, RpcErrorCode.BUSY)
      await sendError(stream, RpcErrorCode.BUSY, `too many concurrent ${init.name} streams`, AbortSignal.timeout(1000))
      return
    }
    const lp = lpStream(stream, { maxDataLength: limits.maxRequestBytes, maxBufferSize: limits.maxRequestBytes + 64 * 1024 })
    // the buffer above lets a moderately oversize request arrive whole, so it gets a coded
    // answer; a grossly oversize one overflows it and the stream is reset (counted the same)
    try {
      await serveStream(ctx, stream, lp, peer)
    } finally {
      slots.give(peer, standing)
    }
  }

  return {
    handler,
    maxInboundStreams: limits.maxStreamsPerPeer * 2,
    stats: () => stats.snapshot(slots.held),
    stop: () => { for (const c of inFlight) c.abort(new RpcError(RpcErrorCode.UNAVAILABLE, 'node stopping')) }
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

/**
 * One or more exchanges on a stream: a client may pipeline requests (one at a time) on a stream
 * it keeps open, which saves the stream set-up per request.
 */
async function serveStream<Req, Res> (ctx: ServerContext<Req, Res>, stream: Stream, lp: LpStream, peer: string): Promise<void> {
  const { limits } = ctx.init
  let exchanges = 0
  while (exchanges < limits.maxExchangesPerStream) {
    const more = await exchange(ctx, stream, lp, peer, exchanges)
    exchanges++
    if (!more) return
  }
  await stream.close({ signal: AbortSignal.timeout(1000) }).catch(() => { stream.abort(new RpcError(RpcErrorCode.CLOSED, 'exchange limit')) })
}

/**
 * The deadline of one exchange: the first request on a stream must have arrived whole within
 * `firstFrameMs` (E_REQ_STALLED: a peer that sends a length prefix and stalls is charged for it),
 * a later one within `idleMs` (the client keeps the stream open between requests, not a fault);
 * once a request has arrived, its answer gets `timeoutMs` of its own (`restart`).
 */
function exchangeDeadline (controller: AbortController, limits: RpcLimits, index: number): { restart: () => void, clear: () => void } {
  const timeout = (): void => { controller.abort(new RpcError(RpcErrorCode.TIMEOUT, `exchange exceeded ${limits.timeoutMs} ms`)) }
  const stalled = (): void => { controller.abort(new RpcError(RpcErrorCode.STALLED, `no whole request within ${limits.firstFrameMs} ms`)) }
  const idle = (): void => { controller.abort(new RpcError(RpcErrorCode.IDLE, 'idle stream')) }
  let timer = setTimeout(index === 0 ? stalled : idle, index === 0 ? Math.min(limits.firstFrameMs, limits.timeoutMs) : limits.idleMs)
  return {
    restart () {
      clearTimeout(timer)
      timer = setTimeout(timeout, limits.timeoutMs)
    },
    clear () { clearTimeout(timer) }
  }
}

/** One request → response on an open stream. False when the stream is done (closed or failed). */
async function exchange<Req, Res> (ctx: ServerContext<Req, Res>, stream: Stream, lp: LpStream, peer: string, index: number): Promise<boolean> {
  const controller = new AbortController()
  ctx.inFlight.add(controller)
  const deadline = exchangeDeadline(controller, ctx.init.limits, index)
  const signal = controller.signal
  try {
    const outcome = await readAndAnswer(ctx, stream, lp, peer, index, signal, deadline)
    if (outcome.kind === 'ended') return false
    if (outcome.kind === 'failed') {
      ctx.refuse(peer, outcome.code)
      if (outcome.code === RpcErrorCode.CLOSED || outcome.code === RpcErrorCode.TRUNCATED) { stream.abort(new RpcError(outcome.code, outcome.message)); return false }
      // the answer deadline may have passed: give the error response its own short deadline
      await sendError(stream, outcome.code, outcome.message, AbortSignal.timeout(1000), lp)
      return false
    }
    await lp.write(encodeJson(outcome.reply), { signal })
    ctx.stats.answer(performance.now() - outcome.readAt)
    return true
  } catch (err) {
    const code = rpcErrorCode(signal.aborted ? signal.reason : err)
    ctx.refuse(peer, code)
    stream.abort(err instanceof Error ? err : new Error(String(err)))
    return false
  } finally {
    deadline.clear()
    ctx.inFlight.delete(controller)
  }
}

type Outcome<Res> =
  | { kind: 'reply', reply: Res, readAt: number }
  | { kind: 'failed', code: string, message: string }
  /** the client closed (or left idle) a kept-open stream between requests: a normal end */
  | { kind: 'ended' }

/** Read one request, validate and answer it; every failure becomes a coded outcome. */
async function readAndAnswer<Req, Res> (ctx: ServerContext<Req, Res>, stream: Stream, lp: LpStream, peer: string, index: number, signal: AbortSignal, deadline: { restart: () => void }): Promise<Outcome<Res>> {
  const { init } = ctx
  let reading = true
  try {
    const bytes = (await lp.read({ signal })).subarray()
    reading = false
    const readAt = performance.now()
    deadline.restart()
    if (index > 0) ctx.stats.requests++
    const req = init.parse(parseJsonObject(bytes))
    const reply = await init.answer(req, { peer, signal })
    if (signal.aborted) throw signal.reason
    return { kind: 'reply', reply, readAt }
  } catch (err) {
    let code = rpcErrorCode(signal.aborted ? signal.reason : err)
    if (reading && index > 0 && (code === RpcErrorCode.CLOSED || code === RpcErrorCode.IDLE)) {
      // the client finished (or left an idle stream): a normal end, not a fault
      await stream.close({ signal: AbortSignal.timeout(1000) }).catch(() => { stream.abort(new RpcError(code, 'stream ended')) })
      return { kind: 'ended' }
    }
    if (reading && code === RpcErrorCode.CLOSED) code = RpcErrorCode.TRUNCATED
    const message = code === 'E_INTERNAL' ? 'internal error' : code === RpcErrorCode.OVERSIZE ? `request over ${init.limits.maxRequestBytes} bytes` : errorMessage(signal.aborted ? signal.reason : err)
    if (code === 'E_INTERNAL') ctx.logger.error('%s request from %s failed: %s', init.name, peer, (err as Error)?.stack ?? err)
    return { kind: 'failed', code, message }
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
