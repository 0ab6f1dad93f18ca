import { describe, it, expect, beforeEach, afterEach } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { createRecord, frontierRoot, leafHash, merkleRoot, signLogHead, synthBodies, toHex, toWire, type SignedRecord } from '../../../src/records/index.js'
import { createRecordStore } from '../../../src/store/record-store.js'
import type { RecordStore } from '../../../src/store/types.js'

/* Sync 2.0.0 support in the store: per-author Merkle frontiers, signed log heads, migration. */
interface Author { key: PrivateKey, id: string }
async function author (): Promise<Author> {
  const key = await generateKeyPair('Ed25519')
  return { key, id: peerIdFromPrivateKey(key).toString() }
}
const bodies = synthBodies(50, 7)
async function run (a: Author, n: number): Promise<SignedRecord[]> {
  return await Promise.all(Array.from({ length: n }, async (_, i) => await createRecord(a.key, a.id, i + 1, bodies[i % bodies.length])))
}
const rootOf = (recs: SignedRecord[]): string => toHex(merkleRoot(recs.map(r => leafHash(toWire(r)))))

let dir: string
let stores: RecordStore[]
async function open (maxRecords = 1_000_000): Promise<RecordStore> {
  const s = createRecordStore({ path: join(dir, 'store'), maxRecords })
  await s.start()
  stores.push(s)
  return s
}
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'swarmtune-heads-')); stores = [] })
afterEach(async () => {
  for (const s of stores) await s.stop()
  rmSync(dir, { recursive: true, force: true })
})

describe('store: Merkle frontiers and log heads', () => {
  it('keeps the frontier of 1..head as records arrive, out of order and across batches', async () => {
    const s = await open()
    const a = await author()
    const recs = await run(a, 37)
    expect(toHex(frontierRoot((await s.frontier!(a.id))!))).toBe(rootOf([]))
    await s.putMany([recs[0], recs[1], recs[4]])
    expect((await s.frontier!(a.id))?.length).toBe(2)
    expect(toHex(frontierRoot((await s.frontier!(a.id))!))).toBe(rootOf(recs.slice(0, 2)))
    await s.putMany(recs.slice(2, 20).reverse())
    await s.put(recs[20])
    await s.putMany(recs.slice(21))
    const f = (await s.frontier!(a.id))!
    expect(f.length).toBe(37)
    expect(toHex(frontierRoot(f))).toBe(rootOf(recs))
    // what a sync server reads: the stored wires, undecoded, with their seqs
    const wires = await s.wiresBySeq!(a.id, 30, 5)
    expect(wires.map(w => w.seq)).toEqual([31, 32, 33, 34, 35])
    expect(wires.map(w => Buffer.from(w.wire).toString('hex'))).toEqual(recs.slice(30, 35).map(r => Buffer.from(toWire(r)).toString('hex')))
  })

  it('wiresBySeq reads on past evicted records and returns up to `limit` stored ones', async () => {
    const s = await open(6)
    const a = await author()
    const recs = await run(a, 10)
    await s.putMany(recs.slice(0, 6))
    // 5 more in: retention evicts 1..5 (tombstones in the log) over the following writes
    for (const r of recs.slice(6)) await s.put(r)
    await s.put((await run(await author(), 1))[0])
    expect(await s.has(recs[0].id)).toBe(false)
    const hex = (w: Uint8Array): string => Buffer.from(w).toString('hex')
    const seqs = async (after: number, limit: number): Promise<number[]> => (await s.wiresBySeq!(a.id, after, limit)).map(w => w.seq)
    const stored = (await s.wiresBySeq!(a.id, 0, 3))
    expect(stored.map(w => w.seq)).toEqual([6, 7, 8])
    expect(stored.map(w => hex(w.wire))).toEqual(recs.slice(5, 8).map(r => hex(toWire(r))))
    expect(await seqs(0, 100)).toEqual([6, 7, 8, 9, 10])
    expect(await seqs(8, 100)).toEqual([9, 10])
    expect(await seqs(10, 100)).toEqual([])
    expect(await seqs(0, 0)).toEqual([])
  })

  it('migrates a data dir without frontiers on start', async () => {
    const a = await author()
    const recs = await run(a, 21)
    let s = await open()
    await s.putMany(recs)
    await s.stop(); stores = []
    // an older release's data dir: no mkl sublevel
    const db = new Level<string, string>(join(dir, 'store'))
    await db.sublevel('mkl').clear()
    await db.close()
    s = await open()
    const f = (await s.frontier!(a.id))!
    expect(f.length).toBe(21)
    expect(toHex(frontierRoot(f))).toBe(rootOf(recs))
  })

  it('an evicted record below the head makes the frontier unknown (runs then verify record by record)', async () => {
    const s = await open(3)
    const a = await author()
    const recs = await run(a, 6)
    // 2..6 stored, retention evicts the oldest (on the next write), then 1 arrives: 1..6 contiguous but 2 is gone
    await s.putMany(recs.slice(1))
    await s.put((await run(await author(), 1))[0])
    expect(await s.has(recs[1].id)).toBe(false)
    await s.put(recs[0])
    expect((await s.heads()).get(a.id)).toBe(6)
    expect(await s.frontier!(a.id)).toBeUndefined()
  })

  it('stores log heads per author; a head a longer one within reach makes redundant is not kept; a conflicting head of one length is evidence', async () => {
    const s = await open()
    const a = await author()
    const recs = await run(a, 4)
    const h2 = await signLogHead(a.key, a.id, 2, merkleRoot(recs.slice(0, 2).map(r => leafHash(toWire(r)))))
    const h4 = await signLogHead(a.key, a.id, 4, merkleRoot(recs.map(r => leafHash(toWire(r)))))
    expect(await s.putLogHead!(h2)).toBe('inserted')
    expect(await s.putLogHead!(h2)).toBe('duplicate')
    expect((await s.logHeads!(a.id)).map(h => h.body.length)).toEqual([2])
    // 4 is within a run's reach of 0: the head at 2 is pruned in the same write, and not taken back
    expect(await s.putLogHead!(h4)).toBe('inserted')
    expect(await s.putLogHead!(h2)).toBe('duplicate')
    expect((await s.logHeads!(a.id)).map(h => h.body.length)).toEqual([4])
    const other = await signLogHead(a.key, a.id, 4, leafHash(Uint8Array.of(1)))
    expect(await s.putLogHead!(other)).toBe('equivocation')
    expect((await s.logHeadEvidence!()).map(h => h.body.root).sort()).toEqual([h4.body.root, other.body.root].sort())
    expect(await s.logHeads!('12D3KooWRsGBdtkqfJrFZ6jUDvNZLMLTfDUp8hcSgeuWHyn2b1QS')).toEqual([])
  })
})
