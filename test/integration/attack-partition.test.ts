import { afterEach, describe, expect, it } from 'vitest'
import { cleanupTempDirs, connect, ownRecords, startNode, type TestNode } from '../helpers/net.js'
import { waitFor } from '../../src/util/wait.js'

/*
 * Issue #7 partitions: two halves of a swarm, cut apart, keep publishing; once healed,
 * anti-entropy sync (on connect) brings every store to the same record set.
 */
const nodes: TestNode[] = []
afterEach(async () => {
  await Promise.all(nodes.splice(0).map(async n => { await n.stop() }))
  cleanupTempDirs()
})

async function heads (n: TestNode): Promise<string> {
  return JSON.stringify([...(await n.store.heads())].sort())
}

describe('partition', () => {
  it('two halves publishing separately converge to the same record set after healing', async () => {
    // peer exchange off: it would re-dial across the cut by itself
    for (let i = 0; i < 4; i++) nodes.push(await startNode({ init: { limits: { targetPeers: 0 } } }))
    const [a, b, c, d] = nodes
    await connect(a, b); await connect(b, c); await connect(c, d)
    const early = await ownRecords(a, 5, 1, 11)
    for (const r of early) await a.net.publishRecord(r)
    await waitFor('the swarm is whole before the cut', async () => await d.store.has(early[4].id))

    // the cut: B and C hang up on each other; nothing re-dials
    await b.net.libp2p.hangUp(c.net.libp2p.peerId)
    await waitFor('cut', () => b.net.libp2p.getConnections(c.net.libp2p.peerId).length === 0 && c.net.libp2p.getConnections(b.net.libp2p.peerId).length === 0)

    // both halves publish
    const left = [...await ownRecords(a, 20, 6, 12), ...await ownRecords(b, 20, 1, 13)]
    const right = [...await ownRecords(c, 20, 1, 14), ...await ownRecords(d, 20, 1, 15)]
    for (const [n, rs] of [[a, left.slice(0, 20)], [b, left.slice(20)], [c, right.slice(0, 20)], [d, right.slice(20)]] as const) {
      for (const r of rs) await n.net.publishRecord(r)
    }
    await waitFor('left half has its records', async () => (await a.store.counts()).records === 45 && (await b.store.counts()).records === 45)
    await waitFor('right half has its records', async () => (await c.store.counts()).records === 45 && (await d.store.counts()).records === 45)
    expect(await a.store.has(right[0].id)).toBe(false)
    expect(await d.store.has(left[0].id)).toBe(false)

    // heal: one connection between the halves; sync on connect carries each half's records across
    await connect(b, c)
    await waitFor('every store holds the same record set', async () => {
      const h = await Promise.all(nodes.map(heads))
      return h.every(x => x === h[0]) && (await a.store.counts()).records === 85
    }, 30_000, 100)
    for (const n of nodes) {
      expect((await n.store.counts()).records).toBe(85)
      for (const r of [...left, ...right]) expect(await n.store.has(r.id)).toBe(true)
    }
  })
})
