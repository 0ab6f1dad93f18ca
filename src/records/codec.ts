import { createHash } from 'node:crypto'
import { canonicalBytes, canonicalize, decodeUtf8 } from './canonical.js'
import { RecordErrorCode as C, RecordValidationError } from './errors.js'
import { MAX_BODY_BYTES } from './limits.js'
import { validateBody } from './validate.js'
import type { RecordBody } from './types.js'

/**
 * Wire envelope, version 1 (docs/records.md):
 *   byte 0        envelope version (0x01)
 *   bytes 1..64   ed25519 signature over DOMAIN || body
 *   bytes 65..    canonical JSON body (at most 64 KiB)
 * The id of a record is the hex SHA-256 of its body bytes, so the same measurement has the same
 * id everywhere and re-delivery is idempotent.
 */
export const ENVELOPE_VERSION = 1
export const SIGNATURE_BYTES = 64
const HEADER = 1 + SIGNATURE_BYTES

export function encodeBody (body: RecordBody): Uint8Array {
  return canonicalBytes(body)
}

export function recordId (bodyBytes: Uint8Array): string {
  return createHash('sha256').update(bodyBytes).digest('hex')
}

export function encodeEnvelope (bodyBytes: Uint8Array, signature: Uint8Array): Uint8Array {
  if (signature.length !== SIGNATURE_BYTES) throw new RecordValidationError(C.MALFORMED, 'signature must be 64 bytes')
  const out = new Uint8Array(HEADER + bodyBytes.length)
  out[0] = ENVELOPE_VERSION
  out.set(signature, 1)
  out.set(bodyBytes, HEADER)
  return out
}

export interface DecodedEnvelope {
  signature: Uint8Array
  bytes: Uint8Array
}

/** Split an untrusted envelope; checks sizes and version only (no parsing, no crypto). */
export function decodeEnvelope (wire: Uint8Array): DecodedEnvelope {
  if (wire.length < HEADER + 2) throw new RecordValidationError(C.MALFORMED, `envelope of ${wire.length} bytes is too short`)
  if (wire[0] !== ENVELOPE_VERSION) throw new RecordValidationError(C.UNKNOWN_VERSION, `unknown envelope version ${wire[0]}`)
  if (wire.length - HEADER > MAX_BODY_BYTES) throw new RecordValidationError(C.OVERSIZE, `body of ${wire.length - HEADER} bytes exceeds ${MAX_BODY_BYTES}`)
  return { signature: wire.subarray(1, HEADER), bytes: wire.subarray(HEADER) }
}

const AUTHOR_PREFIX = new TextEncoder().encode('{"author":"')

/**
 * The author a wire record claims, read without parsing or verifying anything (undefined when the
 * body does not start the canonical way). Canonical bodies sort their keys and "author" sorts
 * first, so a valid record always starts with {"author":"...". For cheap triage only (the
 * per-author gossip budget): nothing here is proven until verifyWire.
 */
export function claimedAuthor (wire: Uint8Array): string | undefined {
  const start = HEADER + AUTHOR_PREFIX.length
  if (wire.length < start + 2) return undefined
  for (let i = 0; i < AUTHOR_PREFIX.length; i++) if (wire[HEADER + i] !== AUTHOR_PREFIX[i]) return undefined
  const end = Math.min(wire.length, start + 128)
  let s = ''
  for (let i = start; i < end; i++) {
    const b = wire[i]
    if (b === 0x22) return s.length > 0 ? s : undefined
    // peer ids are base58btc: plain ASCII letters and digits
    if (!((b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a))) return undefined
    s += String.fromCharCode(b)
  }
  return undefined
}

/**
 * Parse and validate body bytes. The bytes must be the canonical encoding of what they decode
 * to: otherwise two encodings of one body could carry two ids (and dodge equivocation checks).
 */
export function parseBody (bytes: Uint8Array, now = Date.now()): RecordBody {
  if (bytes.length > MAX_BODY_BYTES) throw new RecordValidationError(C.OVERSIZE, `body of ${bytes.length} bytes exceeds ${MAX_BODY_BYTES}`)
  let text: string
  let value: unknown
  try {
    text = decodeUtf8(bytes)
    value = JSON.parse(text)
  } catch {
    throw new RecordValidationError(C.MALFORMED, 'body is not UTF-8 JSON')
  }
  const body = validateBody(value, now)
  // compared as strings, the same verdict as comparing bytes (both are well-formed: the decoder is
  // fatal, and canonicalize escapes lone surrogates), without encoding the canonical form (about
  // 3 of the body checks' 20 µs, bench:verify-parts)
  if (canonicalize(body) !== text) {
    throw new RecordValidationError(C.MALFORMED, 'body is not in canonical form')
  }
  return body
}
