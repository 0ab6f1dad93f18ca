import { describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import type { PrivateKey } from '@libp2p/interface'
import {
  createRecord, encodeEnvelope, encodeBody, frontierRoot, leafHash, merkleRoot, signLogHead, synthBodies, toHex, toWire, type SignedRecord
} from '../../src/records/index.js'
import { FRAME_END, FRAME_MORE, FRAME_RECORD, MAX_PAGES_AHEAD, encodeHeads, frame } from '../../src/net/sync.js'
import { FRAME_LOG_HEAD, logHeadPayload } from '../../src/net/sync-v2.js'
import { SYNC2_PROTOCOL, SYNC_PROTOCOL } from '../../src/net/types.js'
import type { RecordStore } from '../../src/store/types.js'
import { ownRecords, testPeers } from '../helpers/net.js'
import { waitFor } from '../../src/util/wait.js'

/*
 * Sync 2.0.0 (docs/records.md) between real loopback peers with LevelDB stores: runs attested by
 * signed log heads, relayed heads, fallback to 1.0.0 both ways, and hostile servers.
 */
const { node, rawPeer } = testPeers({ sync: { pageSize: 64 } })

interface Author { key: PrivateKey, id: string }
async function author (): Promise<Author> {
  const key = await generateKeyPair('Ed25519')
  return { key, id: peerIdFromPrivateKey(key).toString() }
}
async function signedLog (a: Author, n: number, seed = 5): Promise<SignedRecord[]> {
  const bodies = synthBodies(n, seed)
  return await Promise.all(bodies.map(async (b, i) => await createRecord(a.key, a.id, i + 1, b)))
}
const rootOf = (recs: SignedRecord[]): Uint8Array => merkleRoot(recs.map(r => leafHash(toWire(r))))

/** A third author's log in `store` with heads at `lengths`, as a relay that synced it would hold it. */
async function relayedLog (store: RecordStore, a: Author, recs: SignedRecord[], lengths: number[]): Promise<void> {
  await store.putMany(recs)
  for (const n of lengths) await store.putLogHead!(await signLogHead(a.key, a.id, n, rootOf(recs.slice(0, n))))
}

describe('sync 2.0.0', () => {
  it('a 2.0.0 peer catches up from a 2.0.0 peer through runs, keeps the heads and serves them on', async () => {
    const a = await node()
    const own = await ownRecords(a, 150)
    const x = await author()
    const xs = await signedLog(x, 500)
    await relayedLog(a.store, x, xs, [256, 500])
    const b = await node({ init: { syncOnConnect: false } })
    const conn = await b.net.libp2p.dial(multiaddr(a.addr))
    const res = await b.net.syncWith(conn.remotePeer)
    expect(res).toMatchObject({ ok: true, version: 2, inserted: 650 })
    // A signed a head over its own log when it served; X's log came as one run (the longest head
    // within reach): every record came in a run, two signatures for 650 records
    expect(b.net.stats()).toMatchObject({ syncRunsVerified: 2, syncRunRecords: 650 })
    expect(b.net.stats().syncRunsFallback).toBeUndefined()
    for (const r of [...own, ...xs]) expect(await b.store.has(r.id)).toBe(true)
    expect(toHex(frontierRoot((await b.store.frontier!(x.id))!))).toBe(toHex(rootOf(xs)))
    await waitFor('B kept the heads', async () => (await b.store.logHeads!(x.id)).length === 1 && (await b.store.logHeads!(a.author)).length === 1)
    // B serves records it took in through heads once it has checked their own signatures
    await waitFor('B checked the records', async () => (await b.store.unchecked!(10)).length === 0)
    expect(b.net.stats()).toMatchObject({ syncUncheckedVerified: 650 })

    // C catches up from B, which is neither author: B serves the heads it checked
    const c = await node({ init: { syncOnConnect: false } })
    const conn2 = await c.net.libp2p.dial(multiaddr(b.addr))
    expect(await c.net.syncWith(conn2.remotePeer)).toMatchObject({ ok: true, version: 2, inserted: 650 })
    expect(c.net.stats()).toMatchObject({ syncRunRecords: 650 })

    // A's log grew: A signs a new head when it serves, and that run continues from C's own frontier
    const more = await ownRecords(a, 20, 151, 9)
    const conn3 = await c.net.libp2p.dial(multiaddr(a.addr))
    expect(await c.net.syncWith(conn3.remotePeer)).toMatchObject({ ok: true, version: 2, inserted: 20 })
    expect(c.net.stats()).toMatchObject({ syncRunsVerified: 3, syncRunRecords: 670 })
    expect(await c.store.has(more[19].id)).toBe(true)
  })

  it('a server sends the pages a client asks for ahead of its MOREs; a client of the previous build (no "ahead") gets one page per MORE; both sessions end cleanly', async () => {
    const a = await node()
    const own = await ownRecords(a, 64 * 4 + 10)
    const raw = await rawPeer()
    const conn = await raw.dial(multiaddr(a.addr))
    /** one session as a raw client: HEADS (with `ahead` or without), then pages; MOREs sent after `early` pages were read */
    const session = async (ahead: number | undefined): Promise<{ pages: number, records: number }> => {
      const stream = await conn.newStream(SYNC2_PROTOCOL)
      const lp = lpStream(stream, { maxDataLength: 4 << 20, maxBufferSize: 64 << 20 })
      await lp.write(encodeHeads({ pageSize: 64, maxPageBytes: 1 << 20, heads: new Map(), ahead }, 100, 2))
      let pages = 0
      let records = 0
      let mores = 0
      for (;;) {
        const f = (await lp.read()).subarray()
        if (f[0] === FRAME_RECORD) records++
        if (f[0] !== FRAME_END) continue
        pages++
        if (f[1] === 0) break
        // with `ahead`, the first pages come before any MORE: read them all, then ask for each
        if (ahead != null && pages <= ahead) continue
        const owed = pages - mores
        for (let i = 0; i < owed; i++) await lp.write(frame(FRAME_MORE))
        mores += owed
      }
      await stream.close()
      return { pages, records }
    }
    expect(await session(MAX_PAGES_AHEAD)).toEqual({ pages: 5, records: own.length })
    expect(await session(undefined)).toEqual({ pages: 5, records: own.length })
    await waitFor('both sessions served', () => (a.net.stats().syncServedOkV2 ?? 0) === 2)
    expect(a.net.stats().syncServeFailed).toBeUndefined()
  })

  it('a client that asks with `pack` gets its records several to a frame; a client of the previous build (no `pack`) gets one frame per record; both catch up', async () => {
    const a = await node()
    const own = await ownRecords(a, 300)
    const x = await author()
    const xs = await signedLog(x, 200)
    await a.store.putMany(xs)
    const packed = await node({ init: { syncOnConnect: false } })
    const res = await packed.net.syncWith((await packed.net.libp2p.dial(multiaddr(a.addr))).remotePeer)
    expect(res).toMatchObject({ ok: true, version: 2, inserted: 500 })
    const saved = a.net.stats().syncFramesSavedByPacking ?? 0
    // 500 records in pages of 64: a handful of frames per page instead of 64
    expect(saved).toBeGreaterThan(400)
    const plain = await node({ sync: { pageSize: 64, pack: false }, init: { syncOnConnect: false } })
    expect(await plain.net.syncWith((await plain.net.libp2p.dial(multiaddr(a.addr))).remotePeer)).toMatchObject({ ok: true, version: 2, inserted: 500 })
    expect(a.net.stats().syncFramesSavedByPacking ?? 0).toBe(saved)
    // the same records either way, runs attested (A's own log) and loose records checked one by one (X's, no head)
    for (const peer of [packed, plain]) {
      for (const r of [...own, ...xs]) expect(await peer.store.has(r.id)).toBe(true)
      expect(peer.net.stats()).toMatchObject({ syncRunRecords: 300 })
    }
  })

  it('a 2.0.0 peer and a 1.0.0-only peer still sync, both ways', async () => {
    // an older release: serves and speaks /swarmtune/sync/1.0.0 only
    const old = await node({ sync: { maxVersion: 1 }, init: { syncOnConnect: false } })
    await old.net.libp2p.unhandle(SYNC2_PROTOCOL)
    const oldRecs = await ownRecords(old, 70)
    const b = await node({ init: { syncOnConnect: false } })
    const bRecs = await ownRecords(b, 40)
    const conn = await b.net.libp2p.dial(multiaddr(old.addr))
    const res = await b.net.syncWith(conn.remotePeer)
    expect(res).toMatchObject({ ok: true, inserted: 70 })
    expect(res.version).toBeUndefined()
    expect(b.net.stats().syncRunRecords).toBeUndefined()
    const back = await old.net.syncWith(b.net.libp2p.peerId)
    expect(back).toMatchObject({ ok: true, inserted: 40 })
    expect(b.net.stats()).toMatchObject({ syncServedOk: 1 })
    for (const r of oldRecs) expect(await b.store.has(r.id)).toBe(true)
    for (const r of bRecs) expect(await old.store.has(r.id)).toBe(true)
  })

  it('a malicious server that alters one record of a run gets the record refused and is charged; an honest sync then completes', async () => {
    const evil = await rawPeer()
    const ev: Author = { key: evil.key, id: evil.author }
    const recs = await signedLog(ev, 40)
    const head = await signLogHead(ev.key, ev.id, 40, rootOf(recs))
    // record 17's body changed (a faster result) under its original signature
    const orig = recs[16]
    const body = { ...orig.body, result: { ...orig.body.result, wallMs: orig.body.result.wallMs / 2 } }
    const forged = encodeEnvelope(encodeBody(body), orig.signature)
    await evil.handle(SYNC2_PROTOCOL, async (stream) => {
      const lp = lpStream(stream, { maxDataLength: 4 << 20 })
      try {
        await lp.read()
        const wires = recs.map(toWire)
        wires[16] = forged
        await lp.writeV([frame(FRAME_LOG_HEAD, logHeadPayload(40, head)), ...wires.map(w => frame(FRAME_RECORD, w)), frame(FRAME_END, Uint8Array.of(0))])
        await lp.read()
      } catch {}
    }, { force: true })
    const charged: string[] = []
    const b = await node({ sync: { timeoutMs: 3000 }, init: { syncOnConnect: false, guard: { onViolation: (peer, code) => { charged.push(`${peer} ${code}`) } } } })
    await evil.dial(multiaddr(b.addr))
    await waitFor('connected', () => b.net.peerCount() === 1)
    const res = await b.net.syncWith(evil.peerId)
    expect(res).toMatchObject({ ok: false, version: 2, code: 'E_BAD_SIGNATURE' })
    expect(b.rejections.get('E_BAD_SIGNATURE')).toBe(1)
    expect(charged).toEqual([`${evil.author} E_BAD_SIGNATURE`])
    expect(b.net.stats()).toMatchObject({ syncRunsFallback: 1, syncSessionsFailed: 1 })
    expect(b.net.stats().syncRunsVerified).toBeUndefined()
    // nothing forged is stored, and no head that would vouch for it
    expect((await b.store.query({ author: ev.id, limit: 100 })).records.some(r => r.body.seq === 17)).toBe(false)
    expect(await b.store.logHeads!(ev.id)).toEqual([])

    const a = await node()
    const honest = await ownRecords(a, 30)
    const conn = await b.net.libp2p.dial(multiaddr(a.addr))
    expect(await b.net.syncWith(conn.remotePeer)).toMatchObject({ ok: true, version: 2, inserted: 30 })
    for (const r of honest) expect(await b.store.has(r.id)).toBe(true)
  })

  it('a head whose signature does not verify refuses the run (E_SYNC_PROOF) and charges the server', async () => {
    const evil = await rawPeer()
    const x = await author()
    const recs = await signedLog(x, 12)
    // the root is right, the signature is by another key
    const fake = await signLogHead(evil.key, x.id, 12, rootOf(recs))
    await evil.handle(SYNC2_PROTOCOL, async (stream) => {
      const lp = lpStream(stream, { maxDataLength: 4 << 20 })
      try {
        await lp.read()
        await lp.writeV([frame(FRAME_LOG_HEAD, logHeadPayload(12, fake)), ...recs.map(r => frame(FRAME_RECORD, toWire(r))), frame(FRAME_END, Uint8Array.of(0))])
        await lp.read()
      } catch {}
    }, { force: true })
    // a 1.0.0 handler too: the client must not fall back when 2.0.0 is offered
    await evil.handle(SYNC_PROTOCOL, async (stream) => { stream.abort(new Error('not used')) }, { force: true })
    const charged: string[] = []
    const b = await node({ sync: { timeoutMs: 3000 }, init: { syncOnConnect: false, guard: { onViolation: (_peer, code) => { charged.push(code) } } } })
    await evil.dial(multiaddr(b.addr))
    await waitFor('connected', () => b.net.peerCount() === 1)
    const res = await b.net.syncWith(evil.peerId)
    expect(res).toMatchObject({ ok: false, version: 2, code: 'E_SYNC_PROOF', inserted: 0 })
    expect(charged).toEqual(['E_SYNC_PROOF'])
    expect(b.rejections.get('E_SYNC_PROOF')).toBe(1)
    expect((await b.store.counts()).records).toBe(0)
  })
})
