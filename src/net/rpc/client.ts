import type { Libp2p, PeerId, PrivateKey } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { SwarmtuneError, errorMessage } from '../../util/errors.js'
import { RpcError, RpcErrorCode, rpcErrorCode } from './errors.js'
import { decodeJson, encodeJson, remoteError, responseStream } from './framing.js'
import { withCoalescedWrites } from '../coalesce-writes.js'
import { DEFAULT_MAX_RESPONSE_BYTES } from './limits.js'

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
  const stream = await node.dialProtocol(target, protocol, { signal })
  try {
    const lp = responseStream(stream, opts.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES)
    await lp.write(request instanceof Uint8Array ? request : encodeJson(request), { signal })
    const bytes = (await lp.read({ signal })).subarray()
    await stream.close({ signal }).catch(() => {})
    let value: unknown
    try {
      value = decodeJson(bytes)
    } catch {
      throw new RpcError(RpcErrorCode.MALFORMED, 'response is not UTF-8 JSON')
    }
    const remote = remoteError(value)
    if (remote != null) throw remote
    return value as Res
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)))
    if (err instanceof SwarmtuneError) throw err
    throw new RpcError(rpcErrorCode(signal.aborted ? signal.reason : err), errorMessage(signal.aborted ? signal.reason : err), { cause: err })
  }
}

/**
 * A throwaway client node (fresh ed25519 identity, TCP + noise + yamux, no listen address, no
 * pubsub), or one with the given key: what the CLI dials peers with. Stop it when done.
 */
export async function createClientNode (opts: { privateKey?: PrivateKey } = {}): Promise<Libp2p> {
  const [{ createLibp2p }, { tcp }, { noise }, { yamux }] = await Promise.all([
    import('libp2p'), import('@libp2p/tcp'), import('@chainsafe/libp2p-noise'), import('@chainsafe/libp2p-yamux')
  ])
  return await createLibp2p({
    // a known key: a client the server lists by peer ID (net.priorityPeers)
    ...(opts.privateKey != null ? { privateKey: opts.privateKey } : {}),
    addresses: { listen: [] },
    transports: [withCoalescedWrites(tcp())],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()]
  })
}
