import { afterEach, describe, expect, it } from 'vitest'
import { cleanupTempDirs, ownRecords, startNode, waitForMesh, type TestNode } from '../helpers/net.js'
import { waitFor } from '../../src/util/wait.js'

const nodes: TestNode[] = []
afterEach(async () => {
  await Promise.all(nodes.splice(0).map(async n => { await n.stop() }))
  cleanupTempDirs()
})

async function node (opts: Parameters<typeof startNode>[0] = {}): Promise<TestNode> {
  const n = await startNode(opts)
  nodes.push(n)
  return n
}

describe('records gossip and sync between real libp2p nodes on 127.0.0.1', () => {
  it('a record published on A is stored on B and C (line A-B-C) through gossip', async () => {
    // no peer exchange: C must really get the record through B
    const line = { init: { limits: { targetPeers: 0 } } }
    const a = await node(line)
    const b = await node({ bootstrap: [a.addr], ...line })
    const c = await node({ bootstrap: [b.addr], ...line })
    await waitForMesh([a, c], 1)
    await waitForMesh([b], 2)
    const [rec] = await ownRecords(a, 1)
    await a.net.publishRecord(rec)
    await waitFor('record on C', async () => await c.store.has(rec.id))
    expect(await b.store.has(rec.id)).toBe(true)
    expect(b.received.map(r => r.id)).toEqual([rec.id])
    expect(c.net.stats().gossipAccepted).toBe(1)
    expect(b.rejections.toJSON()).toEqual({})
    expect(a.net.peerCount()).toBe(1)
    expect(c.net.peerCount()).toBe(1)
  })

  it('records stored while a peer was offline arrive by sync once it connects, both directions', async () => {
    const a = await node()
    const mine = await ownRecords(a, 150)
    const b = await node()
    const theirs = await ownRecords(b, 5)
    // B dials A: identify runs on both sides, each syncs from the other
    await b.net.libp2p.dial((await import('@multiformats/multiaddr')).multiaddr(a.addr))
    await waitFor('both stores complete', async () => (await b.store.counts()).records === 155 && (await a.store.counts()).records === 155)
    for (const r of mine) expect(await b.store.has(r.id)).toBe(true)
    for (const r of theirs) expect(await a.store.has(r.id)).toBe(true)
    // 150 records with pageSize 64 take several pages
    expect(b.net.stats().syncAccepted).toBe(150)
    expect(a.net.stats().syncRecordsOut).toBe(150)
    expect(b.received).toHaveLength(150)
    // a second round sends nothing new
    const again = await b.net.syncWith(a.net.libp2p.peerId)
    expect(again).toMatchObject({ ok: true, inserted: 0 })
  })

  it('fills gaps: a node that missed records in the middle catches up through syncNow()', async () => {
    const a = await node()
    const recs = await ownRecords(a, 10)
    const b = await node()
    for (const r of recs) if (r.body.seq <= 3 || r.body.seq >= 8) await b.store.put(r)
    await b.net.libp2p.dial((await import('@multiformats/multiaddr')).multiaddr(a.addr))
    await b.net.syncNow()
    await waitFor('contiguous head 10 on B', async () => (await b.store.heads()).get(a.author) === 10)
  })

  it('refuses connections from deny-listed peers', async () => {
    const a = await node()
    const b = await node({ denyPeers: [a.author] })
    const { multiaddr } = await import('@multiformats/multiaddr')
    let connects = 0
    b.net.libp2p.addEventListener('peer:connect', () => { connects++ })
    // the dialer may see the connection open briefly before the gater on B drops it
    await a.net.libp2p.dial(multiaddr(b.addr)).catch(() => {})
    await waitFor('A disconnected from B', () => a.net.libp2p.getConnections(b.net.libp2p.peerId).length === 0)
    expect(connects).toBe(0)
    expect(b.net.peerCount()).toBe(0)
  })
})

describe('peer exchange', () => {
  it('peers that only know the bootstrap peer find each other, and gossip reaches all of them', async () => {
    const boot = await node()
    const rest: TestNode[] = []
    for (let i = 0; i < 5; i++) rest.push(await node({ bootstrap: [boot.addr], init: { limits: { targetPeers: 3 } } }))
    // every newcomer ends up with at least one peer besides the bootstrap peer
    await waitFor('newcomers connected to each other', () => rest.every(n => n.net.peerCount() >= 2))
    await waitForMesh(rest, 1)
    const [rec] = await ownRecords(rest[4], 1)
    await rest[4].net.publishRecord(rec)
    await waitFor('record everywhere', async () => (await Promise.all([boot, ...rest].map(async n => await n.store.has(rec.id)))).every(Boolean))
    expect(rest.some(n => n.net.stats().peersDiscovered > 0)).toBe(true)
  })
})
