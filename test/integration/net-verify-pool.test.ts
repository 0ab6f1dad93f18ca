import { describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { createRecord, synthBodies, toWire, type SignedRecord } from '../../src/records/index.js'
import { FRAME_END, FRAME_RECORD, frame } from '../../src/net/sync.js'
import { RECORDS_TOPIC, SYNC_PROTOCOL } from '../../src/net/types.js'
import { testPeers, ownRecords } from '../helpers/net.js'
import { waitFor } from '../../src/util/wait.js'

/*
 * Issue #19: real peers whose records are verified on the worker pool (net.verifyWorkers 2; the
 * compiled worker in dist/, so `npm run build` first). A forged record is refused alone on the
 * gossip path; on the sync path it refuses the session and charges the server, and the next
 * sync with an honest peer completes.
 */
const { node, rawPeer } = testPeers({ verifyWorkers: 2 })

async function signedRun (key: Awaited<ReturnType<typeof generateKeyPair>>, author: string, n: number): Promise<SignedRecord[]> {
  const bodies = synthBodies(n, 11)
  return await Promise.all(bodies.map(async (b, i) => await createRecord(key, author, i + 1, b)))
}

function forge (wire: Uint8Array): Uint8Array {
  const w = Uint8Array.from(wire)
  w[5] ^= 1
  return w
}

describe('verification pool with real peers', () => {
  it('gossip: a forged record among valid ones is rejected alone; the valid ones are stored', async () => {
    const b = await node()
    const evil = await rawPeer()
    await evil.dial(multiaddr(b.addr))
    await waitFor('evil sees B subscribed', () => evil.services.pubsub.getSubscribers(RECORDS_TOPIC).some(p => p.equals(b.net.libp2p.peerId)))
    const recs = await signedRun(evil.key, evil.author, 10)
    const wires = recs.map(toWire)
    wires[4] = forge(wires[4])
    for (const w of wires) await evil.services.pubsub.publish(RECORDS_TOPIC, w)
    await waitFor('B validated all ten', () => b.net.stats().gossipReceived === 10)
    await waitFor('B stored nine', async () => (await b.store.counts()).records === 9)
    expect(b.rejections.toJSON()).toEqual({ E_BAD_SIGNATURE: 1 })
    expect(b.net.stats()).toMatchObject({ gossipRejected: 1, gossipAccepted: 9 })
    expect(await b.store.has(recs[4].id)).toBe(false)
  })

  it('sync: a page with one forged record is refused and the server charged; the next sync with an honest peer completes', async () => {
    const evil = await rawPeer()
    const recs = await signedRun(evil.key, evil.author, 8)
    await evil.handle(SYNC_PROTOCOL, async (stream) => {
      const lp = lpStream(stream, { maxDataLength: 4 << 20 })
      try {
        await lp.read()
        const wires = recs.map(toWire)
        wires[3] = forge(wires[3])
        await lp.writeV([...wires.map(w => frame(FRAME_RECORD, w)), frame(FRAME_END, Uint8Array.of(0))])
        await lp.read()
      } catch {}
    }, { force: true })
    const b = await node({ sync: { timeoutMs: 2000, pageSize: 8 }, init: { syncOnConnect: false } })
    await evil.dial(multiaddr(b.addr))
    await waitFor('connected', () => b.net.peerCount() === 1)
    const res = await b.net.syncWith(evil.peerId)
    expect(res.ok).toBe(false)
    expect(res.code).toBe('E_BAD_SIGNATURE')
    expect(b.rejections.get('E_BAD_SIGNATURE')).toBe(1)
    expect(b.net.stats()).toMatchObject({ syncSessionsFailed: 1, syncRejected: 1 })
    // nothing forged is stored (the valid records sent before it are kept, as in 1.0.0)
    expect(await b.store.has(recs[3].id)).toBe(false)
    expect((await b.store.counts()).records).toBe(3)

    const a = await node({ verifyWorkers: 0 })
    const honest = await ownRecords(a, 40)
    const conn = await b.net.libp2p.dial(multiaddr(a.addr))
    const ok = await b.net.syncWith(conn.remotePeer)
    expect(ok).toMatchObject({ ok: true, received: 40, inserted: 40 })
    for (const r of honest) expect(await b.store.has(r.id)).toBe(true)
  })
})
