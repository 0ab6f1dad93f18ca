import type { PrivateKey } from '@libp2p/interface'
import { canonicalBytes, decodeUtf8 } from './canonical.js'
import { decodeEnvelope, encodeEnvelope } from './codec.js'
import { RecordErrorCode as C, RecordValidationError } from './errors.js'
import { verifyDomainSignature, withDomain } from './sign.js'
import { checkPeerId } from './validate.js'

/*
 * A signed log head (sync 2.0.0, docs/records.md): an author's signature over the RFC 6962 root of
 * its own log 1..length (src/records/merkle.ts, leaves = record wire envelopes). Its own domain
 * prefix, so it can never be confused with a record, a vote or a libp2p message. On the wire it
 * uses the record envelope layout: 0x01 ‖ 64-byte signature ‖ canonical JSON body.
 */
export const LOG_HEAD_DOMAIN = new TextEncoder().encode('swarmtune/loghead/v1\n')
/** a head body is ~150 bytes; anything much larger is garbage */
export const MAX_LOG_HEAD_BYTES = 1024
/**
 * How far a head reaches: a sync 2.0.0 run holds at most this many records (the client buffers a
 * run until its root is checked), so a head helps a client at most this far behind it
 */
export const LOG_HEAD_REACH = 4096

export interface LogHeadBody {
  v: 1
  author: string
  /** leaves covered: records 1..length of the author */
  length: number
  /** lowercase hex RFC 6962 root (64 characters) */
  root: string
  /** signing time, ms since the epoch */
  timestamp: number
}

export interface LogHead {
  body: LogHeadBody
  bytes: Uint8Array
  signature: Uint8Array
  /** the envelope as it travels and is stored */
  wire: Uint8Array
}

export async function signLogHead (key: PrivateKey, author: string, length: number, root: Uint8Array, now = Date.now()): Promise<LogHead> {
  const body: LogHeadBody = { v: 1, author, length, root: Buffer.from(root).toString('hex'), timestamp: now }
  const bytes = canonicalBytes(body)
  const signature = await key.sign(withDomain(LOG_HEAD_DOMAIN, bytes))
  return { body, bytes, signature, wire: encodeEnvelope(bytes, signature) }
}

/** Envelope, JSON, fields, canonical form; no signature check (that comes once the root matched). */
export function decodeLogHead (wire: Uint8Array): LogHead {
  if (wire.length > MAX_LOG_HEAD_BYTES) throw new RecordValidationError(C.OVERSIZE, `log head of ${wire.length} bytes`)
  const { signature, bytes } = decodeEnvelope(wire)
  const bad = (why: string): never => { throw new RecordValidationError(C.MALFORMED, `log head: ${why}`) }
  let v: unknown
  try { v = JSON.parse(decodeUtf8(bytes)) } catch { bad('not UTF-8 JSON') }
  if (v == null || typeof v !== 'object' || Array.isArray(v)) bad('not an object')
  const o = v as Record<string, unknown>
  if (Object.keys(o).length !== 5) bad('unknown or missing fields')
  if (o.v !== 1) throw new RecordValidationError(C.UNKNOWN_VERSION, `log head version ${String(o.v)}`)
  checkPeerId(o.author, 'author')
  if (typeof o.length !== 'number' || !Number.isSafeInteger(o.length) || o.length < 1) bad('length')
  if (typeof o.root !== 'string' || !/^[0-9a-f]{64}$/.test(o.root)) bad('root')
  if (typeof o.timestamp !== 'number' || !Number.isSafeInteger(o.timestamp) || o.timestamp < 0) bad('timestamp')
  const body = o as unknown as LogHeadBody
  if (Buffer.compare(canonicalBytes(body), bytes) !== 0) bad('not in canonical form')
  return { body, bytes: Uint8Array.from(bytes), signature: Uint8Array.from(signature), wire: Uint8Array.from(wire) }
}

/** The author's signature over the head (E_BAD_SIGNATURE when it does not verify). */
export async function verifyLogHeadSignature (head: LogHead): Promise<void> {
  await verifyDomainSignature(head.body.author, LOG_HEAD_DOMAIN, head.bytes, head.signature)
}

/** decode + signature: the entry point for an untrusted head on its own. */
export async function verifyLogHead (wire: Uint8Array): Promise<LogHead> {
  const head = decodeLogHead(wire)
  await verifyLogHeadSignature(head)
  return head
}

/**
 * Pure: which of an author's head lengths a store keeps (docs/records.md, "Sync 2.0.0"): the
 * heads a client at position 0 walks through, taking at each step the longest head within
 * `reach` (or the next one, where none is). Every position that had a head within reach still
 * has one, the latest head is always kept, and two kept heads apart by one are more than `reach`
 * apart, so an author's log of n records keeps at most 2n/reach + 2 heads however often it signs.
 */
export function headsToKeep (lengths: number[], reach = LOG_HEAD_REACH): Set<number> {
  const sorted = [...new Set(lengths)].sort((a, b) => a - b)
  const keep = new Set<number>()
  let pos = 0
  for (let i = 0; i < sorted.length;) {
    let j = i
    while (j + 1 < sorted.length && sorted[j + 1] <= pos + reach) j++
    keep.add(sorted[j])
    pos = sorted[j]
    i = j + 1
  }
  return keep
}
