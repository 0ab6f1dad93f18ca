import { describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import {
  createRecord, encodeBody, encodeEnvelope, leafHash, merkleRoot, signLogHead, synthBodies, toWire, type LogHead, type SignedRecord
} from '../../../src/records/index.js'
import { createIngest } from '../../../src/net/ingest.js'
import { FRAME_END, FRAME_RECORDS, MAX_PAGES_AHEAD, MIN_PACK_BYTES, createReceiveCheck, decodeHeads, encodeHeads, frame, packRecordFrames, unpackRecords } from '../../../src/net/sync-wire.js'
import { FRAME_RECORD, type SyncServiceComponents } from '../../../src/net/sync.js'
import { FRAME_LOG_HEAD, RunTracker, fillPageV2, logHeadPayload, openRun, type RunCursor, type RunSource } from '../../../src/net/sync-v2.js'
import { resolveLimits } from '../../../src/net/limits.js'
import { Counters } from '../../../src/util/counters.js'
import { log } from '../../../src/util/log.js'
import { createMemoryStore } from '../../helpers/memory-store.js'

/* Pure and in-memory parts of sync 2.0.0: which runs a server sends, and how a client checks them. */
interface Author { key: PrivateKey, id: string }
async function author (): Promise<Author> {
  const key = await generateKeyPair('Ed25519')
  return { key, id: peerIdFromPrivateKey(key).toString() }
}
async function signedLog (a: Author, n: number): Promise<SignedRecord[]> {
  const bodies = synthBodies(n, 3)
  return await Promise.all(bodies.map(async (b, i) => await createRecord(a.key, a.id, i + 1, b)))
}
const rootOf = (recs: SignedRecord[]): Uint8Array => merkleRoot(recs.map(r => leafHash(toWire(r))))

function source (recs: SignedRecord[], heads: LogHead[], evicted = new Set<number>()): RunSource {
  return {
    bySeq: async (_a, after, limit) => recs.filter(r => r.body.seq > after && !evicted.has(r.body.seq)).slice(0, limit),
    logHeads: async () => heads
  }
}

describe('sync 2.0.0 server: runs and loose records', () => {
  it('takes the longest head within reach, then loose records past the last head', async () => {
    const a = await author()
    const recs = await signedLog(a, 30)
    const heads = [await signLogHead(a.key, a.id, 10, rootOf(recs.slice(0, 10))), await signLogHead(a.key, a.id, 25, rootOf(recs.slice(0, 25)))]
    const cursors: RunCursor[] = [{ author: a.id, after: 0 }]
    const page = await fillPageV2(source(recs, heads), cursors, new Map([[a.id, 30]]), 100, 1 << 20, 20)
    // within 20 of 0 only the head at 10 is in reach; from 10 the head at 25; then 26..30 loose
    expect(page.frames.map(f => f[0])).toEqual([FRAME_LOG_HEAD, ...Array(10).fill(FRAME_RECORD), FRAME_LOG_HEAD, ...Array(15).fill(FRAME_RECORD), ...Array(5).fill(FRAME_RECORD)])
    expect(page.records).toBe(30)
    expect(cursors).toEqual([])
  })

  it('a run spans pages; a head past the contiguous head or over an evicted record is not used', async () => {
    const a = await author()
    const recs = await signedLog(a, 12)
    const h12 = await signLogHead(a.key, a.id, 12, rootOf(recs))
    const cursors: RunCursor[] = [{ author: a.id, after: 0 }]
    const p1 = await fillPageV2(source(recs, [h12]), cursors, new Map([[a.id, 12]]), 5, 1 << 20)
    expect(p1.frames.map(f => f[0])).toEqual([FRAME_LOG_HEAD, ...Array(5).fill(FRAME_RECORD)])
    const p2 = await fillPageV2(source(recs, [h12]), cursors, new Map([[a.id, 12]]), 100, 1 << 20)
    expect(p2.frames.map(f => f[0])).toEqual(Array(7).fill(FRAME_RECORD))
    expect(await openRun(source(recs, [h12]), { author: a.id, after: 0 }, 11, 100)).toBeUndefined()
    expect(await openRun(source(recs, [h12], new Set([4])), { author: a.id, after: 0 }, 12, 100)).toBeUndefined()
  })
})

function components (charged: string[]): SyncServiceComponents & { rejections: Counters, stats: Counters } {
  const store = createMemoryStore()
  const rejections = new Counters()
  const stats = new Counters()
  const ingest = createIngest({ store, rejections, stats, log: log('test') })
  return {
    config: { net: { listen: [], announce: [], bootstrap: [], localTestbed: true, allowPeers: [], denyPeers: [], sync: { intervalMs: 1000, pageSize: 64, timeoutMs: 1000, maxRecordsPerSession: 1000 } } },
    limits: resolveLimits(),
    store,
    ingest,
    stats,
    rejections,
    guard: { onViolation: (peer, code) => { charged.push(`${peer} ${code}`) } },
    log: log('test'),
    connectionTo: () => undefined
  }
}
const clock = (): { signal: AbortSignal, controller: AbortController, kick: () => void } => {
  const controller = new AbortController()
  return { controller, signal: controller.signal, kick: () => {} }
}

describe('sync 2.0.0 client: checking a run', () => {
  it('a valid run is attested by one head: verdicts without per-record signature checks', async () => {
    const a = await author()
    const recs = await signedLog(a, 9)
    const head = await signLogHead(a.key, a.id, 9, rootOf(recs))
    const c = components([])
    const t = new RunTracker(c, new Map(), 'server', clock())
    t.open(logHeadPayload(9, head))
    const outs = recs.map(r => t.add(toWire(r)))
    expect(outs.slice(0, 8).every(o => o === undefined)).toBe(true)
    const out = await outs[8]
    expect(out?.attested).toBe(true)
    expect(out?.verdicts.map(v => v.kind === 'verified' ? v.record.id : v.kind)).toEqual(recs.map(r => r.id))
    expect(c.stats.toJSON()).toMatchObject({ syncRunsVerified: 1, syncRunRecords: 9 })
  })

  it('a forged record in a run: the run is checked record by record, the forgery refused and counted, the session cut', async () => {
    const a = await author()
    const recs = await signedLog(a, 6)
    const head = await signLogHead(a.key, a.id, 6, rootOf(recs))
    const forged = encodeEnvelope(encodeBody({ ...recs[2].body, result: { ...recs[2].body.result, repeats: recs[2].body.result.repeats + 1 } }), recs[2].signature)
    const c = components([])
    const k = clock()
    const t = new RunTracker(c, new Map(), 'server', k)
    t.open(logHeadPayload(6, head))
    let out
    for (const [i, r] of recs.entries()) out = t.add(i === 2 ? forged : toWire(r))
    const res = await out
    expect(res?.attested).toBe(false)
    expect(res?.verdicts.map(v => v.kind)).toEqual(['verified', 'verified', 'rejected', 'verified', 'verified', 'verified'])
    expect(c.rejections.toJSON()).toEqual({ E_BAD_SIGNATURE: 1 })
    expect(c.stats.toJSON()).toMatchObject({ syncRunsFallback: 1, syncRejected: 1 })
    expect(k.signal.aborted).toBe(true)
    expect((k.signal.reason as { code: string }).code).toBe('E_BAD_SIGNATURE')
  })

  it('a record failing the cheap checks inside a run refuses the run and charges the server', async () => {
    const a = await author()
    const recs = await signedLog(a, 3)
    const head = await signLogHead(a.key, a.id, 3, rootOf(recs))
    const charged: string[] = []
    const c = components(charged)
    const t = new RunTracker(c, new Map(), 'server', clock())
    t.open(logHeadPayload(3, head))
    t.add(toWire(recs[0]))
    const garbage = Uint8Array.from(toWire(recs[1])); garbage[garbage.length - 1] = 0x20
    t.add(garbage)
    await expect(t.add(toWire(recs[2]))).rejects.toMatchObject({ code: 'E_MALFORMED' })
    expect(charged).toEqual(['server E_MALFORMED'])
    expect(c.rejections.toJSON()).toEqual({ E_MALFORMED: 1 })
  })

  it('a head signed by another key is E_SYNC_PROOF; a run that skips a seq, changes author or has a bad count is refused', async () => {
    const a = await author()
    const b = await author()
    const recs = await signedLog(a, 4)
    const fake = await signLogHead(b.key, a.id, 4, rootOf(recs))
    const t = new RunTracker(components([]), new Map(), 'server', clock())
    t.open(logHeadPayload(4, fake))
    let out
    for (const r of recs) out = t.add(toWire(r))
    await expect(out).rejects.toMatchObject({ code: 'E_SYNC_PROOF' })

    const good = await signLogHead(a.key, a.id, 4, rootOf(recs))
    const t2 = new RunTracker(components([]), new Map(), 'server', clock())
    t2.open(logHeadPayload(3, good))
    t2.add(toWire(recs[1]))
    t2.add(toWire(recs[3]))
    await expect(t2.add(toWire(recs[2]))).rejects.toMatchObject({ code: 'E_SYNC_PROOF' })
    const t3 = new RunTracker(components([]), new Map(), 'server', clock())
    t3.open(logHeadPayload(1, good))
    expect(() => { t3.open(logHeadPayload(1, good)) }).toThrow(expect.objectContaining({ code: 'E_SYNC_PROOF' }))
    const other = (await signedLog(b, 4))[3]
    await expect(t3.add(toWire(other))).rejects.toMatchObject({ code: 'E_SYNC_PROOF' })
    const t4 = new RunTracker(components([]), new Map(), 'server', clock())
    expect(() => { t4.open(logHeadPayload(5, good)) }).toThrow(expect.objectContaining({ code: 'E_SYNC_PROOF' }))
    expect(() => { t4.open(logHeadPayload(0, good)) }).toThrow(expect.objectContaining({ code: 'E_SYNC_PROOF' }))
    expect(() => { t4.open(good.wire) }).toThrow(expect.objectContaining({ code: 'E_SYNC_PROOF' }))
  })

  it('a run holding records at or below the declared head is unsolicited, as in 1.0.0', async () => {
    const a = await author()
    const recs = await signedLog(a, 6)
    const head = await signLogHead(a.key, a.id, 6, rootOf(recs))
    const declared = new Map([[a.id, 3]])
    const t = new RunTracker(components([]), declared, 'server', clock(), createReceiveCheck(declared))
    t.open(logHeadPayload(5, head))
    let out
    for (const r of recs.slice(1)) out = t.add(toWire(r))
    await expect(out).rejects.toMatchObject({ code: 'E_SYNC_UNSOLICITED' })
  })

  it('a valid head over other records than the valid ones received is evidence against the author, not the server', async () => {
    const a = await author()
    const recs = await signedLog(a, 5)
    const otherLog = [...recs.slice(0, 4), await createRecord(a.key, a.id, 5, synthBodies(9, 77)[8])]
    const head = await signLogHead(a.key, a.id, 5, rootOf(otherLog))
    const charged: string[] = []
    const c = components(charged)
    const t = new RunTracker(c, new Map(), 'server', clock())
    t.open(logHeadPayload(5, head))
    let out
    for (const r of recs) out = t.add(toWire(r))
    const res = await out
    expect(res?.verdicts.every(v => v.kind === 'verified')).toBe(true)
    expect(res?.attested).toBe(false)
    expect(c.stats.toJSON()).toMatchObject({ syncHeadConflicts: 1, syncRunsFallback: 1 })
    // charged to the author, never to the server
    expect(charged).toEqual([`${a.id} E_SYNC_HEAD_CONFLICT`])
    expect(c.rejections.toJSON()).toEqual({ E_SYNC_HEAD_CONFLICT: 1 })
  })
})

describe('HEADS "ahead" (2.0.0: pages a server may send before the client\'s MORE)', () => {
  const limits = resolveLimits({})
  const enc = (o: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(o))
  const base = { v: 2, pageSize: 16, maxPageBytes: 1 << 20, heads: [] }

  it('is sent by a 2.0.0 client only, and read back', () => {
    const f = encodeHeads({ pageSize: 16, maxPageBytes: 1 << 20, heads: new Map(), ahead: MAX_PAGES_AHEAD }, 10, 2)
    expect(decodeHeads(f.subarray(1), limits, 2).ahead).toBe(MAX_PAGES_AHEAD)
    const v1 = encodeHeads({ pageSize: 16, maxPageBytes: 1 << 20, heads: new Map(), ahead: MAX_PAGES_AHEAD }, 10, 1)
    expect(JSON.parse(new TextDecoder().decode(v1.subarray(1)))).not.toHaveProperty('ahead')
    expect(decodeHeads(v1.subarray(1), limits, 1).ahead).toBe(0)
  })

  it('maps what it does not know instead of refusing: absent (a client of the previous build), junk or negative → 0, too many → the most this server sends', () => {
    expect(decodeHeads(enc(base), limits, 2).ahead).toBe(0)
    for (const junk of ['2', -1, 1.5, null, [2], { n: 2 }]) expect(decodeHeads(enc({ ...base, ahead: junk }), limits, 2).ahead).toBe(0)
    expect(decodeHeads(enc({ ...base, ahead: 1_000_000 }), limits, 2).ahead).toBe(MAX_PAGES_AHEAD)
    // a 1.0.0 HEADS never gets pages ahead, whatever it says
    expect(decodeHeads(enc({ ...base, v: 1, ahead: 2 }), limits, 1).ahead).toBe(0)
  })
})

describe('packed RECORDS frames (2.0.0, asked for with `pack`)', () => {
  const limits = resolveLimits()
  const rec = (n: number, fill: number): Uint8Array => frame(FRAME_RECORD, new Uint8Array(n).fill(fill))

  it('HEADS carries `pack`; a server maps an absent, too small or unknown value to 0 (one record per frame)', () => {
    const heads = new Map<string, number>()
    const hello = (pack?: unknown): Uint8Array => {
      const json = JSON.parse(new TextDecoder().decode(encodeHeads({ pageSize: 256, maxPageBytes: 1 << 20, heads, ahead: 1 }, 10, 2).subarray(1)))
      return new TextEncoder().encode(JSON.stringify({ ...json, ...(pack === undefined ? {} : { pack }) }))
    }
    expect(decodeHeads(encodeHeads({ pageSize: 256, maxPageBytes: 1 << 20, heads, pack: 70_000 }, 10, 2).subarray(1), limits, 2).pack).toBe(70_000)
    for (const v of [undefined, 0, MIN_PACK_BYTES - 1, 'yes', 1.5, -1, null]) expect(decodeHeads(hello(v), limits, 2).pack).toBe(0)
    // a 1.0.0 client never asks
    expect(decodeHeads(encodeHeads({ pageSize: 256, maxPageBytes: 1 << 20, heads, pack: 70_000 }, 10, 1).subarray(1), limits, 1).pack).toBe(0)
  })

  it('packs runs of RECORD frames within the frame limit, keeps other frames in place and a record too large to share alone', () => {
    const end = frame(FRAME_END, Uint8Array.of(1))
    const big = rec(9000, 9)
    const frames = [frame(FRAME_LOG_HEAD, Uint8Array.of(1, 2)), rec(1000, 1), rec(1000, 2), rec(3000, 3), big, rec(10, 4), end]
    const packed = packRecordFrames(frames, 5000)
    expect(packed.map(f => f[0])).toEqual([FRAME_LOG_HEAD, FRAME_RECORDS, FRAME_RECORDS, FRAME_RECORD, FRAME_RECORDS, FRAME_END])
    for (const f of packed) expect(f.length).toBeLessThanOrEqual(f === big ? big.length : 5000)
    // the records, in order and byte for byte
    const wires = packed.flatMap(f => f[0] === FRAME_RECORDS ? unpackRecords(f.subarray(1)) : f[0] === FRAME_RECORD ? [f.subarray(1)] : [])
    expect(wires.map(w => [w.length, w[0]])).toEqual([[1000, 1], [1000, 2], [3000, 3], [9000, 9], [10, 4]])
    expect(packRecordFrames([end], 5000)).toEqual([end])
  })

  it('refuses a malformed RECORDS payload as a protocol violation', () => {
    const good = packRecordFrames([rec(5, 1), rec(6, 2)], 1000)[0].subarray(1)
    expect(unpackRecords(good).map(w => w.length)).toEqual([5, 6])
    const code = (p: Uint8Array): string | undefined => { try { unpackRecords(p); return undefined } catch (err) { return (err as { code?: string }).code } }
    expect(code(new Uint8Array(0))).toBe('E_SYNC_PROTOCOL')
    expect(code(good.subarray(0, good.length - 1))).toBe('E_SYNC_PROTOCOL')
    expect(code(good.subarray(0, 2))).toBe('E_SYNC_PROTOCOL')
    expect(code(Uint8Array.of(0, 0, 0, 0))).toBe('E_SYNC_PROTOCOL')
    expect(code(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 1))).toBe('E_SYNC_PROTOCOL')
  })
})
