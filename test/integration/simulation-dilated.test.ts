import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RECORDS_TOPIC } from '../../src/net/index.js'
import { createRecord, synthBodies, toWire } from '../../src/records/index.js'
import { startSwarm, type Swarm } from '../../src/testbed/simulation.js'
import { waitFor } from '../../src/util/wait.js'

// 12 real network nodes over @libp2p/memory with time dilation 4, link latency and the timed
// verification model (src/testbed/dilation.ts, src/testbed/simulation.ts)
const N = 12
const D = 4
const MIN_LATENCY = 20
let swarm: Swarm

beforeAll(async () => {
  swarm = await startSwarm({ peers: N, seed: 5, name: 'simdilated', dilation: D, latency: { minMs: MIN_LATENCY, maxMs: 200 }, verifyMs: 0.2, quietTimers: true })
  await waitFor('every mesh has 3 peers', () => swarm.meshSizes().every(m => m >= 3), 120_000, 100)
}, 180_000)

afterAll(async () => { await swarm?.stop() }, 60_000)

describe('time-dilated swarm', () => {
  it('runs every node with the heartbeat and timeouts slowed by D', () => {
    const ps = swarm.peers[0].net.libp2p.services.pubsub as unknown as { opts: { heartbeatInterval: number, seenTTL: number } }
    expect(ps.opts.heartbeatInterval).toBe(1000 * D)
    expect(ps.opts.seenTTL).toBe(120_000 * D)
    expect(swarm.peers[0].net.limits.bootstrapIntervalMs).toBe(10_000 * D)
  })

  it('delivers every record, each delivery no sooner than one link latency in simulated time', async () => {
    for (const i of [0, 5]) {
      const res = await swarm.propagate(swarm.peers[i], 30_000)
      expect(res.missing).toBe(0)
      expect(res.delays).toHaveLength(N - 1)
      // a delivery crosses at least one link of ≥ 20 simulated ms; in real ms that is ≥ 80, so a
      // missing division by D (or a latency not applied) fails one of these bounds
      expect(Math.min(...res.delays)).toBeGreaterThanOrEqual(MIN_LATENCY)
      expect(Math.max(...res.delays)).toBeLessThan(30_000)
      for (const p of swarm.peers) expect(await p.store.has(res.id)).toBe(true)
    }
  }, 240_000)

  it('the timed verifier still refuses a forged record everywhere', async () => {
    const [evil, victim] = swarm.peers
    const forged = await createRecord(evil.key, victim.author, 999, synthBodies(1, 43)[0])
    await evil.net.libp2p.services.pubsub.publish(RECORDS_TOPIC, toWire(forged))
    await waitFor('a neighbour refused it', () => swarm.peers.some(p => (p.rejections.toJSON().E_BAD_SIGNATURE ?? 0) > 0), 60_000)
    const after = await swarm.propagate(evil, 30_000)
    expect(after.missing).toBe(0)
    for (const p of swarm.peers) expect(await p.store.has(forged.id)).toBe(false)
  }, 240_000)
})
