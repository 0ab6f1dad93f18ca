import { describe, it, expect } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { TopicValidatorResult } from '@libp2p/gossipsub'
import { createRecord, synthBodies, RecordValidationError, type SignedRecord } from '../../../src/records/index.js'
import { classifyError, createIngest, SyncViolation } from '../../../src/net/ingest.js'
import { RecordsTopic, validatorResult } from '../../../src/net/records-topic.js'
import { claimedAuthor } from '../../../src/records/codec.js'
import {
  createReceiveCheck, decodeHeads, encodeHeads, fillPage, frame, planSync, syncErrorCode, FRAME_HEADS, FRAME_RECORD
} from '../../../src/net/sync.js'
import { DEFAULT_LIMITS, WindowLimiter, createRateGuard, resolveLimits } from '../../../src/net/limits.js'
import { contentMsgId } from '../../../src/net/libp2p.js'
import { toWire } from '../../../src/records/index.js'
import { Counters } from '../../../src/util/counters.js'
import { log } from '../../../src/util/log.js'
import { createMemoryStore } from '../../helpers/memory-store.js'

async function author () {
  const key = await generateKeyPair('Ed25519')
  return { key, author: peerIdFromPrivateKey(key).toString() }
}

async function records (n: number, seed = 1): Promise<{ author: string, recs: SignedRecord[] }> {
  const a = await author()
  const bodies = synthBodies(n, seed)
  const recs: SignedRecord[] = []
  for (let i = 0; i < n; i++) recs.push(await createRecord(a.key, a.author, i + 1, bodies[i]))
  return { author: a.author, recs }
}

describe('gossip validator mapping', () => {
  it('accepts new records and equivocation evidence, ignores duplicates and skew, rejects invalid', () => {
    const r = {} as SignedRecord
    expect(validatorResult({ kind: 'inserted', record: r })).toBe(TopicValidatorResult.Accept)
    expect(validatorResult({ kind: 'equivocation', record: r })).toBe(TopicValidatorResult.Accept)
    expect(validatorResult({ kind: 'duplicate', record: r })).toBe(TopicValidatorResult.Ignore)
    expect(validatorResult({ kind: 'ignored', code: 'E_FUTURE_TIMESTAMP' })).toBe(TopicValidatorResult.Ignore)
    expect(validatorResult({ kind: 'rejected', code: 'E_BAD_SIGNATURE' })).toBe(TopicValidatorResult.Reject)
  })
  it('classifies validation errors: future timestamps are ignorable, other codes rejected, unknown errors ours', () => {
    expect(classifyError(new RecordValidationError('E_FUTURE_TIMESTAMP', 'x'))).toEqual({ kind: 'ignored', code: 'E_FUTURE_TIMESTAMP' })
    expect(classifyError(new RecordValidationError('E_BAD_SIGNATURE', 'x'))).toEqual({ kind: 'rejected', code: 'E_BAD_SIGNATURE' })
    expect(classifyError(new SyncViolation('E_SYNC_UNSOLICITED', 'x'))).toEqual({ kind: 'rejected', code: 'E_SYNC_UNSOLICITED' })
    expect(classifyError(new Error('disk on fire'))).toEqual({ kind: 'ignored', code: 'E_INTERNAL' })
  })
})

describe('ingest (the path shared by gossip and sync)', () => {
  it('stores a valid record once, counts duplicates, rejections by code, and never stores garbage', async () => {
    const store = createMemoryStore()
    const rejections = new Counters()
    const stats = new Counters()
    const seen: string[] = []
    const ingest = createIngest({ store, rejections, stats, log: log('test'), onRecord: r => { seen.push(r.id) } })
    const { recs } = await records(1)
    const wire = toWire(recs[0])
    expect((await ingest(wire, 'gossip')).kind).toBe('inserted')
    expect((await ingest(wire, 'sync')).kind).toBe('duplicate')
    const forged = Uint8Array.from(wire); forged[10] ^= 0xff
    expect(await ingest(forged, 'gossip')).toEqual({ kind: 'rejected', code: 'E_BAD_SIGNATURE' })
    expect(await ingest(new TextEncoder().encode('garbage!!!'), 'gossip')).toEqual({ kind: 'rejected', code: 'E_MALFORMED' })
    expect(seen).toEqual([recs[0].id])
    expect(store.size()).toBe(1)
    expect(rejections.toJSON()).toEqual({ E_BAD_SIGNATURE: 1, E_MALFORMED: 1 })
    expect(stats.get('gossipAccepted')).toBe(1)
    expect(stats.get('syncDuplicates')).toBe(1)
    expect(stats.get('gossipRejected')).toBe(2)
  })
  it('runs the transport check after verification and before storage', async () => {
    const store = createMemoryStore()
    const ingest = createIngest({ store, rejections: new Counters(), stats: new Counters(), log: log('test') })
    const { recs } = await records(1)
    const out = await ingest(toWire(recs[0]), 'sync', { check: () => { throw new SyncViolation('E_SYNC_UNSOLICITED', 'no') } })
    expect(out).toEqual({ kind: 'rejected', code: 'E_SYNC_UNSOLICITED' })
    expect(store.size()).toBe(0)
  })
  it('gossip validator: an author over its budget is dropped unverified; forged, duplicate and invalid records give their unit back', async () => {
    const store = createMemoryStore()
    const rejections = new Counters()
    const stats = new Counters()
    const { createPeerGuard } = await import('../../../src/net/guard.js')
    const guard = createPeerGuard({ gossipPerAuthorPerSecond: 1, gossipAuthorBurst: 2, now: () => 1_000_000 })
    const ingest = createIngest({ store, rejections, stats, log: log('test') })
    const topic = new RecordsTopic({ pubsub: {} as never, ingest, stats, guard, log: log('test') })
    const relayer = peerIdFromPrivateKey((await author()).key)
    const validate = async (wire: Uint8Array): Promise<TopicValidatorResult> => await topic.validate(relayer, { data: wire } as never)
    const { author: a, recs } = await records(4)
    expect(claimedAuthor(toWire(recs[0]))).toBe(a)
    // a forged record claiming the author is rejected, and its unit comes back
    const forged = toWire(recs[3]); forged[10] ^= 0xff
    expect(await validate(forged)).toBe(TopicValidatorResult.Reject)
    expect(await validate(toWire(recs[0]))).toBe(TopicValidatorResult.Accept)
    // a duplicate spends nothing either
    expect(await validate(toWire(recs[0]))).toBe(TopicValidatorResult.Ignore)
    expect(await validate(toWire(recs[1]))).toBe(TopicValidatorResult.Accept)
    // budget spent: dropped before verification (a forgery is not even found out)
    expect(await validate(toWire(recs[2]))).toBe(TopicValidatorResult.Ignore)
    expect(await validate(forged)).toBe(TopicValidatorResult.Ignore)
    expect(stats.get('gossipAuthorLimited')).toBe(2)
    expect(stats.get('gossipReceived')).toBe(4)
    expect(store.size()).toBe(2)
    // sync is pulled and must converge: not budgeted
    expect((await ingest(toWire(recs[2]), 'sync')).kind).toBe('inserted')
    expect(guard.totals().authorLimited).toBe(2)
    // the relayer was penalized for the forgery only
    expect(guard.peer(relayer.toString())?.invalid).toBe(1)
  })
  it('reads the claimed author of a canonical body only', () => {
    expect(claimedAuthor(new Uint8Array(10))).toBeUndefined()
    const wire = new Uint8Array(65 + 30)
    wire.set(new TextEncoder().encode('{"author":"12D3Koo\\"x'), 65)
    expect(claimedAuthor(wire)).toBeUndefined()
    wire.set(new TextEncoder().encode('{"author":"12D3KooW","seq":1}'), 65)
    expect(claimedAuthor(wire)).toBe('12D3KooW')
  })
  it('treats a failing store as ignorable, not as the sender\'s fault', async () => {
    const store = createMemoryStore()
    store.put = async () => { throw new Error('closed') }
    const rejections = new Counters()
    const ingest = createIngest({ store, rejections, stats: new Counters(), log: log('test') })
    const { recs } = await records(1)
    expect((await ingest(toWire(recs[0]), 'gossip')).kind).toBe('ignored')
    expect(rejections.toJSON()).toEqual({})
  })
})

describe('sync heads message', () => {
  const limits = resolveLimits({ maxHeadsAuthors: 3 })
  it('round-trips and drops zero heads', async () => {
    const a = (await author()).author
    const b = (await author()).author
    const f = encodeHeads({ pageSize: 10, maxPageBytes: 1 << 20, heads: new Map([[a, 5], [b, 0]]) }, 100)
    expect(f[0]).toBe(FRAME_HEADS)
    const back = decodeHeads(f.subarray(1), limits)
    expect(back.pageSize).toBe(10)
    expect([...back.heads]).toEqual([[a, 5]])
  })
  it('over the cap, declares the authors with the highest heads', async () => {
    const ids = await Promise.all([1, 2, 3, 4].map(async () => (await author()).author))
    const f = encodeHeads({ pageSize: 1, maxPageBytes: 1 << 20, heads: new Map(ids.map((a, i) => [a, i + 1])) }, 2)
    expect(new Set(decodeHeads(f.subarray(1), limits).heads.keys())).toEqual(new Set([ids[2], ids[3]]))
  })
  it('refuses malformed, oversized and duplicate-author messages with E_SYNC_PROTOCOL', async () => {
    const a = (await author()).author
    const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v))
    const ok = { v: 1, pageSize: 1, maxPageBytes: 1 << 20, heads: [] }
    const bad: unknown[] = [
      'nope', [], { ...ok, v: 2 }, { ...ok, pageSize: 0 }, { ...ok, pageSize: 1.5 }, { ...ok, maxPageBytes: 10 },
      { ...ok, heads: [[a, -1]] }, { ...ok, heads: [['not-a-peer', 1]] }, { ...ok, heads: [[a, 1], [a, 2]] },
      { ...ok, heads: [[a, 1, 3]] }
    ]
    for (const v of bad) {
      let code: string | undefined
      try { decodeHeads(enc(v), limits) } catch (err: any) { code = err.code }
      expect(code, JSON.stringify(v)).toBe('E_SYNC_PROTOCOL')
    }
    const many = Array.from({ length: 4 }, () => [a, 1])
    expect(() => decodeHeads(enc({ ...ok, heads: many }), limits)).toThrow(/more than 3/)
    expect(() => decodeHeads(Uint8Array.of(0xff, 0xfe), limits)).toThrow(/UTF-8/)
  })
})

describe('sync page planning', () => {
  it('walks every server author from the client head (0 when unknown), sorted', () => {
    const plan = planSync(['c', 'a', 'b'], new Map([['a', 4], ['z', 9]]))
    expect(plan).toEqual([{ author: 'a', after: 4 }, { author: 'b', after: 0 }, { author: 'c', after: 0 }])
  })
  it('fills pages by count and bytes, advancing cursors, with gaps and drained authors', async () => {
    const store = createMemoryStore()
    const x = await records(5, 1)
    const y = await records(3, 2)
    for (const r of [...x.recs, ...y.recs]) if (r.body.seq !== 2 || r.body.author !== x.author) await store.put(r)
    const cursors = planSync([x.author, y.author], new Map([[y.author, 1]]))
    const seqsOf = (page: Uint8Array[]) => page.length
    // x has 1,3,4,5 (gap at 2); y from 2: 2,3 → 6 records in total
    const p1 = await fillPage(store, cursors, 3, 1 << 20)
    expect(seqsOf(p1)).toBe(3)
    const p2 = await fillPage(store, cursors, 3, 1 << 20)
    expect(seqsOf(p2)).toBe(3)
    // a page that ended exactly at the end leaves a cursor: the next page probes it and drains
    expect(await fillPage(store, cursors, 3, 1 << 20)).toEqual([])
    expect(cursors).toEqual([])
    const all = [...p1, ...p2].map(w => Buffer.from(w).toString('hex'))
    const expected = [x.recs[0], x.recs[2], x.recs[3], x.recs[4], y.recs[1], y.recs[2]]
      .sort((a, b) => (a.body.author < b.body.author ? -1 : a.body.author > b.body.author ? 1 : a.body.seq - b.body.seq))
      .map(r => Buffer.from(toWire(r)).toString('hex'))
    expect(all).toEqual(expected)
  })
  it('a byte budget smaller than one record still makes progress, one record per page', async () => {
    const store = createMemoryStore()
    const x = await records(3)
    for (const r of x.recs) await store.put(r)
    const cursors = planSync([x.author], new Map())
    const sizes: number[] = []
    for (let i = 0; i < 5 && cursors.length > 0; i++) sizes.push((await fillPage(store, cursors, 10, 1)).length)
    expect(sizes).toEqual([1, 1, 1])
  })
})

describe('sync receive check', () => {
  it('refuses records at or below the declared head, repeats and going back; allows gaps', async () => {
    const x = await records(4)
    const check = createReceiveCheck(new Map([[x.author, 1]]))
    const code = (r: SignedRecord) => { try { check(r); return 'ok' } catch (err: any) { return err.code } }
    expect(code(x.recs[0])).toBe('E_SYNC_UNSOLICITED')
    expect(code(x.recs[1])).toBe('ok')
    expect(code(x.recs[3])).toBe('ok')
    expect(code(x.recs[3])).toBe('E_SYNC_ORDER')
    expect(code(x.recs[2])).toBe('E_SYNC_ORDER')
  })
})

describe('limits and helpers', () => {
  it('window limiter allows `points` per window per key and resets', () => {
    const l = new WindowLimiter(2, 1000)
    expect([l.take('a', 0), l.take('a', 10), l.take('a', 20), l.take('b', 30)]).toEqual([true, true, false, true])
    expect(l.take('a', 1000)).toBe(true)
  })
  it('window limiter keeps a fractional rate as whole points over a longer window (a dilated sync rate of 30/32 per minute)', () => {
    const l = new WindowLimiter(30 / 32, 60_000)
    // 1 per 64 s: the first take passes, the next one only in the next 64 s window
    expect([l.take('a', 0), l.take('a', 63_999), l.take('a', 64_000), l.take('a', 64_001)]).toEqual([true, false, true, false])
    const g = new WindowLimiter(1000 / 32, 1000)
    let taken = 0
    for (let t = 0; t < 1024; t++) if (g.take('p', t)) taken++
    expect(taken).toBe(32)
    expect(new WindowLimiter(0, 1000).take('a', 0)).toBe(false)
  })
  it('rate guard reports the peer that exceeded and chains the user guard', () => {
    const hits: string[] = []
    const g = createRateGuard(resolveLimits({ gossipPerPeerPerSecond: 1 }), { admitGossip: p => p !== 'banned' }, (p, via) => { hits.push(`${p}:${via}`) })
    expect(g.admitGossip!('p')).toBe(true)
    expect(g.admitGossip!('p')).toBe(false)
    expect(g.admitGossip!('banned')).toBe(false)
    expect(hits).toEqual(['p:gossip'])
    const trusted = createRateGuard(resolveLimits({ gossipPerPeerPerSecond: 1 }), {}, undefined, ['friend'])
    expect([trusted.admitGossip!('friend'), trusted.admitGossip!('friend')]).toEqual([true, true])
  })
  it('maps stream errors to stable codes', () => {
    const named = (name: string) => Object.assign(new Error('x'), { name })
    expect(syncErrorCode(named('InvalidDataLengthError'))).toBe('E_SYNC_OVERSIZE')
    expect(syncErrorCode(named('StreamBufferError'))).toBe('E_SYNC_FLOOD')
    expect(syncErrorCode(named('UnexpectedEOFError'))).toBe('E_SYNC_CLOSED')
    expect(syncErrorCode(new SyncViolation('E_SYNC_TIMEOUT', 'x'))).toBe('E_SYNC_TIMEOUT')
  })
  it('message id is the SHA-256 of the data; frames carry their type first', () => {
    expect(Buffer.from(contentMsgId({ data: new TextEncoder().encode('abc') })).toString('hex'))
      .toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
    expect([...frame(FRAME_RECORD, Uint8Array.of(7))]).toEqual([FRAME_RECORD, 7])
    expect(DEFAULT_LIMITS.maxRecordFrameBytes).toBeGreaterThan(64 * 1024 + 65)
  })
})
