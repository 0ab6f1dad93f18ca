import { describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import type { PrivateKey } from '@libp2p/interface'
import {
  createRecord, decodeWireUnverified, leafHash, merkleRoot, signLogHead, synthBodies, toWire, type LogHead, type SignedRecord
} from '../../src/records/index.js'
import { FRAME_END, FRAME_RECORD, frame } from '../../src/net/sync.js'
import { FRAME_LOG_HEAD, logHeadPayload } from '../../src/net/sync-v2.js'
import { SYNC2_PROTOCOL } from '../../src/net/types.js'
import { testPeers, type RawPeer } from '../helpers/net.js'
import { waitFor } from '../../src/util/wait.js'

/*
 * The open points of sync 2.0.0, mended (docs/records.md), between real loopback peers with
 * LevelDB stores: records taken in through a head with a broken own signature, heads that
 * disagree with the stored log, heads kept bounded, and hostile 2.0.0 frames.
 */
const { node, rawPeer } = testPeers({ sync: { pageSize: 64, timeoutMs: 3000 } })

interface Author { key: PrivateKey, id: string }
async function author (): Promise<Author> {
  const key = await generateKeyPair('Ed25519')
  return { key, id: peerIdFromPrivateKey(key).toString() }
}
async function signedLog (a: Author, n: number, seed = 5, first = 1): Promise<SignedRecord[]> {
  const bodies = synthBodies(n, seed)
  return await Promise.all(bodies.map(async (b, i) => await createRecord(a.key, a.id, first + i, b)))
}
const rootOf = (recs: SignedRecord[]): Uint8Array => merkleRoot(recs.map(r => leafHash(toWire(r))))

/** a raw peer that answers a 2.0.0 session with these frames (then waits for the client to hang up) */
async function serving (frames: (evil: RawPeer) => Promise<Uint8Array[]>): Promise<RawPeer> {
  const evil = await rawPeer()
  const out = await frames(evil)
  await evil.handle(SYNC2_PROTOCOL, async (stream) => {
    const lp = lpStream(stream, { maxDataLength: 4 << 20 })
    try {
      await lp.read()
      await lp.writeV(out)
      await lp.read()
    } catch {}
  }, { force: true })
  return evil
}
const runFrames = (head: LogHead, count: number, recs: SignedRecord[]): Uint8Array[] =>
  [frame(FRAME_LOG_HEAD, logHeadPayload(count, head)), ...recs.map(r => frame(FRAME_RECORD, toWire(r))), frame(FRAME_END, Uint8Array.of(0))]

describe('sync 2.0.0, mended open points', () => {
  it('a record whose own signature is broken, attested by its author\'s head, is never served to a 1.0.0 peer, and is dropped with its author charged', async () => {
    const x = await author()
    const recs = await signedLog(x, 30)
    const w = toWire(recs[16]); w[10] ^= 1
    recs[16] = decodeWireUnverified(w)
    const head = await signLogHead(x.key, x.id, 30, rootOf(recs))
    const relay = await serving(async () => runFrames(head, 30, recs))
    const charged: string[] = []
    const b = await node({ init: { syncOnConnect: false, guard: { onViolation: (peer, code) => { charged.push(`${peer} ${code}`) } } } })
    await relay.dial(multiaddr(b.addr))
    await waitFor('connected', () => b.net.peerCount() === 1)
    expect(await b.net.syncWith(relay.peerId)).toMatchObject({ ok: true, version: 2, inserted: 30 })
    expect(b.net.stats()).toMatchObject({ syncRunsVerified: 1, syncRunRecords: 30 })

    // an old peer catches up from B at once, before or while B checks: it never gets the record
    const oldCharged: string[] = []
    const old = await node({ sync: { maxVersion: 1 }, init: { syncOnConnect: false, guard: { onViolation: (peer, code) => { oldCharged.push(`${peer} ${code}`) } } } })
    await old.net.libp2p.unhandle(SYNC2_PROTOCOL)
    const conn = await old.net.libp2p.dial(multiaddr(b.addr))
    expect(await old.net.syncWith(conn.remotePeer)).toMatchObject({ ok: true })
    expect(old.rejections.get('E_BAD_SIGNATURE')).toBe(0)
    expect(oldCharged).toEqual([])
    expect(await old.store.has(recs[16].id)).toBe(false)

    await waitFor('B checked every record taken in through the head', async () => (await b.store.unchecked!(10)).length === 0)
    expect(b.net.stats()).toMatchObject({ syncUncheckedVerified: 29, syncUncheckedForged: 1 })
    expect(b.rejections.get('E_BAD_SIGNATURE')).toBe(1)
    // the author is charged, the relay that served it is not
    expect(charged).toEqual([`${x.id} E_BAD_SIGNATURE`])
    expect(await b.store.has(recs[16].id)).toBe(false)
    expect((await b.store.counts()).records).toBe(30 - 1)

    // once checked, the old peer gets the rest, and still nothing to refuse
    expect(await old.net.syncWith(conn.remotePeer)).toMatchObject({ ok: true })
    for (const r of recs) expect(await old.store.has(r.id)).toBe(r.body.seq !== 17)
    expect(old.rejections.get('E_BAD_SIGNATURE')).toBe(0)
    expect(oldCharged).toEqual([])
  })

  it('a head whose run checks against the client\'s view but not against the log its store holds is kept as evidence with the kept head, charged to the author; clients of that store are not misled', async () => {
    const x = await author()
    const log = await signedLog(x, 150)
    // x signed a second record 120 and a head over that log
    const y = await createRecord(x.key, x.id, 120, synthBodies(200, 77)[199])
    const forked = [...log.slice(0, 119), y, ...log.slice(120)]
    const h100 = await signLogHead(x.key, x.id, 100, rootOf(log.slice(0, 100)))
    const forkedHead = await signLogHead(x.key, x.id, 150, rootOf(forked))
    const relay = await serving(async () => runFrames(forkedHead, 50, forked.slice(100)))
    const charged: string[] = []
    const b = await node({ init: { syncOnConnect: false, guard: { onViolation: (peer, code) => { charged.push(`${peer} ${code}`) } } } })
    // B holds x's log to 100 with its head, and the first record 120 (gossip brought it early)
    await b.store.putMany([...log.slice(0, 100), log[119]])
    expect(await b.store.putLogHead!(h100)).toBe('inserted')
    await relay.dial(multiaddr(b.addr))
    await waitFor('connected', () => b.net.peerCount() === 1)
    expect(await b.net.syncWith(relay.peerId)).toMatchObject({ ok: true, version: 2, inserted: 49 })
    expect(b.net.stats()).toMatchObject({ syncRunsVerified: 1, syncEquivocations: 1, syncHeadConflicts: 1 })
    expect((await b.store.logHeads!(x.id)).map(h => h.body.length)).toEqual([100])
    expect((await b.store.logHeadEvidence!()).map(h => h.body.root).sort()).toEqual([h100.body.root, forkedHead.body.root].map(r => r).sort())
    expect(charged).toEqual([`${x.id} E_SYNC_HEAD_CONFLICT`])
    expect(b.rejections.get('E_SYNC_HEAD_CONFLICT')).toBe(1)

    // a fresh client of B: a run to 100, then B's own log (with the first record 120) loose; no run to refute
    await waitFor('B checked the records', async () => (await b.store.unchecked!(10)).length === 0)
    const c = await node({ init: { syncOnConnect: false } })
    const conn = await c.net.libp2p.dial(multiaddr(b.addr))
    expect(await c.net.syncWith(conn.remotePeer)).toMatchObject({ ok: true, version: 2, inserted: 150 })
    expect(c.net.stats()).toMatchObject({ syncRunsVerified: 1, syncRunRecords: 100 })
    expect(c.net.stats().syncRunsFallback).toBeUndefined()
    expect(c.net.stats().syncHeadConflicts).toBeUndefined()
    expect(await c.store.has(log[119].id)).toBe(true)
  })

  it('heads stay bounded while an author keeps writing and serving, and a new peer still catches up in runs', async () => {
    const a = await node()
    const c = await node({ init: { syncOnConnect: false } })
    const conn = await c.net.libp2p.dial(multiaddr(a.addr))
    const rounds = 6
    const per = 800
    for (let k = 0; k < rounds; k++) {
      const recs = await Promise.all(synthBodies(per, k + 1).map(async (body, i) => await createRecord(a.key, a.author, k * per + i + 1, body)))
      await a.store.putMany(recs, { own: true })
      // A signs a head over its grown log for every session it serves
      expect(await c.net.syncWith(conn.remotePeer)).toMatchObject({ ok: true, version: 2, inserted: per })
    }
    expect(c.net.stats()).toMatchObject({ syncRunsVerified: rounds, syncRunRecords: rounds * per })
    // 6 heads were signed and checked; kept: those a client can use (4000 is the last within 4096 of 0, 4800 within 4096 of 4000)
    const lengths = async (s: typeof a.store): Promise<number[]> => (await s.logHeads!(a.author)).map(h => h.body.length)
    expect(await lengths(a.store)).toEqual([4000, 4800])
    await waitFor('C kept the last head', async () => (await lengths(c.store)).at(-1) === rounds * per)
    expect(await lengths(c.store)).toEqual([4000, 4800])
    await waitFor('C checked the records', async () => (await c.store.unchecked!(10)).length === 0)
    const d = await node({ init: { syncOnConnect: false } })
    const conn2 = await d.net.libp2p.dial(multiaddr(c.addr))
    expect(await d.net.syncWith(conn2.remotePeer)).toMatchObject({ ok: true, version: 2, inserted: rounds * per })
    expect(d.net.stats()).toMatchObject({ syncRunsVerified: 2, syncRunRecords: rounds * per })
  }, 120_000)

  it('hostile 2.0.0 frames (oversized, absurd head lengths, a run cut short or longer than its head) get a code, are counted and charged; the node keeps syncing', async () => {
    const cases: Array<{ name: string, code: string, frames: (evil: RawPeer) => Promise<Uint8Array[]> }> = [
      { name: 'oversized frame', code: 'E_SYNC_OVERSIZE', frames: async () => [new Uint8Array(100 * 1024)] },
      {
        name: 'head of length 2^53 - 1',
        code: 'E_SYNC_PROOF',
        frames: async (evil) => {
          const recs = await signedLog({ key: evil.key, id: evil.author }, 1)
          return runFrames(await signLogHead(evil.key, evil.author, Number.MAX_SAFE_INTEGER, rootOf(recs)), 1, recs)
        }
      },
      {
        name: 'head of length 2^60',
        code: 'E_SYNC_PROOF',
        frames: async (evil) => {
          const recs = await signedLog({ key: evil.key, id: evil.author }, 1)
          return runFrames(await signLogHead(evil.key, evil.author, 2 ** 60, rootOf(recs)), 1, recs)
        }
      },
      {
        name: 'run cut short',
        code: 'E_SYNC_PROOF',
        frames: async (evil) => {
          const recs = await signedLog({ key: evil.key, id: evil.author }, 5)
          return runFrames(await signLogHead(evil.key, evil.author, 5, rootOf(recs)), 5, recs.slice(0, 3))
        }
      },
      {
        name: 'run longer than its head',
        code: 'E_SYNC_PROOF',
        frames: async (evil) => {
          const recs = await signedLog({ key: evil.key, id: evil.author }, 5)
          return runFrames(await signLogHead(evil.key, evil.author, 5, rootOf(recs)), 7, recs)
        }
      }
    ]
    const charged: string[] = []
    const b = await node({ init: { syncOnConnect: false, guard: { onViolation: (peer, code) => { charged.push(`${peer} ${code}`) } } } })
    for (const k of cases) {
      const evil = await serving(k.frames)
      await evil.dial(multiaddr(b.addr))
      await waitFor('connected', () => b.net.libp2p.getConnections(evil.peerId).length > 0)
      const res = await b.net.syncWith(evil.peerId)
      expect(res, k.name).toMatchObject({ ok: false, version: 2, code: k.code })
      expect(charged.at(-1), k.name).toBe(`${evil.author} ${k.code}`)
      expect((await b.store.counts()).records, k.name).toBe(0)
    }
    expect(b.rejections.get('E_SYNC_OVERSIZE')).toBe(1)
    expect(b.rejections.get('E_SYNC_PROOF')).toBe(4)
    // records past an announced run are loose: checked one by one, not an error
    const loose = await serving(async (evil) => {
      const recs = await signedLog({ key: evil.key, id: evil.author }, 3)
      const fr = runFrames(await signLogHead(evil.key, evil.author, 2, rootOf(recs.slice(0, 2))), 2, recs)
      return fr
    })
    await loose.dial(multiaddr(b.addr))
    await waitFor('connected', () => b.net.libp2p.getConnections(loose.peerId).length > 0)
    expect(await b.net.syncWith(loose.peerId)).toMatchObject({ ok: true, version: 2, inserted: 3 })
    const honest = await node()
    const own = await signedLog({ key: honest.key, id: honest.author }, 20)
    await honest.store.putMany(own, { own: true })
    const conn = await b.net.libp2p.dial(multiaddr(honest.addr))
    expect(await b.net.syncWith(conn.remotePeer)).toMatchObject({ ok: true, version: 2, inserted: 20 })
  })
})
