import { lpStream } from '@libp2p/utils'
import type { Connection, Libp2p, PeerId, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { OBJECTIVES, type Objective } from '../contracts/objective.js'
import { canonicalize } from '../records/canonical.js'
import { SwarmtuneError, errorCode, errorMessage } from '../util/errors.js'
import type { Counters } from '../util/counters.js'
import { log } from '../util/log.js'
import { RECOMMEND_PROTOCOL } from './types.js'

/**
 * `/swarmtune/recommend/1.0.0` and the request/response machinery it shares with
 * `/swarmtune/infer/1.0.0` (src/net/infer.ts).
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

export const RpcErrorCode = {
  /** request body over the limit */
  OVERSIZE: 'E_REQ_OVERSIZE',
  /** not UTF-8 JSON, or not a JSON object */
  MALFORMED: 'E_REQ_MALFORMED',
  /** JSON, but not a valid request (field named in the message) */
  INVALID: 'E_REQ_INVALID',
  /** the exchange did not finish within the deadline */
  TIMEOUT: 'E_REQ_TIMEOUT',
  /** too many concurrent streams from this peer (or in total) */
  BUSY: 'E_BUSY',
  /** this peer sent too many bad requests recently */
  PENALIZED: 'E_PEER_PENALIZED',
  /** the stream ended before a whole request arrived (a client never does that) */
  TRUNCATED: 'E_REQ_TRUNCATED',
  /** the stream was reset or closed while answering */
  CLOSED: 'E_STREAM_CLOSED',
  /** a kept-open stream saw no request for `idleMs` (closed quietly, not a fault) */
  IDLE: 'E_STREAM_IDLE',
  /** the node could not answer (not the peer's fault) */
  UNAVAILABLE: 'E_UNAVAILABLE'
} as const

export class RpcError extends SwarmtuneError {}

/** Codes that blame the remote peer: counted as rejections and penalized. */
const BLAMEWORTHY = new Set<string>([RpcErrorCode.OVERSIZE, RpcErrorCode.MALFORMED, RpcErrorCode.INVALID, RpcErrorCode.TRUNCATED, RpcErrorCode.TIMEOUT, RpcErrorCode.BUSY, RpcErrorCode.PENALIZED])

export interface RpcLimits {
  /** largest request body, bytes */
  maxRequestBytes: number
  /** largest response the client accepts, bytes */
  maxResponseBytes: number
  /** deadline of one whole exchange (read request, answer, write response), ms */
  timeoutMs: number
  /** concurrent inbound streams per remote peer / in total */
  maxStreamsPerPeer: number
  maxStreamsTotal: number
  /** penalties within `penaltyWindowMs` after which a peer is refused for `penaltyWindowMs` */
  maxPenalties: number
  penaltyWindowMs: number
  /** a kept-open stream is closed after this long without a request */
  idleMs: number
  /** exchanges on one stream before the server closes it */
  maxExchangesPerStream: number
}

export const DEFAULT_RECOMMEND_LIMITS: RpcLimits = {
  maxRequestBytes: 64 * 1024,
  maxResponseBytes: 1024 * 1024,
  timeoutMs: 5_000,
  maxStreamsPerPeer: 32,
  maxStreamsTotal: 256,
  maxPenalties: 20,
  penaltyWindowMs: 60_000,
  idleMs: 30_000,
  maxExchangesPerStream: 100_000
}

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

/** Pure: map a stream/read failure to a stable code. */
export function rpcErrorCode (err: unknown): string {
  const code = errorCode(err)
  if (code !== 'E_INTERNAL' && code.startsWith('E_')) return code
  const name = (err as Error)?.name ?? ''
  if (name === 'InvalidDataLengthError' || name === 'InvalidDataLengthLengthError' || name === 'InvalidMessageLengthError' || name === 'StreamBufferError') return RpcErrorCode.OVERSIZE
  if (name === 'UnexpectedEOFError' || name === 'StreamResetError' || name === 'StreamStateError' || name === 'StreamClosedError') return RpcErrorCode.CLOSED
  if (name === 'AbortError' || name === 'TimeoutError') return RpcErrorCode.TIMEOUT
  return 'E_INTERNAL'
}

const encoder = new TextEncoder()

/** unsigned-varint length prefix + bytes, as one buffer (the framing lpStream reads) */
export function lengthPrefixed (bytes: Uint8Array): Uint8Array {
  const head: number[] = []
  let n = bytes.length
  while (n >= 0x80) { head.push((n & 0x7f) | 0x80); n = Math.floor(n / 128) }
  head.push(n)
  const out = new Uint8Array(head.length + bytes.length)
  out.set(head, 0)
  out.set(bytes, head.length)
  return out
}
const decoder = new TextDecoder('utf-8', { fatal: true })

/** Pure: request bytes → a JSON object (E_REQ_MALFORMED otherwise). */
export function parseJsonObject (bytes: Uint8Array): Record<string, unknown> {
  let value: unknown
  try {
    value = JSON.parse(decoder.decode(bytes))
  } catch {
    throw new RpcError(RpcErrorCode.MALFORMED, 'request is not UTF-8 JSON')
  }
  if (value == null || typeof value !== 'object' || Array.isArray(value)) throw new RpcError(RpcErrorCode.MALFORMED, 'request must be a JSON object')
  return value as Record<string, unknown>
}

export function encodeJson (value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value))
}

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

export interface RpcCallOptions {
  timeoutMs?: number
  maxResponseBytes?: number
  signal?: AbortSignal
}

/**
 * Client side of one exchange over an existing or new connection. Error responses are thrown as
 * RpcError with the server's code.
 */
export async function rpcCall<Res> (node: Pick<Libp2p, 'dialProtocol'>, target: PeerId | Multiaddr | Multiaddr[], protocol: string, request: unknown, opts: RpcCallOptions = {}): Promise<Res> {
  const signal = AbortSignal.any([AbortSignal.timeout(opts.timeoutMs ?? 10_000), ...(opts.signal != null ? [opts.signal] : [])])
  const maxResponse = opts.maxResponseBytes ?? DEFAULT_RECOMMEND_LIMITS.maxResponseBytes
  const stream = await node.dialProtocol(target, protocol, { signal })
  try {
    const lp = lpStream(stream, { maxDataLength: maxResponse, maxBufferSize: maxResponse + 16 })
    await lp.write(request instanceof Uint8Array ? request : encodeJson(request), { signal })
    const bytes = (await lp.read({ signal })).subarray()
    await stream.close({ signal }).catch(() => {})
    let value: unknown
    try {
      value = JSON.parse(decoder.decode(bytes))
    } catch {
      throw new RpcError(RpcErrorCode.MALFORMED, 'response is not UTF-8 JSON')
    }
    const e = (value as { error?: { code?: unknown, message?: unknown } } | null)?.error
    if (e != null && typeof e === 'object') throw new RpcError(typeof e.code === 'string' ? e.code : 'E_REMOTE', typeof e.message === 'string' ? e.message : 'remote error')
    return value as Res
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)))
    if (err instanceof SwarmtuneError) throw err
    throw new RpcError(rpcErrorCode(signal.aborted ? signal.reason : err), errorMessage(signal.aborted ? signal.reason : err), { cause: err })
  }
}

interface PooledStream { stream: Stream, lp: ReturnType<typeof lpStream> }

/**
 * A client that keeps up to `size` streams open to one peer and sends one request at a time on
 * each (the server answers them in order): no stream set-up per request. For clients that ask
 * often (benchmarks, a busy gateway); the CLI uses the one-shot `rpcCall`.
 */
export class RpcPool {
  private readonly idle: PooledStream[] = []
  private readonly waiters: Array<(s: PooledStream | Error) => void> = []
  private open = 0
  private closed = false
  private readonly size: number

  constructor (private readonly node: Pick<Libp2p, 'dialProtocol'>, private readonly target: PeerId | Multiaddr | Multiaddr[], private readonly protocol: string, private readonly opts: RpcCallOptions & { size?: number } = {}) {
    this.size = Math.max(1, opts.size ?? 8)
  }

  private async acquire (signal: AbortSignal): Promise<PooledStream> {
    const s = this.idle.pop()
    if (s != null) return s
    if (this.open < this.size) {
      this.open++
      try {
        const stream = await this.node.dialProtocol(this.target, this.protocol, { signal })
        const max = this.opts.maxResponseBytes ?? DEFAULT_RECOMMEND_LIMITS.maxResponseBytes
        return { stream, lp: lpStream(stream, { maxDataLength: max, maxBufferSize: max + 16 }) }
      } catch (err) {
        this.open--
        throw err
      }
    }
    const got = await new Promise<PooledStream | Error>(resolve => this.waiters.push(resolve))
    if (got instanceof Error) throw got
    return got
  }

  private release (s: PooledStream): void {
    const w = this.waiters.shift()
    if (w != null) w(s)
    else this.idle.push(s)
  }

  private discard (s: PooledStream, err: Error): void {
    s.stream.abort(err)
    this.open--
    // a waiter gets a fresh stream on its own
    const w = this.waiters.shift()
    if (w != null) this.acquire(AbortSignal.timeout(this.opts.timeoutMs ?? 10_000)).then(w, w)
  }

  async call<Res> (request: unknown): Promise<Res> {
    if (this.closed) throw new RpcError(RpcErrorCode.CLOSED, 'pool closed')
    const signal = AbortSignal.timeout(this.opts.timeoutMs ?? 10_000)
    const s = await this.acquire(signal)
    let value: unknown
    try {
      await s.lp.write(request instanceof Uint8Array ? request : encodeJson(request), { signal })
      const bytes = (await s.lp.read({ signal })).subarray()
      value = JSON.parse(decoder.decode(bytes))
    } catch (err) {
      const e = new RpcError(rpcErrorCode(signal.aborted ? signal.reason : err), errorMessage(signal.aborted ? signal.reason : err), { cause: err })
      this.discard(s, e)
      throw e
    }
    const e = (value as { error?: { code?: unknown, message?: unknown } } | null)?.error
    if (e != null && typeof e === 'object') {
      const err = new RpcError(typeof e.code === 'string' ? e.code : 'E_REMOTE', typeof e.message === 'string' ? e.message : 'remote error')
      // the server closes a stream after an error response
      this.discard(s, err)
      throw err
    }
    this.release(s)
    return value as Res
  }

  async close (): Promise<void> {
    this.closed = true
    for (const w of this.waiters.splice(0)) w(new RpcError(RpcErrorCode.CLOSED, 'pool closed'))
    await Promise.all(this.idle.splice(0).map(async s => { await s.stream.close().catch(() => { s.stream.abort(new Error('closing')) }) }))
  }
}

// ------------------------------------------------------------------ recommend request schema

/** A model named by id (hash), by configured name, or by a (partial) descriptor. */
export interface ModelRef {
  id?: string
  name?: string
  params?: number
  layers?: number
  embd?: number
  heads?: number
  kvHeads?: number
  ff?: number
  vocab?: number
  ctx?: number
  weightBits?: number
  architecture?: string
  fileType?: string
}

/** The asking machine, when the answer is for a machine other than the answering peer. */
export interface HardwareHint {
  id?: string
  cpuModel?: string
  cores: number
  threads: number
  ramMiB: number
  gpus: Array<{ name?: string, vramMiB: number }>
  backend: string
  os?: string
  pricePerHour?: number
}

export interface RecommendRequest {
  model: ModelRef
  /** workload features (docs/FEATURES-workload.md); or computed from `prompts` */
  features?: Record<string, number>
  family?: string
  prompts?: string[]
  /** output cap per prompt (with prompts), default 32 */
  maxTokens?: number
  objective: Objective
  /** USD for the task (predicted runtime × price) */
  budget?: number
  slo?: { ttftMs?: number }
  hardware?: HardwareHint
  /** include the committee tally and weights for the task's class */
  committee?: boolean
  /** candidate methods (default: all known) */
  methods?: string[]
}

export interface RankedAnswer {
  method: string
  predicted: Record<string, number | null>
  uncertainty: number
  feasible?: boolean
  reason?: string
}

export interface RecommendResponse {
  ranking: RankedAnswer[]
  evidence: { records: number, authors: number, snapshot: string | null }
  coldStart: boolean
  /** what the ranking came from: the meta-model, the committee (cold peer), or the cold-start rule */
  source: 'meta' | 'committee' | 'cold-start'
  objective: Objective
  taskClass: string
  reason?: string
  committee?: unknown
}

export const REQUEST_LIMITS = {
  maxPrompts: 256,
  maxPromptChars: 32 * 1024,
  maxTokens: 4096,
  maxFeatures: 64,
  maxMethods: 64
} as const

const FEATURE_KEY_RE = /^[A-Za-z][A-Za-z0-9_]{0,63}$/
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9+._:/-]{0,127}$/

function invalid (path: string, message: string): never {
  throw new RpcError(RpcErrorCode.INVALID, `${path}: ${message}`)
}

function isObj (v: unknown): v is Record<string, unknown> {
  return v != null && typeof v === 'object' && !Array.isArray(v)
}

function finiteNonNeg (v: unknown, path: string, max = 1e12): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > max) invalid(path, `must be a number in [0, ${max}]`)
  return v
}

function optString (v: unknown, path: string, max = 256): string | undefined {
  if (v === undefined) return undefined
  if (typeof v !== 'string' || v.length === 0 || v.length > max) invalid(path, `must be a string of 1..${max} characters`)
  return v
}

export function parseFeatures (v: unknown, path: string): Record<string, number> {
  if (!isObj(v)) invalid(path, 'must be an object of numbers')
  const keys = Object.keys(v)
  if (keys.length > REQUEST_LIMITS.maxFeatures) invalid(path, `more than ${REQUEST_LIMITS.maxFeatures} features`)
  const out: Record<string, number> = {}
  for (const k of keys) {
    if (!FEATURE_KEY_RE.test(k)) invalid(path, `bad feature name ${JSON.stringify(k.slice(0, 64))}`)
    out[k] = finiteNonNeg(v[k], `${path}.${k}`)
  }
  return out
}

export function parseModelRef (v: unknown): ModelRef {
  if (typeof v === 'string') {
    if (v.length === 0 || v.length > 128) invalid('model', 'must be a model id or name of 1..128 characters')
    return /^[0-9a-f]{16,64}$/.test(v) ? { id: v, name: v } : { name: v }
  }
  if (!isObj(v)) invalid('model', 'must be a model id, name or descriptor')
  const out: ModelRef = {}
  out.id = optString(v.id, 'model.id', 64)
  out.name = optString(v.name, 'model.name', 128)
  out.architecture = optString(v.architecture, 'model.architecture', 64)
  out.fileType = optString(v.fileType, 'model.fileType', 32)
  for (const k of ['params', 'layers', 'embd', 'heads', 'kvHeads', 'ff', 'vocab', 'ctx', 'weightBits'] as const) {
    if (v[k] !== undefined) out[k] = finiteNonNeg(v[k], `model.${k}`, 1e13)
  }
  if (out.id == null && out.name == null && out.params == null) invalid('model', 'needs an id, a name, or a descriptor with params')
  return out
}

export function parseHardwareHint (v: unknown): HardwareHint {
  if (!isObj(v)) invalid('hardware', 'must be an object')
  const gpus = v.gpus ?? []
  if (!Array.isArray(gpus) || gpus.length > 16) invalid('hardware.gpus', 'must be an array of at most 16')
  const backend = v.backend ?? (gpus.length > 0 ? 'cuda' : 'cpu')
  if (typeof backend !== 'string' || !/^[a-z]{1,16}$/.test(backend)) invalid('hardware.backend', 'must be cpu | cuda | vulkan | metal | other')
  const cores = finiteNonNeg(v.cores, 'hardware.cores', 100_000)
  return {
    id: optString(v.id, 'hardware.id', 64),
    cpuModel: optString(v.cpuModel, 'hardware.cpuModel'),
    cores,
    threads: v.threads === undefined ? cores : finiteNonNeg(v.threads, 'hardware.threads', 100_000),
    ramMiB: finiteNonNeg(v.ramMiB, 'hardware.ramMiB', 1e9),
    gpus: gpus.map((g, i) => {
      if (!isObj(g)) invalid(`hardware.gpus.${i}`, 'must be an object')
      return { name: optString(g.name, `hardware.gpus.${i}.name`), vramMiB: finiteNonNeg(g.vramMiB, `hardware.gpus.${i}.vramMiB`, 1e8) }
    }),
    backend,
    os: optString(v.os, 'hardware.os'),
    pricePerHour: v.pricePerHour === undefined ? undefined : finiteNonNeg(v.pricePerHour, 'hardware.pricePerHour', 1e4)
  }
}

export function parsePrompts (v: unknown, path = 'prompts'): string[] {
  if (!Array.isArray(v) || v.length === 0 || v.length > REQUEST_LIMITS.maxPrompts) invalid(path, `must be an array of 1..${REQUEST_LIMITS.maxPrompts} strings`)
  return v.map((p, i) => {
    if (typeof p !== 'string' || p.length > REQUEST_LIMITS.maxPromptChars) invalid(`${path}.${i}`, `must be a string of at most ${REQUEST_LIMITS.maxPromptChars} characters`)
    return p
  })
}

export function parseMaxTokens (v: unknown, path = 'maxTokens'): number | undefined {
  if (v === undefined) return undefined
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > REQUEST_LIMITS.maxTokens) invalid(path, `must be an integer in [1, ${REQUEST_LIMITS.maxTokens}]`)
  return v
}

/**
 * Pure validation of an untrusted recommend request (also the task file of
 * `swarmtune recommend --task`). Workload features may come as `workload: { features }`,
 * `workload: { <feature>: n }` or `features`; otherwise `prompts` are required.
 */
export function parseRecommendRequest (v: Record<string, unknown>): RecommendRequest {
  const known = new Set(['v', 'model', 'workload', 'features', 'family', 'prompts', 'maxTokens', 'objective', 'budget', 'slo', 'hardware', 'committee', 'methods'])
  for (const k of Object.keys(v)) if (!known.has(k)) invalid(k, 'unknown field')
  if (v.v !== undefined && v.v !== 1) invalid('v', 'unknown request version')
  const req: RecommendRequest = { model: parseModelRef(v.model), objective: 'throughput' }
  if (v.objective !== undefined) {
    if (!OBJECTIVES.includes(v.objective as Objective)) invalid('objective', `must be one of ${OBJECTIVES.join(', ')}`)
    req.objective = v.objective as Objective
  }
  let features: unknown = v.features
  if (v.workload !== undefined) {
    if (!isObj(v.workload)) invalid('workload', 'must be an object')
    features = v.workload.features ?? Object.fromEntries(Object.entries(v.workload).filter(([k]) => k !== 'family' && k !== 'name'))
    if (typeof v.workload.family === 'string') req.family = optString(v.workload.family, 'workload.family', 64)
  }
  if (v.family !== undefined) req.family = optString(v.family, 'family', 64)
  if (features !== undefined) req.features = parseFeatures(features, 'workload.features')
  if (v.prompts !== undefined) req.prompts = parsePrompts(v.prompts)
  req.maxTokens = parseMaxTokens(v.maxTokens)
  if (req.features == null && req.prompts == null) invalid('workload', 'give workload features or prompts')
  if (v.budget !== undefined) req.budget = finiteNonNeg(v.budget, 'budget', 1e9)
  if (v.slo !== undefined) {
    if (!isObj(v.slo)) invalid('slo', 'must be an object')
    for (const k of Object.keys(v.slo)) if (k !== 'ttftMs') invalid(`slo.${k}`, 'unknown field (only ttftMs)')
    req.slo = v.slo.ttftMs === undefined ? {} : { ttftMs: finiteNonNeg(v.slo.ttftMs, 'slo.ttftMs', 1e9) }
  }
  if (v.hardware !== undefined) req.hardware = parseHardwareHint(v.hardware)
  if (v.committee !== undefined) {
    if (typeof v.committee !== 'boolean') invalid('committee', 'must be true or false')
    req.committee = v.committee
  }
  if (v.methods !== undefined) {
    if (!Array.isArray(v.methods) || v.methods.length === 0 || v.methods.length > REQUEST_LIMITS.maxMethods) invalid('methods', `must be an array of 1..${REQUEST_LIMITS.maxMethods} method ids`)
    req.methods = v.methods.map((m, i) => {
      if (typeof m !== 'string' || !ID_RE.test(m)) invalid(`methods.${i}`, 'bad method id')
      return m
    })
  }
  return req
}

/** The node-side answer for a valid request (src/node/serving.ts supplies it). */
export type RecommendAnswerFn = (req: RecommendRequest, ctx: { peer: string, signal: AbortSignal }) => Promise<RecommendResponse>

export interface RecommendServiceInit {
  libp2p: Pick<Libp2p, 'handle' | 'unhandle'>
  answer: RecommendAnswerFn
  rejections: Counters
  limits?: Partial<RpcLimits>
  onViolation?: ViolationHook
}

export interface RpcService {
  start: () => Promise<void>
  stop: () => Promise<void>
  stats: () => RpcServerStats
}
export type RecommendService = RpcService

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

export function createRecommendService (init: RecommendServiceInit): RecommendService {
  const server = createRpcServer<RecommendRequest, RecommendResponse>({
    protocol: RECOMMEND_PROTOCOL,
    name: 'recommend',
    limits: { ...DEFAULT_RECOMMEND_LIMITS, ...init.limits },
    parse: parseRecommendRequest,
    answer: init.answer,
    rejections: init.rejections,
    onViolation: init.onViolation
  })
  return rpcService(init.libp2p, RECOMMEND_PROTOCOL, server)
}

/** Ask a peer for a recommendation. Throws RpcError with the server's code on an error response. */
export async function requestRecommendation (node: Pick<Libp2p, 'dialProtocol'>, target: PeerId | Multiaddr | Multiaddr[], request: Partial<RecommendRequest> | Record<string, unknown>, opts: RpcCallOptions = {}): Promise<RecommendResponse> {
  return await rpcCall<RecommendResponse>(node, target, RECOMMEND_PROTOCOL, request, opts)
}

/** Stable text form of a request (cache keys). */
export function requestKey (req: RecommendRequest): string {
  return canonicalize(req)
}

/**
 * A throwaway client node (fresh ed25519 identity, TCP + noise + yamux, no listen address, no
 * pubsub): what the CLI dials peers with. Stop it when done.
 */
export async function createClientNode (): Promise<Libp2p> {
  const [{ createLibp2p }, { tcp }, { noise }, { yamux }] = await Promise.all([
    import('libp2p'), import('@libp2p/tcp'), import('@chainsafe/libp2p-noise'), import('@chainsafe/libp2p-yamux')
  ])
  return await createLibp2p({
    addresses: { listen: [] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()]
  })
}
