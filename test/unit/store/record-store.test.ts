import { describe, it, expect, beforeEach, afterEach } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { createRecord, synthBodies, type SignedRecord, type UnsignedBody } from '../../../src/records/index.js'
import { createRecordStore } from '../../../src/store/record-store.js'
import type { RecordStore } from '../../../src/store/types.js'

interface Author { key: PrivateKey, id: string }
async function author (): Promise<Author> {
  const key = await generateKeyPair('Ed25519')
  return { key, id: peerIdFromPrivateKey(key).toString() }
}

const bodies = synthBodies(200, 42)
async function rec (a: Author, seq: number, body: UnsignedBody = bodies[seq % bodies.length]): Promise<SignedRecord> {
  return await createRecord(a.key, a.id, seq, body)
}

let dir: string
let stores: RecordStore[]
async function open (opts: { maxRecords?: number, ownAuthor?: string } = {}): Promise<RecordStore> {
  const s = createRecordStore({ path: join(dir, 'store'), maxRecords: opts.maxRecords ?? 1_000_000, ownAuthor: opts.ownAuthor })
  await s.start()
  stores.push(s)
  return s
}
async function close (s: RecordStore): Promise<void> {
  await s.stop()
  stores = stores.filter(x => x !== s)
}

beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'swarmtune-store-')); stores = [] })
afterEach(async () => {
  for (const s of stores) await s.stop()
  rmSync(dir, { recursive: true, force: true })
})

describe('record store', () => {
  it('is idempotent: the same record twice is stored once', async () => {
    const s = await open()
    const a = await author()
    const r = await rec(a, 1)
    expect(await s.put(r)).toBe('inserted')
    expect(await s.put(r)).toBe('duplicate')
    expect(await s.putMany([r, r])).toEqual(['duplicate', 'duplicate'])
    expect(await s.counts()).toEqual({ records: 1, own: 0, authors: 1, equivocations: 0 })
    const got = await s.get(r.id)
    expect(got?.body).toEqual(r.body)
    expect(Buffer.compare(got!.signature, r.signature)).toBe(0)
    expect(await s.has(r.id)).toBe(true)
    expect(await s.has('00'.repeat(32))).toBe(false)
  })

  it('coalesces concurrent puts and answers each one', async () => {
    const s = await open()
    const a = await author()
    const b = await author()
    const recs: SignedRecord[] = []
    for (let seq = 1; seq <= 40; seq++) recs.push(await rec(a, seq), await rec(b, seq))
    const conflict = await rec(a, 7, bodies[199])
    const results = await Promise.all([...recs, recs[0], conflict].map(async r => await s.put(r)))
    expect(results.filter(x => x === 'inserted')).toHaveLength(80)
    expect(results.slice(80)).toEqual(['duplicate', 'equivocation'])
    // a put issued right after the queue drained is not stranded
    expect(await s.put(await rec(b, 41))).toBe('inserted')
    expect(await s.counts()).toEqual({ records: 81, own: 0, authors: 2, equivocations: 1 })
    expect(await s.heads()).toEqual(new Map([[a.id, 40], [b.id, 41]]))
  })

  it('keeps both bodies of an equivocation as evidence', async () => {
    const s = await open()
    const a = await author()
    const r1 = await rec(a, 1, bodies[0])
    const r2 = await rec(a, 1, bodies[1])
    expect(r1.id).not.toBe(r2.id)
    expect(await s.put(r1)).toBe('inserted')
    expect(await s.put(r2)).toBe('equivocation')
    expect(await s.put(r2)).toBe('duplicate')
    const ev = await s.evidence()
    expect(ev).toHaveLength(1)
    expect(ev[0].author).toBe(a.id)
    expect(ev[0].seq).toBe(1)
    expect(ev[0].ids.sort()).toEqual([r1.id, r2.id].sort())
    expect((await s.get(r2.id))?.body).toEqual(r2.body)
    const c = await s.counts()
    expect(c.records).toBe(1)
    expect(c.equivocations).toBe(1)
    // the log keeps the first body
    expect((await s.bySeq(a.id, 0, 10)).map(r => r.id)).toEqual([r1.id])
  })

  it('detects an equivocation inside one batch', async () => {
    const s = await open()
    const a = await author()
    const r1 = await rec(a, 1, bodies[0])
    const r2 = await rec(a, 1, bodies[1])
    expect(await s.putMany([r1, r2])).toEqual(['inserted', 'equivocation'])
    expect((await s.evidence())[0].ids.sort()).toEqual([r1.id, r2.id].sort())
  })

  it('reports the contiguous head per author across gaps', async () => {
    const s = await open()
    const a = await author()
    const b = await author()
    for (const seq of [1, 2, 4, 6]) await s.put(await rec(a, seq))
    await s.put(await rec(b, 2))
    expect(await s.heads()).toEqual(new Map([[a.id, 2], [b.id, 0]]))
    expect(await s.nextSeq(a.id)).toBe(7)
    await s.put(await rec(a, 3))
    expect((await s.heads()).get(a.id)).toBe(4)
    await s.put(await rec(a, 5))
    expect((await s.heads()).get(a.id)).toBe(6)
    expect(await s.nextSeq('12D3KooWnobody')).toBe(1)
  })

  it('pages an author log by seq', async () => {
    const s = await open()
    const a = await author()
    const b = await author()
    const recs: SignedRecord[] = []
    for (let seq = 1; seq <= 25; seq++) recs.push(await rec(a, seq))
    await s.putMany([...recs].reverse())
    await s.put(await rec(b, 1))
    const seen: number[] = []
    let after = 0
    for (;;) {
      const page = await s.bySeq(a.id, after, 10)
      if (page.length === 0) break
      expect(page.length).toBeLessThanOrEqual(10)
      seen.push(...page.map(r => r.body.seq))
      after = page[page.length - 1].body.seq
    }
    expect(seen).toEqual(Array.from({ length: 25 }, (_, i) => i + 1))
    expect(await s.bySeq(a.id, 20, 100)).toHaveLength(5)
    expect(await s.bySeq(a.id, 0, 0)).toHaveLength(0)
  })

  it('queries by author, model, hardware and source with a cursor', async () => {
    const s = await open()
    const a = await author()
    const b = await author()
    const all: SignedRecord[] = []
    for (let seq = 1; seq <= 30; seq++) all.push(await rec(a, seq), await rec(b, seq, { ...bodies[seq], source: seq % 3 === 0 ? 'import' : 'synthetic' }))
    await s.putMany(all)

    async function pages (q: Parameters<RecordStore['query']>[0]): Promise<SignedRecord[]> {
      const out: SignedRecord[] = []
      let cursor: string | undefined
      let n = 0
      do {
        const page = await s.query({ ...q, cursor })
        expect(page.records.length).toBeLessThanOrEqual(q.limit ?? 100)
        out.push(...page.records)
        cursor = page.cursor
        expect(++n).toBeLessThan(100)
      } while (cursor != null)
      return out
    }
    const ids = (rs: SignedRecord[]): string[] => rs.map(r => r.id)

    expect(ids(await pages({ limit: 7 }))).toEqual(ids(all))
    expect(ids(await pages({ limit: 7, order: 'desc' }))).toEqual(ids(all).reverse())
    expect(ids(await pages({ author: b.id, limit: 4 }))).toEqual(ids(all.filter(r => r.body.author === b.id)))
    const model = all[0].body.model.id
    const hw = all[0].body.hardware.id
    expect(new Set(ids(await pages({ modelId: model, limit: 3 })))).toEqual(new Set(ids(all.filter(r => r.body.model.id === model))))
    const both = all.filter(r => r.body.model.id === model && r.body.hardware.id === hw)
    expect(both.length).toBeGreaterThan(0)
    expect(new Set(ids(await pages({ modelId: model, hardwareId: hw, limit: 2 })))).toEqual(new Set(ids(both)))
    expect(new Set(ids(await pages({ hardwareId: hw, limit: 5 })))).toEqual(new Set(ids(all.filter(r => r.body.hardware.id === hw))))
    expect(ids(await pages({ author: b.id, source: 'import', limit: 3 }))).toEqual(ids(all.filter(r => r.body.author === b.id && r.body.source === 'import')))
    // an exact page has no cursor
    expect((await s.query({ limit: 60 })).cursor).toBeUndefined()
    expect((await s.query({ limit: 59 })).cursor).toBeDefined()
  })

  it('retention evicts the oldest records from others, never the node\'s own', async () => {
    const me = await author()
    const other = await author()
    const s = await open({ maxRecords: 5, ownAuthor: me.id })
    const mine: SignedRecord[] = []
    for (let seq = 1; seq <= 4; seq++) {
      const r = await rec(me, seq)
      mine.push(r)
      await s.put(r, { own: true })
    }
    const theirs: SignedRecord[] = []
    for (let seq = 1; seq <= 10; seq++) {
      const r = await rec(other, seq)
      theirs.push(r)
      await s.put(r)
    }
    // own records coming back from a peer (after data loss elsewhere) still count as own
    const c = await s.counts()
    expect(c.records).toBe(5)
    expect(c.own).toBe(4)
    for (const r of mine) expect(await s.has(r.id)).toBe(true)
    expect(await s.has(theirs[9].id)).toBe(true)
    expect(await s.has(theirs[0].id)).toBe(false)
    // evicted records do not come back through sync or gossip, and heads do not regress
    expect(await s.put(theirs[0])).toBe('duplicate')
    expect((await s.heads()).get(other.id)).toBe(10)
    expect((await s.bySeq(other.id, 0, 100)).map(r => r.id)).toEqual([theirs[9].id])
    // once only own records are left, nothing more is evicted
    const more = await author()
    const s2own: SignedRecord[] = []
    for (let seq = 5; seq <= 8; seq++) { const r = await rec(me, seq); s2own.push(r); await s.put(r) }
    await s.put(await rec(more, 1))
    expect((await s.counts()).own).toBe(8)
    for (const r of [...mine, ...s2own]) expect(await s.has(r.id)).toBe(true)
  })

  it('keeps records, heads, counts, evidence and meta across a reopen', async () => {
    const me = await author()
    const a = await author()
    let s = await open({ ownAuthor: me.id })
    await s.put(await rec(me, 1), { own: true })
    for (const seq of [1, 2, 3, 5]) await s.put(await rec(a, seq))
    await s.put(await rec(a, 1, bodies[150]))
    await s.putMeta('snapshot', { trees: 3, at: 'x' })
    const before = { counts: await s.counts(), heads: await s.heads(), evidence: await s.evidence() }
    const ids: string[] = []
    for await (const r of s.all()) ids.push(r.id)
    await close(s)

    s = await open({ ownAuthor: me.id })
    expect(await s.counts()).toEqual(before.counts)
    expect(before.counts).toEqual({ records: 5, own: 1, authors: 2, equivocations: 1 })
    expect(await s.heads()).toEqual(before.heads)
    expect(await s.evidence()).toEqual(before.evidence)
    expect(await s.getMeta('snapshot')).toEqual({ trees: 3, at: 'x' })
    expect(await s.getMeta('missing')).toBeUndefined()
    expect(await s.nextSeq(me.id)).toBe(2)
    const again: string[] = []
    for await (const r of s.all()) again.push(r.id)
    expect(again.sort()).toEqual(ids.sort())
    expect(await s.put(await rec(a, 4))).toBe('inserted')
    expect((await s.heads()).get(a.id)).toBe(5)
  })

  it('refuses a data dir another store holds open', async () => {
    await open()
    const second = createRecordStore({ path: join(dir, 'store'), maxRecords: 10, dataDir: dir })
    const err = await second.start().then(() => undefined, (e: any) => e)
    expect(err?.code).toBe('E_DATA_DIR_LOCKED')
    expect(err?.message).toBe(`data dir ${dir} is in use by another swarmtune daemon`)
  })
})

describe('record store on a full disk (issue #18)', () => {
  // what classic-level throws when the log write hits ENOSPC
  const enospc = (): Error => Object.assign(new Error('IO error: /data/store/000005.log: No space left on device'), { code: 'LEVEL_IO_ERROR' })

  it('refuses writes with E_STORE_FULL while the disk is full, reopens and resumes once space is back, loses nothing acknowledged', async () => {
    const a = await author()
    let full = false
    const s = createRecordStore({ path: join(dir, 'store'), maxRecords: 1_000_000, ownAuthor: a.id, dataDir: dir, reopenIntervalMs: 0, writeFault: () => full ? enospc() : undefined })
    await s.start()
    stores.push(s)
    const acked = [await rec(a, 1), await rec(a, 2)]
    expect(await s.putMany(acked, { own: true })).toEqual(['inserted', 'inserted'])
    full = true
    const lost = await rec(a, 3)
    await expect(s.put(lost, { own: true })).rejects.toMatchObject({ code: 'E_STORE_FULL' })
    await expect(s.putMeta('k', 1)).rejects.toMatchObject({ code: 'E_STORE_FULL' })
    expect(s.health!()).toMatchObject({ healthy: false, error: { code: 'E_STORE_FULL' }, writeErrors: 2, recoveries: 0 })
    expect(s.health!().error!.message).toContain(dir)
    // the failed write moved nothing: counts, head and seq as before it
    expect(await s.counts()).toMatchObject({ records: 2, own: 2 })
    expect(await s.nextSeq(a.id)).toBe(3)
    full = false
    expect(await s.put(lost, { own: true })).toBe('inserted')
    expect(s.health!()).toMatchObject({ healthy: true, error: null, writeErrors: 2, recoveries: 1 })
    await close(s)
    const again = await open({ ownAuthor: a.id })
    expect(await again.counts()).toMatchObject({ records: 3, own: 3 })
    for (const r of [...acked, lost]) expect((await again.get(r.id))?.id).toBe(r.id)
  })

  it('between reopens refuses at once with the last error (E_STORE_IO for other failures)', async () => {
    const a = await author()
    let calls = 0
    const s = createRecordStore({ path: join(dir, 'store'), maxRecords: 1_000_000, reopenIntervalMs: 60_000, writeFault: () => { calls++; return new Error('IO error: disk on fire') } })
    await s.start()
    stores.push(s)
    await expect(s.put(await rec(a, 1))).rejects.toMatchObject({ code: 'E_STORE_IO' })
    await expect(s.put(await rec(a, 2))).rejects.toMatchObject({ code: 'E_STORE_IO' })
    expect(calls).toBe(1)
  })

  it('keeps PutOptions.tags with the records, across a reopen', async () => {
    const a = await author()
    const s = await open()
    await s.putMany([await rec(a, 1), await rec(a, 2)], { tags: ['t1', undefined] })
    const ids = await s.tagged!(['t1', 't2'])
    expect(ids[0]).toMatch(/./)
    expect(ids[1]).toBeUndefined()
    await close(s)
    expect((await (await open()).tagged!(['t1']))[0]).toBe(ids[0])
  })
})
