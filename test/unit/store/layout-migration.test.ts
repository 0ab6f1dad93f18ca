import { describe, it, expect, beforeEach, afterEach } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { createRecord, synthBodies, type SignedRecord } from '../../../src/records/index.js'
import { LAYOUT, createRecordStore } from '../../../src/store/record-store.js'
import type { RecordStore } from '../../../src/store/types.js'

/*
 * Store layout 1 → 2 (issue #19, bulk write path): layout 1 kept a `fifo` sublevel (ord → id of
 * records retention may evict) beside `ord`; layout 2 marks own records in `ord` with "+" and has
 * no fifo. A layout-1 data dir (made here with LevelDB itself, as that release wrote it) must
 * open with its records, queries and retention as before.
 */
interface Author { key: PrivateKey, id: string }
async function author (): Promise<Author> {
  const key = await generateKeyPair('Ed25519')
  return { key, id: peerIdFromPrivateKey(key).toString() }
}
const bodies = synthBodies(40, 9)
async function run (a: Author, n: number): Promise<SignedRecord[]> {
  return await Promise.all(Array.from({ length: n }, async (_, i) => await createRecord(a.key, a.id, i + 1, bodies[i % bodies.length])))
}

let dir: string
let stores: RecordStore[]
const path = (): string => join(dir, 'store')
async function open (maxRecords: number, ownAuthor?: string): Promise<RecordStore> {
  const s = createRecordStore({ path: path(), maxRecords, ownAuthor })
  await s.start()
  stores.push(s)
  return s
}
async function raw (): Promise<{ ord: Array<[string, string]>, fifo: Array<[string, string]>, layout: unknown }> {
  const db = new Level<string, string>(path())
  const ord = await db.sublevel<string, string>('ord', {}).iterator().all()
  const fifo = await db.sublevel<string, string>('fifo', {}).iterator().all()
  const layout = await db.sublevel<string, unknown>('meta', { valueEncoding: 'json' }).get('\u0000layout')
  await db.close()
  return { ord, fifo, layout }
}
/** Rewrite a data dir into layout 1: plain ids in ord, a fifo entry per evictable record, no layout key. */
async function toLayout1 (): Promise<void> {
  const db = new Level<string, string>(path())
  const ord = db.sublevel<string, string>('ord', {})
  const fifo = db.sublevel<string, string>('fifo', {})
  for (const [o, v] of await ord.iterator().all()) {
    if (v.startsWith('+')) await ord.put(o, v.slice(1))
    else await fifo.put(o, v)
  }
  await db.sublevel<string, unknown>('meta', { valueEncoding: 'json' }).del('\u0000layout')
  await db.close()
}
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'swarmtune-layout-')); stores = [] })
afterEach(async () => {
  for (const s of stores) await s.stop()
  rmSync(dir, { recursive: true, force: true })
})

describe('store layout migration', () => {
  it('a new store writes layout 2: own records marked in ord, no fifo', async () => {
    const me = await author()
    const other = await author()
    const s = await open(100, me.id)
    await s.putMany([...(await run(me, 2)), ...(await run(other, 3))])
    await s.stop(); stores = []
    const { ord, fifo, layout } = await raw()
    expect(layout).toBe(LAYOUT)
    expect(fifo).toEqual([])
    expect(ord.map(([, v]) => v.startsWith('+'))).toEqual([true, true, false, false, false])
  })

  it('migrates a layout-1 data dir on start: records, queries and retention (own records never evicted) as before', async () => {
    const me = await author()
    const other = await author()
    const mine = await run(me, 3)
    const theirs = await run(other, 6)
    let s = await open(1000, me.id)
    // interleaved: own, other, own, other, ...
    await s.putMany([mine[0], theirs[0], mine[1], theirs[1], theirs[2], mine[2], theirs[3]])
    await s.stop(); stores = []
    await toLayout1()
    const before = await raw()
    expect(before.layout).toBeUndefined()
    expect(before.fifo).toHaveLength(4)
    expect(before.ord.every(([, v]) => !v.startsWith('+'))).toBe(true)

    s = await open(6, me.id)
    const page = await s.query({ limit: 100 })
    expect(page.records.map(r => r.id)).toEqual([mine[0], theirs[0], mine[1], theirs[1], theirs[2], mine[2], theirs[3]].map(r => r.id))
    // 7 stored, room for 6: two more in evict the three oldest non-own records (theirs 1..3), never mine
    await s.putMany(theirs.slice(4))
    expect(await s.counts()).toMatchObject({ records: 6, own: 3 })
    for (const r of mine) expect(await s.has(r.id)).toBe(true)
    for (const r of theirs.slice(0, 3)) expect(await s.has(r.id)).toBe(false)
    expect((await s.query({ limit: 100 })).records.map(r => r.id)).toEqual([mine[0], mine[1], mine[2], theirs[3], theirs[4], theirs[5]].map(r => r.id))
    await s.stop(); stores = []
    const migrated = await raw()
    expect(migrated.layout).toBe(LAYOUT)
    expect(migrated.fifo).toEqual([])
    expect(migrated.ord.filter(([, v]) => v.startsWith('+')).map(([, v]) => v.slice(1))).toEqual(mine.map(r => r.id))
  })

  it('a migration cut short is finished by the next start (marks are not doubled, fifo leftovers dropped)', async () => {
    const me = await author()
    const s0 = await open(1000, me.id)
    await s0.putMany([...(await run(me, 2)), ...(await run(await author(), 2))])
    await s0.stop(); stores = []
    // two crashes: after the own records were marked (layout not yet written), and after the
    // layout was written (fifo not yet dropped)
    for (const layoutWritten of [false, true]) {
      await toLayout1()
      const db = new Level<string, string>(path())
      const ord = db.sublevel<string, string>('ord', {})
      for (const [o, v] of await ord.iterator().all()) if (await db.sublevel<string, string>('fifo', {}).get(o) == null) await ord.put(o, `+${v}`)
      if (layoutWritten) await db.sublevel<string, unknown>('meta', { valueEncoding: 'json' }).put('\u0000layout', LAYOUT)
      await db.close()
      const s = await open(1000, me.id)
      expect((await s.query({ limit: 10 })).records).toHaveLength(4)
      await s.stop(); stores = []
      const { ord: entries, fifo, layout } = await raw()
      expect(layout).toBe(LAYOUT)
      expect(fifo).toEqual([])
      expect(entries.filter(([, v]) => v.startsWith('++'))).toEqual([])
      expect(entries.filter(([, v]) => v.startsWith('+'))).toHaveLength(2)
    }
  })

  it('refuses a data dir of a newer layout with E_STORE_LAYOUT', async () => {
    const s0 = await open(10)
    await s0.stop(); stores = []
    const db = new Level<string, string>(path())
    await db.sublevel<string, unknown>('meta', { valueEncoding: 'json' }).put('\u0000layout', LAYOUT + 1)
    await db.close()
    const s = createRecordStore({ path: path(), maxRecords: 10 })
    await expect(s.start()).rejects.toMatchObject({ code: 'E_STORE_LAYOUT' })
    await s.stop()
  })
})
