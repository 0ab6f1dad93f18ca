import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { createRecord, decodeWireUnverified, leafHash, merkleRoot, signLogHead, synthBodies, toWire, type SignedRecord } from '../../../src/records/index.js'
import { createRecordStore } from '../../../src/store/record-store.js'
import type { RecordStore } from '../../../src/store/types.js'
import { createIngest } from '../../../src/net/ingest.js'
import { FRAME_RECORD, fillPage } from '../../../src/net/sync-wire.js'
import { FRAME_LOG_HEAD, MAX_RUN_BYTES, RunTracker, UncheckedChecker, fillPageV2, keepHead, logHeadPayload, type RunCursor } from '../../../src/net/sync-v2.js'
import { Counters } from '../../../src/util/counters.js'
import { log } from '../../../src/util/log.js'

/*
 * Sync 2.0.0's mended open points on a real LevelDB store: records taken in through a log head
 * are marked unchecked, never sent loose before their own signature is checked, and dropped when
 * it fails; heads are kept only where the stored log agrees; heads stay few; runs are bounded.
 */
interface Author { key: PrivateKey, id: string }
async function author (): Promise<Author> {
  const key = await generateKeyPair('Ed25519')
  return { key, id: peerIdFromPrivateKey(key).toString() }
}
async function signedLog (a: Author, n: number, seed = 3): Promise<SignedRecord[]> {
  const bodies = synthBodies(n, seed)
  return await Promise.all(bodies.map(async (b, i) => await createRecord(a.key, a.id, i + 1, b)))
}
/** the record with one bit of its own signature flipped: its bytes as a head would attest them */
function brokenSignature (r: SignedRecord): SignedRecord {
  const w = toWire(r)
  w[10] ^= 1
  return decodeWireUnverified(w)
}
const rootOf = (recs: SignedRecord[]): Uint8Array => merkleRoot(recs.map(r => leafHash(toWire(r))))

let dir: string
let stores: RecordStore[]
async function open (): Promise<RecordStore> {
  const s = createRecordStore({ path: join(dir, 'store'), maxRecords: 1_000_000 })
  await s.start()
  stores.push(s)
  return s
}
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'swarmtune-unchecked-')); stores = [] })
afterEach(async () => {
  for (const s of stores.splice(0)) await s.stop().catch(() => {})
  rmSync(dir, { recursive: true, force: true })
})

function parts (store: RecordStore): { store: RecordStore, stats: Counters, rejections: Counters, charged: string[], checker: UncheckedChecker, c: ConstructorParameters<typeof UncheckedChecker>[0] } {
  const stats = new Counters()
  const rejections = new Counters()
  const charged: string[] = []
  const c = { store, stats, rejections, log: log('test'), ingest: createIngest({ store, rejections, stats, log: log('test') }), guard: { onViolation: (peer: string, code: string) => { charged.push(`${peer} ${code}`) } } }
  return { store, stats, rejections, charged, checker: new UncheckedChecker(c, 8), c }
}

describe('records taken in through a log head, unchecked', () => {
  it('are not sent loose (1.0.0, or 2.0.0 outside a run) before their own signature is checked; a broken one is dropped and its author charged', async () => {
    const store = await open()
    const x = await author()
    const recs = await signedLog(x, 30)
    recs[16] = brokenSignature(recs[16])
    // as sync 2.0.0 commits an attested run: marks first, then the records
    await store.markUnchecked!(recs)
    await store.putMany(recs)
    const page1 = await fillPage(store, [{ author: x.id, after: 0 }], 100, 1 << 20)
    expect(page1).toEqual([])
    // nor inside a run: a 2.0.0 client whose root check fails checks the run record by record
    const head = await signLogHead(x.key, x.id, 30, rootOf(recs))
    await store.putLogHead!(head)
    const cursors: RunCursor[] = [{ author: x.id, after: 0 }]
    const v2 = await fillPageV2(store, cursors, await store.heads(), 100, 1 << 20)
    expect(v2.frames).toEqual([])

    const { stats, rejections, charged, checker, c } = parts(store)
    const relayed: number[] = []
    // gossip relays a record taken in through a head only once the check has verified it
    c.relayChecked = (r: SignedRecord) => { relayed.push(r.body.seq) }
    await checker.kick()
    expect(stats.toJSON()).toMatchObject({ syncUncheckedVerified: 29, syncUncheckedForged: 1 })
    expect(relayed.sort((a, b) => a - b)).toEqual(recs.map(r => r.body.seq).filter(q => q !== 17))
    expect(rejections.toJSON()).toEqual({ E_BAD_SIGNATURE: 1 })
    expect(charged).toEqual([`${x.id} E_BAD_SIGNATURE`])
    expect(await store.unchecked!(100)).toEqual([])
    expect(await store.has(recs[16].id)).toBe(false)
    expect((await store.counts()).records).toBe(29)
    // the head stays where it was (a tombstone), the run over the hole is no longer served
    expect((await store.heads()).get(x.id)).toBe(30)
    const page2 = await fillPage(store, [{ author: x.id, after: 0 }], 100, 1 << 20)
    expect(page2.map(w => decodeWireUnverified(w).body.seq)).toEqual([...Array(16).keys()].map(i => i + 1).concat([...Array(13).keys()].map(i => i + 18)))
    const again = await fillPageV2(store, [{ author: x.id, after: 0 }], await store.heads(), 100, 1 << 20)
    expect(again.frames.every(f => f[0] === FRAME_RECORD)).toBe(true)
    expect(again.records).toBe(29)
  })

  it('marks survive a restart, and a record marked twice or stored as evidence is settled once', async () => {
    let store = await open()
    const x = await author()
    const recs = await signedLog(x, 5)
    await store.markUnchecked!(recs)
    await store.markUnchecked!(recs.slice(0, 2))
    await store.putMany(recs)
    await store.stop()
    stores.pop()
    store = await open()
    expect((await store.unchecked!(100)).map(m => m.seq)).toEqual([1, 2, 3, 4, 5])
    expect(await store.firstUnchecked!(x.id, 2)).toBe(3)
    const { stats, checker } = parts(store)
    await checker.kick()
    expect(stats.toJSON()).toMatchObject({ syncUncheckedVerified: 5 })
    expect(await store.firstUnchecked!(x.id, 0)).toBeUndefined()
    expect((await fillPage(store, [{ author: x.id, after: 0 }], 100, 1 << 20)).length).toBe(5)
    // checked: served in a run again
    await store.putLogHead!(await signLogHead(x.key, x.id, 5, rootOf(recs)))
    const v2 = await fillPageV2(store, [{ author: x.id, after: 0 }], await store.heads(), 100, 1 << 20)
    expect(v2.frames.map(f => f[0])).toEqual([FRAME_LOG_HEAD, ...Array(5).fill(FRAME_RECORD)])
  })
})

describe('log heads kept only where the stored log agrees', () => {
  it('a head whose root the store\'s frontier at its length has is kept; one over another record at a stored seq is evidence, with the kept head, charged to the author', async () => {
    const store = await open()
    const x = await author()
    const recs = await signedLog(x, 12)
    await store.putMany(recs.slice(0, 8))
    const { c, charged, stats, rejections } = parts(store)
    const h8 = await signLogHead(x.key, x.id, 8, rootOf(recs.slice(0, 8)))
    await keepHead(c, h8)
    expect((await store.logHeads!(x.id)).map(h => h.body.length)).toEqual([8])
    // a head the stored log does not reach yet is not kept
    const h12 = await signLogHead(x.key, x.id, 12, rootOf(recs))
    await keepHead(c, h12)
    expect((await store.logHeads!(x.id)).map(h => h.body.length)).toEqual([8])
    // x signed another record 10 and a head over that log; the store holds the first record 10
    const other = await createRecord(x.key, x.id, 10, synthBodies(20, 99)[19])
    const forked = [...recs.slice(0, 9), other, ...recs.slice(10)]
    await store.putMany(recs.slice(8))
    const h12b = await signLogHead(x.key, x.id, 12, rootOf(forked))
    await keepHead(c, h12b)
    expect((await store.logHeads!(x.id)).map(h => h.body.length)).toEqual([8])
    expect((await store.logHeadEvidence!()).map(h => h.body.root).sort()).toEqual([h12b.body.root, h8.body.root].sort())
    expect(charged).toEqual([`${x.id} E_SYNC_HEAD_CONFLICT`])
    expect(rejections.toJSON()).toEqual({ E_SYNC_HEAD_CONFLICT: 1 })
    expect(stats.toJSON()).toMatchObject({ syncHeadConflicts: 1 })
    // the honest head at 12 is kept, and the one at 8 pruned (12 is within a run's reach of 0)
    await keepHead(c, h12)
    expect((await store.logHeads!(x.id)).map(h => h.body.length)).toEqual([12])
  })

  it('an author that signs a head every 50 records keeps a bounded number of heads in the store', async () => {
    const store = await open()
    const x = await author()
    const root = new Uint8Array(32)
    for (let n = 50; n <= 20_000; n += 50) await store.putLogHead!(await signLogHead(x.key, x.id, n, root))
    const kept = (await store.logHeads!(x.id)).map(h => h.body.length)
    expect(kept.at(-1)).toBe(20_000)
    expect(kept.length).toBeLessThanOrEqual(2 * 20_000 / 4096 + 2)
  })
})

describe('sync 2.0.0 wire: a run is bounded in bytes as well as records', () => {
  it('a run whose records add up to more than MAX_RUN_BYTES is refused (E_SYNC_LIMIT) before it is checked', async () => {
    const store = await open()
    const x = await author()
    const head = await signLogHead(x.key, x.id, 4096, new Uint8Array(32))
    const { c } = parts(store)
    const t = new RunTracker({ ...c, config: {} as never, limits: {} as never, connectionTo: () => undefined }, new Map(), 'server', { controller: new AbortController(), signal: new AbortController().signal, kick: () => {} })
    t.open(logHeadPayload(4096, head))
    const big = new Uint8Array(64 * 1024)
    let thrown: unknown
    try {
      for (let i = 0; i * big.length <= MAX_RUN_BYTES; i++) t.add(big)
    } catch (err) { thrown = err }
    expect(thrown).toMatchObject({ code: 'E_SYNC_LIMIT' })
  })
})
