import { describe, it, expect, beforeEach, afterEach } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { createRecord, frontierRoot, leafHash, merkleRoot, synthBodies, toHex, toWire, type SignedRecord } from '../../../src/records/index.js'
import { FRONTIER_PERSIST_EVERY, createRecordStore } from '../../../src/store/record-store.js'
import type { RecordStore } from '../../../src/store/types.js'
import { waitFor } from '../../../src/util/wait.js'

/*
 * The stored Merkle frontier is a cache that lags the in-memory one (written every
 * FRONTIER_PERSIST_EVERY records of an author, after a short time, at stop): a store that goes
 * away without its final write must come back with every frontier equal to one computed from
 * scratch over the stored log, and never with one ahead of it.
 */
interface Author { key: PrivateKey, id: string }
async function author (): Promise<Author> {
  const key = await generateKeyPair('Ed25519')
  return { key, id: peerIdFromPrivateKey(key).toString() }
}
const bodies = synthBodies(50, 11)
async function run (a: Author, from: number, n: number): Promise<SignedRecord[]> {
  return await Promise.all(Array.from({ length: n }, async (_, i) => await createRecord(a.key, a.id, from + i, bodies[(from + i) % bodies.length])))
}
const rootOf = (recs: SignedRecord[]): string => toHex(merkleRoot(recs.map(r => leafHash(toWire(r)))))

let dir: string
let stores: RecordStore[]
const path = (): string => join(dir, 'store')
async function open (maxRecords = 1_000_000): Promise<RecordStore> {
  // the timer never fires inside a test: what is stored comes from the batches and stop()
  const s = createRecordStore({ path: path(), maxRecords, frontierPersistMs: 3_600_000 })
  await s.start()
  stores.push(s)
  return s
}
/** Gone without stop(): LevelDB closed under the store (everything acknowledged is in its log), no final frontier write. */
async function crash (s: RecordStore): Promise<void> {
  await (s as unknown as { db: Level<string, string> }).db.close()
  stores = stores.filter(x => x !== s)
}
/** the stored frontier lengths, read with LevelDB itself */
async function storedLengths (): Promise<Map<string, string>> {
  const db = new Level<string, string>(path())
  const out = new Map<string, string>()
  for await (const [k, v] of db.sublevel<string, string>('mkl', {}).iterator()) out.set(k, v === '?' ? '?' : v.slice(0, v.indexOf(':')))
  await db.close()
  return out
}
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'swarmtune-frontier-')); stores = [] })
afterEach(async () => {
  for (const s of stores) await s.stop()
  rmSync(dir, { recursive: true, force: true })
})

describe('store: lazily stored Merkle frontiers', () => {
  it('a single put does not write the frontier; every FRONTIER_PERSIST_EVERY records of an author does', async () => {
    const s = await open()
    const a = await author()
    const recs = await run(a, 1, FRONTIER_PERSIST_EVERY + 3)
    for (const r of recs.slice(0, 3)) await s.put(r)
    await s.putMany(recs.slice(3))
    expect(toHex(frontierRoot((await s.frontier!(a.id))!))).toBe(rootOf(recs))
    await crash(s)
    // the batch that took the author FRONTIER_PERSIST_EVERY past 0 stored it, the single puts did not
    expect(await storedLengths()).toEqual(new Map([[a.id, String(FRONTIER_PERSIST_EVERY + 3)]]))
  })

  it('reopens after a crash with every frontier equal to a from-scratch computation, extending the stored one', async () => {
    const a = await author()
    const b = await author()
    const c = await author()
    const as = await run(a, 1, 2 * FRONTIER_PERSIST_EVERY + 40)
    const bs = await run(b, 1, 70)
    const cs = await run(c, 1, 5)
    let s = await open()
    // pages for a (stored at 256 and 512), single puts after; b one at a time; c out of order
    for (let i = 0; i < 2 * FRONTIER_PERSIST_EVERY; i += 64) await s.putMany(as.slice(i, i + 64))
    for (const r of as.slice(2 * FRONTIER_PERSIST_EVERY)) await s.put(r)
    for (const r of bs) await s.put(r)
    await s.putMany([cs[4], cs[2], cs[0], cs[1]])
    await crash(s)
    const lagging = await storedLengths()
    expect(lagging.get(a.id)).toBe(String(2 * FRONTIER_PERSIST_EVERY))
    expect(lagging.has(b.id)).toBe(false)
    s = await open()
    for (const [x, recs, head] of [[a, as, as.length], [b, bs, bs.length], [c, cs, 3]] as const) {
      const f = (await s.frontier!(x.id))!
      expect(f.length).toBe(head)
      expect(toHex(frontierRoot(f))).toBe(rootOf(recs.slice(0, head)))
    }
    // start-up stored what it rebuilt; writes after it extend it
    await s.put(cs[3])
    expect(toHex(frontierRoot((await s.frontier!(c.id))!))).toBe(rootOf(cs))
    await s.stop(); stores = []
    expect(await storedLengths()).toEqual(new Map([[a.id, String(as.length)], [b.id, String(bs.length)], [c.id, '5']]))
  })

  it('stop() stores every lagging frontier, so the next start hashes nothing', async () => {
    const a = await author()
    const recs = await run(a, 1, 9)
    let s = await open()
    for (const r of recs) await s.put(r)
    await s.stop(); stores = []
    expect(await storedLengths()).toEqual(new Map([[a.id, '9']]))
    s = await open()
    expect(toHex(frontierRoot((await s.frontier!(a.id))!))).toBe(rootOf(recs))
  })

  it('an idle store writes its lagging frontiers after frontierPersistMs', async () => {
    const a = await author()
    const recs = await run(a, 1, 3)
    const s = createRecordStore({ path: path(), maxRecords: 1000, frontierPersistMs: 20 })
    await s.start()
    stores.push(s)
    for (const r of recs) await s.put(r)
    await waitFor('frontiers stored', () => (s as unknown as { dirtyFrontiers: Set<string> }).dirtyFrontiers.size === 0, 10_000)
    await crash(s)
    expect(await storedLengths()).toEqual(new Map([[a.id, '3']]))
  })

  it('rebuilds a stored frontier that is ahead of the log or malformed from record 1', async () => {
    const a = await author()
    const b = await author()
    const as = await run(a, 1, 6)
    const bs = await run(b, 1, 4)
    let s = await open()
    await s.putMany([...as, ...bs])
    await s.stop(); stores = []
    const db = new Level<string, string>(path())
    const other = await run(a, 1, 9)
    // a frontier of 8 records over another log (longer than the head of 6), and garbage
    await db.sublevel<string, string>('mkl', {}).put(a.id, `8:${toHex(merkleRoot(other.slice(0, 8).map(r => leafHash(toWire(r)))))}`)
    await db.sublevel<string, string>('mkl', {}).put(b.id, 'not a frontier')
    await db.close()
    s = await open()
    expect(toHex(frontierRoot((await s.frontier!(a.id))!))).toBe(rootOf(as))
    expect(toHex(frontierRoot((await s.frontier!(b.id))!))).toBe(rootOf(bs))
  })

  it('a restart extends over records evicted before the stored frontier; one evicted after it makes the frontier unknowable, not wrong', async () => {
    const a = await author()
    const recs = await run(a, 1, 8)
    for (const [maxRecords, expected] of [[6, 8], [4, undefined]] as const) {
      let s = await open(maxRecords)
      await s.putMany(recs.slice(0, 4))
      await s.stop(); stores = []
      s = await open(maxRecords)
      // 5..8 one at a time, then another author's record: retention evicts from seq 1 on
      for (const r of recs.slice(4)) await s.put(r)
      await s.put((await run(await author(), 1, 1))[0])
      await crash(s)
      s = await open(maxRecords)
      const f = await s.frontier!(a.id)
      expect(await s.has(recs[4].id)).toBe(expected != null)
      expect(f?.length).toBe(expected)
      if (f != null) expect(toHex(frontierRoot(f))).toBe(rootOf(recs))
      await s.stop(); stores = []
      rmSync(path(), { recursive: true, force: true })
    }
  })
})
