import { createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto'
import { publicKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromString } from '@libp2p/peer-id'
import type { PrivateKey, PublicKey } from '@libp2p/interface'
import { RecordErrorCode as C, RecordValidationError } from './errors.js'
import { decodeEnvelope, encodeBody, encodeEnvelope, parseBody, recordId } from './codec.js'
import { leafHash } from './merkle.js'
import { recordVersionFor, type RecordBody, type SignedRecord, type UnsignedBody } from './types.js'
import { MAX_BODY_BYTES } from './limits.js'

/** Domain separation: a record signature can never be replayed as a vote, a libp2p message, etc. */
export const RECORD_DOMAIN = new TextEncoder().encode('swarmtune/record/v1\n')

export function withDomain (domain: Uint8Array, bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(domain.length + bytes.length)
  out.set(domain, 0)
  out.set(bytes, domain.length)
  return out
}

// Peer ids are parsed far more often than authors change: cache each author's public key as a
// node KeyObject (bounded). @libp2p/crypto rebuilds a KeyObject from JWK on every verify, which
// costs ~10 % of the ingest path; calling node's ed25519 verify on a cached key avoids it.
const keyCache = new Map<string, KeyObject>()
const KEY_CACHE_MAX = 10_000

function rawKeyOf (author: string): Uint8Array {
  try {
    const pk = peerIdFromString(author).publicKey
    if (pk?.type === 'Ed25519') return pk.raw
  } catch {}
  throw new RecordValidationError(C.MALFORMED_ID, 'author is not an ed25519 peer id', 'author')
}

function verifyKeyOf (author: string): KeyObject {
  let key = keyCache.get(author)
  if (key != null) return key
  key = createPublicKey({ format: 'jwk', key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(rawKeyOf(author)).toString('base64url') } })
  if (keyCache.size >= KEY_CACHE_MAX) keyCache.delete(keyCache.keys().next().value as string)
  keyCache.set(author, key)
  return key
}

/** The author's public key as a libp2p key (throws E_MALFORMED_ID for a non-ed25519 id). */
export function publicKeyOf (author: string): PublicKey {
  return publicKeyFromRaw(rawKeyOf(author))
}

export async function verifyDomainSignature (author: string, domain: Uint8Array, bytes: Uint8Array, signature: Uint8Array): Promise<void> {
  if (signature.length !== 64 || !cryptoVerify(null, withDomain(domain, bytes), verifyKeyOf(author), signature)) {
    throw new RecordValidationError(C.BAD_SIGNATURE, 'signature does not match the author key')
  }
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
  const body: RecordBody = { ...unsigned, v: recordVersionFor(unsigned), author, seq, timestamp: unsigned.timestamp ?? now }
  return await signBody(key, body)
}

/*
 * What is known of a record's wire form, kept beside the record (never on it, so records compare
 * and serialize as before): the envelope it was decoded from, and its Merkle leaf (sync 2.0.0,
 * records/merkle.ts) where a verification worker hashed exactly those bytes. Only set where the
 * record's bytes and signature are views of that very envelope (a record made here from a wire),
 * so toWire() returns the same bytes it would encode, without the copy.
 */
const wireOfRecord = new WeakMap<SignedRecord, Uint8Array>()
const leafOfRecord = new WeakMap<SignedRecord, Uint8Array>()

export function toWire (record: SignedRecord): Uint8Array {
  return wireOfRecord.get(record) ?? encodeEnvelope(record.bytes, record.signature)
}

/** The record's Merkle leaf, leafHash(toWire(record)): hashed once, by the worker that checked it where there is one. */
export function leafOf (record: SignedRecord): Uint8Array {
  let leaf = leafOfRecord.get(record)
  if (leaf == null) {
    leaf = leafHash(toWire(record))
    leafOfRecord.set(record, leaf)
  }
  return leaf
}

/** A record over an envelope this module owns (`wire` is never changed later): bytes and signature are views of it. */
function recordOverWire (wire: Uint8Array, id: string, body: RecordBody, leaf?: Uint8Array): SignedRecord {
  const { signature, bytes } = decodeEnvelope(wire)
  const record: SignedRecord = { id, body, bytes, signature }
  wireOfRecord.set(record, wire)
  if (leaf != null) leafOfRecord.set(record, leaf)
  return record
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
  // one copy out of the (possibly pooled) network buffer
  return recordOverWire(wire.slice(), recordId(bytes), body)
}

/**
 * verifyWire() without the signature: envelope, size, schema, plausibility, canonical form. Only
 * for records whose bytes are vouched for otherwise: sync 2.0.0 runs, whose leaves an author's
 * signed log head commits to (docs/records.md). Everything else uses verifyWire().
 */
export function decodeWireUnverified (wire: Uint8Array, now = Date.now()): SignedRecord {
  const { bytes } = decodeEnvelope(wire)
  const body = parseBody(bytes, now)
  return recordOverWire(wire.slice(), recordId(bytes), body)
}

/** What a verification worker answers for a wire that passed: the record's id and its Merkle leaf. */
export interface WireProof { id: string, leaf: Uint8Array }

/**
 * verifyWire()'s checks (or, with `signature` false, decodeWireUnverified()'s) without building a
 * record: for a verification worker, which answers the id and the leaf of exactly these bytes and
 * copies nothing.
 */
export async function proveWire (wire: Uint8Array, now = Date.now(), signature = true): Promise<WireProof> {
  const env = decodeEnvelope(wire)
  const body = parseBody(env.bytes, now)
  if (signature) await verifyDomainSignature(body.author, RECORD_DOMAIN, env.bytes, env.signature)
  return { id: recordId(env.bytes), leaf: leafHash(wire) }
}

/**
 * Rebuild a record from a wire envelope that verifyWire() (or proveWire()) has already accepted
 * elsewhere (a verification worker of this process, which reports the id and the leaf). It
 * re-checks nothing: never call it on bytes that did not pass there. `wire` becomes the record's
 * (its bytes and signature are views of it): pass a copy nobody else changes. Cheaper than
 * verifyWire by the signature and the schema checks, so the coordinating thread only parses what
 * the workers proved.
 */
export function recordFromVerifiedWire (wire: Uint8Array, id: string, leaf?: Uint8Array): SignedRecord {
  const { bytes } = decodeEnvelope(wire)
  const body = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('utf8')) as RecordBody
  return recordOverWire(wire, id, body, leaf)
}
