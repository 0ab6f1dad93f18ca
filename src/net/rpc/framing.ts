import { lpStream } from '@libp2p/utils'
import type { Stream } from '@libp2p/interface'
import { RpcError, RpcErrorCode } from './errors.js'

/**
 * The wire format of every swarmtune RPC protocol: each message is an unsigned-varint length
 * prefix and that many bytes of UTF-8 JSON; an error response is `{ "error": { "code", "message" } }`.
 * Size limits are enforced on the length prefix, before a body is buffered.
 */

export type LpStream = ReturnType<typeof lpStream>

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

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

export function encodeJson (value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value))
}

/** UTF-8 JSON bytes → value; throws the decoder's or JSON.parse's own error (callers choose the code). */
export function decodeJson (bytes: Uint8Array): unknown {
  return JSON.parse(decoder.decode(bytes))
}

/** Pure: request bytes → a JSON object (E_REQ_MALFORMED otherwise). */
export function parseJsonObject (bytes: Uint8Array): Record<string, unknown> {
  let value: unknown
  try {
    value = decodeJson(bytes)
  } catch {
    throw new RpcError(RpcErrorCode.MALFORMED, 'request is not UTF-8 JSON')
  }
  if (value == null || typeof value !== 'object' || Array.isArray(value)) throw new RpcError(RpcErrorCode.MALFORMED, 'request must be a JSON object')
  return value as Record<string, unknown>
}

/** Client side: reads responses of at most `maxBytes` (a little slack for the length prefix). */
export function responseStream (stream: Stream, maxBytes: number): LpStream {
  return lpStream(stream, { maxDataLength: maxBytes, maxBufferSize: maxBytes + 16 })
}

/** Pure: the error carried by an error response, or undefined for an answer. */
export function remoteError (value: unknown): RpcError | undefined {
  const e = (value as { error?: { code?: unknown, message?: unknown } } | null)?.error
  if (e == null || typeof e !== 'object') return undefined
  return new RpcError(typeof e.code === 'string' ? e.code : 'E_REMOTE', typeof e.message === 'string' ? e.message : 'remote error')
}
