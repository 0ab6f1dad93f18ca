import type { Libp2p, PeerId, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { errorMessage } from '../../util/errors.js'
import type { RpcCallOptions } from './client.js'
import { RpcError, RpcErrorCode, rpcErrorCode } from './errors.js'
import { decodeJson, encodeJson, remoteError, responseStream, type LpStream } from './framing.js'
import { DEFAULT_MAX_RESPONSE_BYTES } from './limits.js'

interface PooledStream { stream: Stream, lp: LpStream }

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
        return { stream, lp: responseStream(stream, this.opts.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES) }
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
      value = decodeJson(bytes)
    } catch (err) {
      const e = new RpcError(rpcErrorCode(signal.aborted ? signal.reason : err), errorMessage(signal.aborted ? signal.reason : err), { cause: err })
      this.discard(s, e)
      throw e
    }
    const err = remoteError(value)
    if (err != null) {
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
