import { describe, expect, it } from 'vitest'
import { multiaddr } from '@multiformats/multiaddr'
import { createRecord, synthBodies, toWire } from '../../src/records/index.js'
import { SCORE_THRESHOLDS } from '../../src/net/libp2p.js'
import { RECORDS_TOPIC } from '../../src/net/types.js'
import { createPeerGuard } from '../../src/net/guard.js'
import { testPeers } from '../helpers/net.js'
import { waitFor } from '../../src/util/wait.js'

/*
 * Issue #7 flood control at small scale: a peer publishing valid records far faster than the
 * per-peer rate has its excess dropped unvalidated, its application score driven below the
 * graylist threshold, and is then ignored, pruned and hung up on; an honest peer's records keep
 * flowing.
 */
const { node, rawPeer } = testPeers()

describe('flood', () => {
  it('a flooder of valid records is rate-limited, graylisted and pruned; honest gossip still arrives', async () => {
    const guard = createPeerGuard({ gossipPerPeerPerSecond: 20, gossipBurst: 50 })
    const b = await node({ init: { guard } })
    const honest = await node({ bootstrap: [b.addr] })

    const evil = await rawPeer()
    const { key, author } = evil
    await evil.dial(multiaddr(b.addr))
    await waitFor('evil sees B subscribed', () => evil.services.pubsub.getSubscribers(RECORDS_TOPIC).length > 0)

    const bodies = synthBodies(600, 5)
    const wires: Uint8Array[] = []
    for (let i = 0; i < bodies.length; i++) wires.push(toWire(await createRecord(key, author, i + 1, bodies[i])))
    await Promise.all(wires.map(async w => { await evil.services.pubsub.publish(RECORDS_TOPIC, w).catch(() => {}) }))

    const ps = b.net.libp2p.services.pubsub as unknown as { getScore: (p: string) => number, acceptFrom: (p: string) => boolean, getMeshPeers: (t: string) => string[] }
    const evilId = evil.peerId.toString()
    await waitFor('excess messages dropped', () => (guard.peer(evilId)?.rateLimited ?? 0) > 0)
    await waitFor('flooder score below the graylist threshold', () => ps.getScore(evilId) < SCORE_THRESHOLDS.graylistThreshold)
    // below the graylist threshold gossipsub stops accepting its RPCs and prunes it from the mesh
    // (acceptFrom keeps a short whitelist for peers that recently scored well, so wait it out)
    await waitFor('flooder RPCs no longer accepted', () => !ps.acceptFrom(evilId))
    await waitFor('flooder pruned from the mesh', () => !ps.getMeshPeers(RECORDS_TOPIC).includes(evilId))
    expect(ps.getMeshPeers(RECORDS_TOPIC)).not.toContain(evilId)
    expect((await b.store.counts()).records).toBeLessThan(600)

    // and banned: hung up on (its ignored RPCs would still cost decryption and decoding), and a
    // redial is refused while the ban lasts
    expect(guard.peer(evilId)?.banned).toBe(true)
    await waitFor('flooder hung up on', () => b.net.libp2p.getConnections(evil.peerId).length === 0)
    expect(b.net.stats().guardHangUps).toBeGreaterThanOrEqual(1)
    await evil.dial(multiaddr(b.addr)).catch(() => {})
    await waitFor('redial refused', () => b.net.libp2p.getConnections(evil.peerId).length === 0)

    // the honest peer is untouched: its record reaches B
    const r = await createRecord(honest.key, honest.author, 1, synthBodies(1, 99)[0])
    await honest.store.put(r, { own: true })
    await honest.net.publishRecord(r)
    await waitFor('honest record on B', async () => await b.store.has(r.id))
    expect(guard.peer(honest.author)).toBeUndefined()
  })
})
