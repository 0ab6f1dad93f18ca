import type { PrivateKey } from '@libp2p/interface'
import { canonicalBytes, decodeUtf8 } from '../records/canonical.js'
import { publicKeyOf, withDomain } from '../records/sign.js'
import { VoteErrorCode as C, VoteValidationError } from './errors.js'
import { MAX_CLASS_KEY, MAX_EVIDENCE, MAX_RANKING, MAX_VOTE_AGE_MS, MAX_VOTE_BYTES, MAX_VOTE_CLASSES, MAX_VOTE_SKEW_MS } from './limits.js'
import { VOTE_VERSION, type ClassVote, type SignedVote, type VoteBody, type VoteEntry } from './types.js'

/**
 * Vote wire form, version 1: [0x01][64-byte ed25519 signature][canonical JSON body]. The
 * signature covers VOTE_DOMAIN || body, so a vote signature can never be replayed as a record
 * (whose domain is "swarmtune/record/v1\n") or vice versa, even though both are signed by the
 * same peer key.
 */
export const VOTE_DOMAIN = new TextEncoder().encode('swarmtune/vote/v1\n')
export const VOTE_ENVELOPE_VERSION = 1
const SIG = 64
const HEADER = 1 + SIG

const PEER_ID_RE = /^12D3KooW[1-9A-HJ-NP-Za-km-z]{44}$/
const METHOD_RE = /^[A-Za-z0-9][A-Za-z0-9+._:/-]{0,127}$/
const CLASS_RE = /^[A-Za-z0-9][A-Za-z0-9=|._:+-]*$/
const SNAPSHOT_RE = /^[A-Za-z0-9._:+-]{0,128}$/
const MIN_TIMESTAMP_MS = Date.UTC(2020, 0, 1)

type Obj = Record<string, unknown>

function fail (code: Code, message: string, path?: string): never {
  throw new VoteValidationError(code, message, path)
}
type Code = typeof C[keyof typeof C]

function obj (v: unknown, path: string): Obj {
  if (v == null || typeof v !== 'object' || Array.isArray(v)) fail(C.MALFORMED, 'must be an object', path)
  return v as Obj
}

function int (v: unknown, path: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) fail(C.MALFORMED, `must be an integer within [${min}, ${max}]`, path)
  return v
}

function onlyKeys (o: Obj, keys: string[], path: string): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) fail(C.MALFORMED, 'unknown field', path === '' ? k : `${path}.${k}`)
}

export function checkVoteEntry (v: unknown, path: string): VoteEntry {
  const e = obj(v, path)
  onlyKeys(e, ['method', 'score'], path)
  if (typeof e.method !== 'string' || !METHOD_RE.test(e.method)) fail(C.BAD_ID, 'bad method id', `${path}.method`)
  if (typeof e.score !== 'number' || !Number.isFinite(e.score)) fail(C.BAD_SCORE, 'must be a finite number', `${path}.score`)
  return e as unknown as VoteEntry
}

export function checkClassVote (v: unknown, path: string): ClassVote {
  const c = obj(v, path)
  onlyKeys(c, ['key', 'ranking', 'evidence'], path)
  if (typeof c.key !== 'string' || c.key.length > MAX_CLASS_KEY || !CLASS_RE.test(c.key)) fail(C.BAD_ID, 'bad task class key', `${path}.key`)
  if (!Array.isArray(c.ranking) || c.ranking.length === 0 || c.ranking.length > MAX_RANKING) fail(C.MALFORMED, `must be an array of 1..${MAX_RANKING} entries`, `${path}.ranking`)
  const seen = new Set<string>()
  c.ranking.forEach((e, i) => {
    const entry = checkVoteEntry(e, `${path}.ranking.${i}`)
    if (seen.has(entry.method)) fail(C.MALFORMED, `method ${entry.method} ranked twice`, `${path}.ranking.${i}`)
    seen.add(entry.method)
  })
  const ev = obj(c.evidence, `${path}.evidence`)
  onlyKeys(ev, ['records', 'authors'], `${path}.evidence`)
  int(ev.records, `${path}.evidence.records`, 0, MAX_EVIDENCE)
  int(ev.authors, `${path}.evidence.authors`, 0, MAX_EVIDENCE)
  return c as unknown as ClassVote
}

/** Pure schema validation of an untrusted, parsed vote body. */
export function validateVoteBody (value: unknown, now = Date.now()): VoteBody {
  const b = obj(value, '')
  if (b.v !== VOTE_VERSION) fail(C.UNKNOWN_VERSION, `unknown vote version ${JSON.stringify(b.v)}`, 'v')
  onlyKeys(b, ['v', 'author', 'seq', 'timestamp', 'snapshot', 'classes'], '')
  if (typeof b.author !== 'string' || !PEER_ID_RE.test(b.author)) fail(C.BAD_ID, 'not an ed25519 peer id', 'author')
  int(b.seq, 'seq', 1, Number.MAX_SAFE_INTEGER)
  const t = int(b.timestamp, 'timestamp', MIN_TIMESTAMP_MS, Number.MAX_SAFE_INTEGER)
  if (t > now + MAX_VOTE_SKEW_MS) fail(C.FUTURE_TIMESTAMP, `${Math.round((t - now) / 1000)} s in the future`, 'timestamp')
  if (t < now - MAX_VOTE_AGE_MS) fail(C.STALE, `${Math.round((now - t) / 3600_000)} h old`, 'timestamp')
  if (typeof b.snapshot !== 'string' || !SNAPSHOT_RE.test(b.snapshot)) fail(C.BAD_ID, 'bad snapshot version', 'snapshot')
  if (!Array.isArray(b.classes) || b.classes.length === 0 || b.classes.length > MAX_VOTE_CLASSES) fail(C.MALFORMED, `must be an array of 1..${MAX_VOTE_CLASSES} classes`, 'classes')
  const keys = new Set<string>()
  b.classes.forEach((c, i) => {
    const cv = checkClassVote(c, `classes.${i}`)
    if (keys.has(cv.key)) fail(C.MALFORMED, `class ${cv.key} voted twice`, `classes.${i}`)
    keys.add(cv.key)
  })
  return b as unknown as VoteBody
}

export async function signVote (key: PrivateKey, body: VoteBody): Promise<SignedVote> {
  validateVoteBody(body, body.timestamp)
  const bytes = canonicalBytes(body)
  if (bytes.length > MAX_VOTE_BYTES) fail(C.OVERSIZE, `vote of ${bytes.length} bytes exceeds ${MAX_VOTE_BYTES}`)
  const signature = await key.sign(withDomain(VOTE_DOMAIN, bytes))
  return { body, bytes, signature }
}

export function voteToWire (vote: SignedVote): Uint8Array {
  const out = new Uint8Array(HEADER + vote.bytes.length)
  out[0] = VOTE_ENVELOPE_VERSION
  out.set(vote.signature, 1)
  out.set(vote.bytes, HEADER)
  return out
}

/**
 * The one entry point for untrusted votes: envelope → size → JSON → schema → canonical form →
 * signature (cheap checks first, so garbage never costs a verification).
 */
export async function verifyVoteWire (wire: Uint8Array, now = Date.now()): Promise<SignedVote> {
  if (wire.length < HEADER + 2) fail(C.MALFORMED, `vote of ${wire.length} bytes is too short`)
  if (wire[0] !== VOTE_ENVELOPE_VERSION) fail(C.UNKNOWN_VERSION, `unknown vote envelope version ${wire[0]}`)
  if (wire.length - HEADER > MAX_VOTE_BYTES) fail(C.OVERSIZE, `vote of ${wire.length - HEADER} bytes exceeds ${MAX_VOTE_BYTES}`)
  const bytes = wire.subarray(HEADER)
  let value: unknown
  try {
    value = JSON.parse(decodeUtf8(bytes))
  } catch {
    fail(C.MALFORMED, 'body is not UTF-8 JSON')
  }
  const body = validateVoteBody(value, now)
  const again = canonicalBytes(body)
  if (again.length !== bytes.length || Buffer.compare(again, bytes) !== 0) fail(C.MALFORMED, 'body is not in canonical form')
  let ok = false
  try {
    ok = await publicKeyOf(body.author).verify(withDomain(VOTE_DOMAIN, bytes), wire.subarray(1, HEADER))
  } catch {}
  if (!ok) fail(C.BAD_SIGNATURE, 'signature does not match the author key')
  return { body, bytes: Uint8Array.from(bytes), signature: Uint8Array.from(wire.subarray(1, HEADER)) }
}

/**
 * Split a long list of class votes into bodies that each fit the limits (the service publishes
 * one message per chunk, each with its own seq).
 */
export function chunkClasses (classes: ClassVote[], maxPerVote = MAX_VOTE_CLASSES, maxBytes = MAX_VOTE_BYTES - 1024): ClassVote[][] {
  const out: ClassVote[][] = []
  let cur: ClassVote[] = []
  let size = 0
  for (const c of classes) {
    const n = canonicalBytes(c).length + 1
    if (cur.length > 0 && (cur.length >= maxPerVote || size + n > maxBytes)) {
      out.push(cur)
      cur = []
      size = 0
    }
    cur.push(c)
    size += n
  }
  if (cur.length > 0) out.push(cur)
  return out
}
