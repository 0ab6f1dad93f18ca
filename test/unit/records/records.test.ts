import { describe, it, expect } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import {
  canonicalize, createRecord, toWire, verifyWire, parseBody, decodeEnvelope, encodeEnvelope, recordId,
  synthBodies, validateBody, checkMetric, checkTimestamp, checkVersion, checkPeerId, checkNumberMap,
  RECORD_DOMAIN, withDomain, MAX_BODY_BYTES, MAX_CLOCK_SKEW_MS, CEILINGS, type RecordBody
} from '../../../src/records/index.js'

async function identity () {
  const key = await generateKeyPair('Ed25519')
  return { key, author: peerIdFromPrivateKey(key).toString() }
}

async function sampleRecord (now = Date.now()) {
  const { key, author } = await identity()
  const [unsigned] = synthBodies(1, 7, now)
  return { key, author, rec: await createRecord(key, author, 1, unsigned, now) }
}

function codeOf (fn: () => unknown): string | undefined {
  try { fn() } catch (err: any) { return err.code }
  return undefined
}

async function codeOfAsync (p: Promise<unknown>): Promise<string | undefined> {
  try { await p } catch (err: any) { return err.code }
  return undefined
}

describe('canonical encoding', () => {
  it('sorts keys, drops undefined, is independent of insertion order', () => {
    expect(canonicalize({ b: 1, a: [2, { d: undefined, c: 'x' }] })).toBe('{"a":[2,{"c":"x"}],"b":1}')
    expect(canonicalize({ a: 1, b: 2 })).toBe(canonicalize({ b: 2, a: 1 }))
  })
  it('refuses non-finite numbers', () => {
    expect(codeOf(() => canonicalize({ x: NaN }))).toBe('E_NON_FINITE')
  })
  it('round-trips a signed record through the wire form with identical bytes and id', async () => {
    const { rec } = await sampleRecord()
    const back = await verifyWire(toWire(rec))
    expect(back.id).toBe(rec.id)
    expect(Buffer.from(back.bytes).equals(Buffer.from(rec.bytes))).toBe(true)
    expect(back.body).toEqual(rec.body)
    expect(rec.id).toBe(recordId(rec.bytes))
  })
})

describe('signing', () => {
  it('uses a domain-separated signature', async () => {
    const { key, rec } = await sampleRecord()
    const raw = await key.sign(rec.bytes)
    expect(Buffer.from(raw).equals(Buffer.from(rec.signature))).toBe(false)
    expect(await key.publicKey.verify(withDomain(RECORD_DOMAIN, rec.bytes), rec.signature)).toBe(true)
  })
  it('rejects a forged signature', async () => {
    const { rec } = await sampleRecord()
    const sig = Uint8Array.from(rec.signature); sig[0] ^= 1
    expect(await codeOfAsync(verifyWire(encodeEnvelope(rec.bytes, sig)))).toBe('E_BAD_SIGNATURE')
  })
  it('rejects a body signed by another key than its author', async () => {
    const { rec } = await sampleRecord()
    const other = await identity()
    const sig = await other.key.sign(withDomain(RECORD_DOMAIN, rec.bytes))
    expect(await codeOfAsync(verifyWire(encodeEnvelope(rec.bytes, sig)))).toBe('E_BAD_SIGNATURE')
  })
  it('rejects a tampered body', async () => {
    const { rec } = await sampleRecord()
    const body = { ...rec.body, result: { ...rec.body.result, wallMs: rec.body.result.wallMs + 1 } }
    const bytes = new TextEncoder().encode(canonicalize(body))
    expect(await codeOfAsync(verifyWire(encodeEnvelope(bytes, rec.signature)))).toBe('E_BAD_SIGNATURE')
  })
})

describe('validation rules', () => {
  const now = Date.now()
  async function body (): Promise<RecordBody> { return structuredClone((await sampleRecord(now)).rec.body) }

  it('accepts a valid body', async () => {
    expect(validateBody(await body(), now).seq).toBe(1)
  })
  it('unknown version', () => {
    expect(codeOf(() => checkVersion(3))).toBe('E_UNKNOWN_VERSION')
    expect(codeOf(() => checkVersion(2))).toBeUndefined()
    expect(codeOf(() => decodeEnvelope(Uint8Array.from([9, ...new Uint8Array(80)])))).toBe('E_UNKNOWN_VERSION')
  })
  it('a backend outside the v1 enum makes a v2 record; v1 keeps its closed enum', async () => {
    const { key, author } = await identity()
    const [unsigned] = synthBodies(1, 7, now)
    const v1 = await createRecord(key, author, 1, unsigned, now)
    expect(v1.body.v).toBe(1)
    const rocm = await createRecord(key, author, 2, { ...unsigned, hardware: { ...unsigned.hardware, backend: 'rocm' } }, now)
    expect(rocm.body.v).toBe(2)
    expect((await verifyWire(toWire(rocm))).body.hardware.backend).toBe('rocm')
    const b = await body()
    expect(codeOf(() => validateBody({ ...b, hardware: { ...b.hardware, backend: 'rocm' } }, now))).toBe('E_MALFORMED')
    expect(codeOf(() => validateBody({ ...b, v: 2, hardware: { ...b.hardware, backend: 'cuda' } }, now))).toBe('E_MALFORMED')
    expect(codeOf(() => validateBody({ ...b, v: 2, hardware: { ...b.hardware, backend: 'Bad Name' } }, now))).toBe('E_MALFORMED')
    // a future backend name is accepted in v2 (read as "other" by the features)
    expect(validateBody({ ...b, v: 2, hardware: { ...b.hardware, backend: 'opencl' } }, now).hardware.backend).toBe('opencl')
  })
  it('body over 64 KiB', () => {
    expect(codeOf(() => decodeEnvelope(new Uint8Array(1 + 64 + MAX_BODY_BYTES + 1).fill(1)))).toBe('E_OVERSIZE')
    expect(codeOf(() => parseBody(new Uint8Array(MAX_BODY_BYTES + 1)))).toBe('E_OVERSIZE')
  })
  it('missing, non-finite or negative metrics', async () => {
    expect(codeOf(() => checkMetric(undefined, 'x'))).toBe('E_BAD_METRIC')
    expect(codeOf(() => checkMetric(Infinity, 'x'))).toBe('E_BAD_METRIC')
    expect(codeOf(() => checkMetric(-1, 'x'))).toBe('E_BAD_METRIC')
    const b = await body(); delete (b.result as any).wallMs
    expect(codeOf(() => validateBody(b, now))).toBe('E_BAD_METRIC')
    expect(codeOf(() => checkNumberMap({ a: NaN }, 'f'))).toBe('E_BAD_METRIC')
  })
  it('implausible values', async () => {
    const b = await body(); b.result.outputTokensPerSecond = CEILINGS.outputTokensPerSecond * 2
    expect(codeOf(() => validateBody(b, now))).toBe('E_IMPLAUSIBLE')
  })
  it('timestamps more than 10 minutes in the future', () => {
    expect(codeOf(() => checkTimestamp(now + MAX_CLOCK_SKEW_MS + 1000, now))).toBe('E_FUTURE_TIMESTAMP')
    expect(checkTimestamp(now + MAX_CLOCK_SKEW_MS - 1000, now)).toBe(now + MAX_CLOCK_SKEW_MS - 1000)
  })
  it('malformed ids', async () => {
    expect(codeOf(() => checkPeerId('QmNotAnEd25519Id', 'author'))).toBe('E_MALFORMED_ID')
    const b = await body(); b.hardware.id = 'XYZ'
    expect(codeOf(() => validateBody(b, now))).toBe('E_MALFORMED_ID')
  })
  it('non-canonical bytes and non-JSON', async () => {
    const b = await body()
    expect(codeOf(() => parseBody(new TextEncoder().encode(JSON.stringify(b, null, 1)), now))).toBe('E_MALFORMED')
    expect(codeOf(() => parseBody(Uint8Array.from([0xff, 0xfe]), now))).toBe('E_MALFORMED')
  })
  it('refuses every other spelling of a canonical body, and takes the canonical one with escapes and non-ASCII', async () => {
    const b = await body()
    b.engine.version = 'ü-\ud800-"q"'
    const canonical = canonicalize(b)
    expect(canonical).toContain('\\ud800')
    const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
    expect(parseBody(enc(canonical), now)).toEqual(b)
    const spellings = [
      canonical.replace('"engine":', '"engine" :'),
      canonical.replace('ü', '\\u00fc'),
      canonical.replace(`"seq":${b.seq}`, `"seq":${b.seq}.0`),
      canonical.replace('"v":', '"v" :'),
      `${canonical} `,
      // the same keys in another order
      JSON.stringify(Object.fromEntries(Object.entries(JSON.parse(canonical) as Record<string, unknown>).reverse()))
    ]
    for (const s of spellings) {
      expect(s).not.toBe(canonical)
      expect(codeOf(() => parseBody(enc(s), now))).toBe('E_MALFORMED')
    }
  })
  it('unknown fields', async () => {
    const b: any = await body(); b.extra = 1
    expect(codeOf(() => validateBody(b, now))).toBe('E_MALFORMED')
  })
})
