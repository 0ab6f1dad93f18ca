import { publicKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromString } from '@libp2p/peer-id'
import type { PrivateKey, PublicKey } from '@libp2p/interface'
import { RecordErrorCode as C, RecordValidationError } from './errors.js'
import { decodeEnvelope, encodeBody, encodeEnvelope, parseBody, recordId } from './codec.js'
import { RECORD_VERSION, type RecordBody, type SignedRecord, type UnsignedBody } from './types.js'
import { MAX_BODY_BYTES } from './limits.js'

/** Domain separation: a record signature can never be replayed as a vote, a libp2p message, etc. */
export const RECORD_DOMAIN = new TextEncoder().encode('swarmtune/record/v1\n')

export function withDomain (domain: Uint8Array, bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(domain.length + bytes.length)
  out.set(domain, 0)
  out.set(bytes, domain.length)
  return out
}

// Peer ids are parsed far more often than authors change: cache their public keys (bounded).
const keyCache = new Map<string, PublicKey>()
const KEY_CACHE_MAX = 10_000

export function publicKeyOf (author: string): PublicKey {
  let key = keyCache.get(author)
  if (key != null) return key
  let pk: PublicKey | undefined
  try {
    pk = peerIdFromString(author).publicKey
  } catch {}
  if (pk?.type !== 'Ed25519') throw new RecordValidationError(C.MALFORMED_ID, 'author is not an ed25519 peer id', 'author')
  key = publicKeyFromRaw(pk.raw)
  if (keyCache.size >= KEY_CACHE_MAX) keyCache.delete(keyCache.keys().next().value as string)
  keyCache.set(author, key)
  return key
}

export async function verifyDomainSignature (author: string, domain: Uint8Array, bytes: Uint8Array, signature: Uint8Array): Promise<void> {
  const ok = await publicKeyOf(author).verify(withDomain(domain, bytes), signature)
  if (!ok) throw new RecordValidationError(C.BAD_SIGNATURE, 'signature does not match the author key')
}

/** Sign a complete body with the author's key. The key must belong to body.author. */
export async function signBody (key: PrivateKey, body: RecordBody): Promise<SignedRecord> {
  const bytes = encodeBody(body)
  if (bytes.length > MAX_BODY_BYTES) throw new RecordValidationError(C.OVERSIZE, `body of ${bytes.length} bytes exceeds ${MAX_BODY_BYTES}`)
  const signature = await key.sign(withDomain(RECORD_DOMAIN, bytes))
  return { id: recordId(bytes), body, bytes, signature }
}

/** Fill in v/author/seq/timestamp and sign. */
export async function createRecord (key: PrivateKey, author: string, seq: number, unsigned: UnsignedBody, now = Date.now()): Promise<SignedRecord> {
  const body: RecordBody = { ...unsigned, v: RECORD_VERSION, author, seq, timestamp: unsigned.timestamp ?? now }
  return await signBody(key, body)
}

export function toWire (record: SignedRecord): Uint8Array {
  return encodeEnvelope(record.bytes, record.signature)
}

/**
 * The single entry point for untrusted records, used by gossip, sync and import alike:
 * envelope → size → JSON → schema/plausibility → canonical form → signature.
 * Cheap checks run first so garbage never costs a signature verification.
 */
export async function verifyWire (wire: Uint8Array, now = Date.now()): Promise<SignedRecord> {
  const { signature, bytes } = decodeEnvelope(wire)
  const body = parseBody(bytes, now)
  await verifyDomainSignature(body.author, RECORD_DOMAIN, bytes, signature)
  // copy out of the (possibly pooled) network buffer
  const own = Uint8Array.from(bytes)
  return { id: recordId(own), body, bytes: own, signature: Uint8Array.from(signature) }
}
