import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RECORDS_TOPIC } from '../../src/net/index.js'
import { createRecord, synthBodies, toWire } from '../../src/records/index.js'
import { startSwarm, type Swarm } from '../../src/testbed/simulation.js'
import { waitFor } from '../../src/util/wait.js'

// 20 real network nodes in this process over @libp2p/memory (src/testbed/simulation.ts)
const N = 20
let swarm: Swarm

beforeAll(async () => {
  swarm = await startSwarm({ peers: N, seed: 3, name: 'simtest' })
  await waitFor('every mesh has 3 peers', () => swarm.meshSizes().every(m => m >= 3), 60_000, 100)
}, 120_000)

afterAll(async () => { await swarm?.stop() }, 60_000)

describe('in-process swarm over the memory transport', () => {
  it('every peer stores every record, each through gossip', async () => {
    for (const i of [0, 7, 19]) {
      const res = await swarm.propagate(swarm.peers[i], 30_000)
      expect(res.missing).toBe(0)
      expect(res.delays).toHaveLength(N - 1)
      // every delivery traced to a hop count ≥ 1
      expect(res.hops.every(h => h >= 1)).toBe(true)
      for (const p of swarm.peers) expect(await p.store.has(res.id)).toBe(true)
    }
    // gossipsub announces a delivery after its validator (which stored the record) returns
    await waitFor('deliveries counted', () => swarm.traffic().firstDeliveries >= 3 * (N - 1), 10_000)
    const t = swarm.traffic()
    expect(t.recordMsgsIn).toBeGreaterThanOrEqual(t.firstDeliveries)
    expect(t.bytesIn).toBeGreaterThan(0)
  }, 120_000)

  it('a forged record is refused by the peers it reaches and stored nowhere', async () => {
    const [evil, victim] = swarm.peers
    // claims to be the victim's record, signed with another key
    const forged = await createRecord(evil.key, victim.author, 999, synthBodies(1, 42)[0])
    const neighbours = new Set(evil.net.libp2p.getPeers().map(p => p.toString()))
    await evil.net.libp2p.services.pubsub.publish(RECORDS_TOPIC, toWire(forged))
    await waitFor('a neighbour refused it', () => swarm.peers.some(p => (p.rejections.toJSON().E_BAD_SIGNATURE ?? 0) > 0), 30_000)
    // a valid record published after it on the same streams: once everyone has it, the forged one has been handled
    const after = await swarm.propagate(evil, 30_000)
    expect(after.missing).toBe(0)
    for (const p of swarm.peers) {
      expect(await p.store.has(forged.id)).toBe(false)
      const refused = p.rejections.toJSON().E_BAD_SIGNATURE ?? 0
      // never forwarded: only the forger's direct neighbours ever saw it
      if (!neighbours.has(p.author)) expect(refused).toBe(0)
      expect(refused).toBeLessThanOrEqual(1)
    }
    expect(swarm.peers.reduce((s, p) => s + (p.rejections.toJSON().E_BAD_SIGNATURE ?? 0), 0)).toBeGreaterThan(0)
  }, 120_000)

  it('a newly joined peer catches up on the records by sync', async () => {
    const count = (await swarm.peers[1].store.counts()).records
    const fresh = await swarm.addPeer()
    await waitFor('fresh peer caught up', async () => (await fresh.store.counts()).records >= count, 60_000, 50)
    expect((await fresh.store.counts()).records).toBe(count)
    expect(fresh.net.stats().syncAccepted).toBeGreaterThanOrEqual(count)
  }, 120_000)
})
