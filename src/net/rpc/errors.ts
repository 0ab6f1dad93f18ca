import { SwarmtuneError, errorCode } from '../../util/errors.js'

/** Stable error codes of the RPC framework: sent in error responses and counted as `<protocol>:<code>`. */
export const RpcErrorCode = {
  /** request body over the limit */
  OVERSIZE: 'E_REQ_OVERSIZE',
  /** not UTF-8 JSON, or not a JSON object */
  MALFORMED: 'E_REQ_MALFORMED',
  /** JSON, but not a valid request (field named in the message) */
  INVALID: 'E_REQ_INVALID',
  /** the first request on a stream did not arrive within `firstFrameMs` (sent a prefix, then stalled) */
  STALLED: 'E_REQ_STALLED',
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
export const BLAMEWORTHY: ReadonlySet<string> = new Set<string>([RpcErrorCode.OVERSIZE, RpcErrorCode.MALFORMED, RpcErrorCode.INVALID, RpcErrorCode.TRUNCATED, RpcErrorCode.STALLED, RpcErrorCode.TIMEOUT, RpcErrorCode.BUSY, RpcErrorCode.PENALIZED])

/** Refuse a request field: E_REQ_INVALID naming the field, what every protocol's parse throws. */
export function invalidField (path: string, message: string): never {
  throw new RpcError(RpcErrorCode.INVALID, `${path}: ${message}`)
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
