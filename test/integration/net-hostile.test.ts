import { describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import type { Stream } from '@libp2p/interface'
import { createRecord, encodeEnvelope, synthBodies, toWire, type SignedRecord } from '../../src/records/index.js'
import { SCORE_THRESHOLDS } from '../../src/net/libp2p.js'
import { FRAME_END, FRAME_HEADS, FRAME_MORE, FRAME_RECORD, encodeHeads, frame } from '../../src/net/sync.js'
import { RECORDS_TOPIC, SYNC_PROTOCOL } from '../../src/net/types.js'
import { testPeers, ownRecords, waitForMesh, type RawPeer } from '../helpers/net.js'
import { waitFor } from '../../src/util/wait.js'

/*
 * A hostile peer is a raw libp2p node built from the same stack but without our validator or
 * sync service: it publishes whatever bytes it likes on the records topic and speaks the sync
 * protocol however it likes.
 */
const { node, rawPeer } = testPeers()

async function signed (key: Awaited<ReturnType<typeof generateKeyPair>>, author: string, seq: number, seed = 3, timestamp?: number): Promise<SignedRecord> {
  const body = synthBodies(1, seed + seq)[0]
  return await createRecord(key, author, seq, timestamp == null ? body : { ...body, timestamp })
}

describe('hostile gossip', () => {
  it('forged, tampered, oversize, garbage and future records are counted by code, never stored, never forwarded', async () => {
    const b = await node()
    const c = await node({ bootstrap: [b.addr] })
    await waitForMesh([b, c], 1)
    const evil = await rawPeer()
    await evil.dial(multiaddr(b.addr))
    await waitFor('evil sees B subscribed', () => evil.services.pubsub.getSubscribers(RECORDS_TOPIC).some(p => p.equals(b.net.libp2p.peerId)))

    const other = await generateKeyPair('Ed25519')
    const good = await signed(evil.key, evil.author, 1)
    const forgedSig = await other.sign(new Uint8Array(good.bytes.length + 20))
    const forged = encodeEnvelope(good.bytes, forgedSig)
    const tampered = Uint8Array.from(toWire(good))
    // change "seq":1 into "seq":7: still canonical, schema-valid JSON, but no longer what was signed
    const at = 65 + Buffer.from(good.bytes).indexOf('"seq":1,') + 6
    expect(tampered[at]).toBe(0x31)
    tampered[at] = 0x37
    const oversize = encodeEnvelope(new Uint8Array(70 * 1024).fill(0x20), new Uint8Array(64))
    const garbage = Uint8Array.from({ length: 300 }, (_, i) => (i === 0 ? 1 : (i * 7919) & 0xff))
    const badVersion = Uint8Array.from(toWire(good)); badVersion[0] = 9
    const future = toWire(await signed(evil.key, evil.author, 2, 3, Date.now() + 3600_000))

    for (const data of [forged, tampered, oversize, garbage, badVersion, future]) {
      await evil.services.pubsub.publish(RECORDS_TOPIC, data)
    }
    // received is counted on arrival, the verdict after the (pooled, async) signature check: wait for all six verdicts
    await waitFor('B validated the six messages', () => { const s = b.net.stats(); return s.gossipReceived === 6 && (s.gossipRejected ?? 0) + (s.gossipIgnored ?? 0) === 6 })
    expect(b.rejections.toJSON()).toEqual({
      E_BAD_SIGNATURE: 2, E_OVERSIZE: 1, E_MALFORMED: 1, E_UNKNOWN_VERSION: 1, E_FUTURE_TIMESTAMP: 1
    })
    expect(b.net.stats()).toMatchObject({ gossipRejected: 5, gossipIgnored: 1 })
    expect((await b.store.counts()).records).toBe(0)

    // B still works, and the path to C is open: a valid record from the same peer goes through.
    // Gossip on one B→C stream is ordered, so had B forwarded any bad message C would have seen it first.
    await evil.services.pubsub.publish(RECORDS_TOPIC, toWire(good))
    await waitFor('valid record reaches C', async () => await c.store.has(good.id))
    expect(c.net.stats().gossipReceived).toBe(1)
    expect(c.rejections.toJSON()).toEqual({})
    expect((await c.store.counts()).records).toBe(1)
  })

  it('a peer that keeps sending invalid records is graylisted: its later messages are not even validated', async () => {
    const b = await node()
    const evil = await rawPeer()
    await evil.dial(multiaddr(b.addr))
    await waitFor('evil sees B subscribed', () => evil.services.pubsub.getSubscribers(RECORDS_TOPIC).length > 0)
    for (let i = 0; i < 40; i++) {
      await evil.services.pubsub.publish(RECORDS_TOPIC, Uint8Array.from([1, i, 2, 3, 4, 5, 6, 7, 8, 9]))
    }
    const ps = b.net.libp2p.services.pubsub as unknown as { getScore: (p: string) => number, acceptFrom: (p: string) => boolean }
    await waitFor('evil score below the graylist threshold', () => ps.getScore(evil.peerId.toString()) < SCORE_THRESHOLDS.graylistThreshold)
    // graylisted: gossipsub drops its RPCs before they reach the validator (once a short
    // accept-whitelist granted while its score was still good has run out)
    await waitFor('evil graylisted', () => !ps.acceptFrom(evil.peerId.toString()))
    expect(b.rejections.get('E_MALFORMED')).toBe(b.net.stats().gossipReceived)
    expect((await b.store.counts()).records).toBe(0)
  })
})

describe('per-peer rate limits (issue #7 hooks)', () => {
  it('gossip over the per-peer budget is ignored unvalidated; sync sessions over the budget are refused', async () => {
    const b = await node({ init: { syncOnConnect: false, limits: { gossipPerPeerPerSecond: 0, syncSessionsPerPeerPerMinute: 1 } } })
    await ownRecords(b, 2)
    const evil = await rawPeer()
    await evil.dial(multiaddr(b.addr))
    await waitFor('evil sees B subscribed', () => evil.services.pubsub.getSubscribers(RECORDS_TOPIC).length > 0)
    const recs = await Promise.all([1, 2, 3].map(async seq => await signed(evil.key, evil.author, seq)))
    for (const r of recs) await evil.services.pubsub.publish(RECORDS_TOPIC, toWire(r))
    await waitFor('three messages rate-limited', () => b.net.stats().gossipRateLimited === 3)
    expect(b.net.stats().gossipReceived ?? 0).toBe(0)
    expect((await b.store.counts()).records).toBe(2)

    const open = async (): Promise<string> => {
      try {
        const s = await evil.dialProtocol(multiaddr(b.addr), SYNC_PROTOCOL)
        const lp = lpStream(s)
        await lp.write(encodeHeads({ pageSize: 10, maxPageBytes: 1 << 20, heads: new Map() }, 10))
        await lp.read()
        return 'served'
      } catch {
        return 'refused'
      }
    }
    expect(await open()).toBe('served')
    expect(await open()).toBe('refused')
    expect(b.rejections.get('E_SYNC_RATE_LIMITED')).toBe(1)
  })
})

/** A fake sync server: answers every sync stream with `script`. */
async function evilServer (script: (stream: Stream, lp: ReturnType<typeof lpStream>) => Promise<void>): Promise<Awaited<ReturnType<typeof rawPeer>>> {
  const evil = await rawPeer()
  await evil.handle(SYNC_PROTOCOL, async (stream) => {
    const lp = lpStream(stream, { maxDataLength: 4 << 20 })
    try { await script(stream, lp) } catch {}
  }, { force: true })
  return evil
}

describe('hostile sync', () => {
  async function clientOf (evil: RawPeer, sync: Parameters<typeof node>[0] = {}) {
    const b = await node({ sync: { timeoutMs: 1000, pageSize: 8, ...sync?.sync }, init: { syncOnConnect: false } })
    await evil.dial(multiaddr(b.addr))
    await waitFor('connected', () => b.net.peerCount() === 1)
    const res = await b.net.syncWith(evil.peerId)
    return { b, res }
  }

  it('garbage frames, invalid records, unsolicited records, floods, oversize frames and stalls are cut off and counted', async () => {
    const cases: Array<{ name: string, code: string, script: (s: Stream, lp: ReturnType<typeof lpStream>, evil: Awaited<ReturnType<typeof rawPeer>>) => Promise<void> }> = [
      { name: 'garbage', code: 'E_SYNC_PROTOCOL', script: async (_s, lp) => { await lp.read(); await lp.write(Uint8Array.of(99, 1, 2, 3)) } },
      {
        name: 'bad signature',
        code: 'E_BAD_SIGNATURE',
        script: async (_s, lp, evil) => {
          await lp.read()
          const w = toWire(await signed(evil.key, evil.author, 1)); w[5] ^= 1
          await lp.write(frame(FRAME_RECORD, w))
        }
      },
      {
        name: 'unsolicited',
        code: 'E_SYNC_UNSOLICITED',
        script: async (_s, lp, evil) => {
          await lp.read()
          // the client declared head 2 for this author (see below): seq 1 was not asked for
          await lp.write(frame(FRAME_RECORD, toWire(await signed(evil.key, evil.author, 1))))
        }
      },
      {
        name: 'flood',
        code: 'E_SYNC_FLOOD',
        script: async (_s, lp, evil) => {
          await lp.read()
          for (let i = 3; i < 3 + 9; i++) await lp.write(frame(FRAME_RECORD, toWire(await signed(evil.key, evil.author, i))))
        }
      },
      { name: 'oversize', code: 'E_SYNC_OVERSIZE', script: async (_s, lp) => { await lp.read(); await lp.write(new Uint8Array(100 * 1024)) } },
      { name: 'stall', code: 'E_SYNC_TIMEOUT', script: async (_s, lp) => { await lp.read(); await new Promise(resolve => setTimeout(resolve, 5000)) } }
    ]
    for (const k of cases) {
      let evilRef: Awaited<ReturnType<typeof rawPeer>> | undefined
      const evil = evilRef = await evilServer(async (s, lp) => { await k.script(s, lp, evilRef!) })
      const b = await node({ sync: { timeoutMs: 1000, pageSize: 8 }, init: { syncOnConnect: false } })
      // B already holds seqs 1..2 of the evil author, so its declared head is 2
      for (const seq of [1, 2]) await b.store.put(await signed(evil.key, evil.author, seq))
      await evil.dial(multiaddr(b.addr))
      await waitFor('connected', () => b.net.peerCount() === 1)
      const res = await b.net.syncWith(evil.peerId)
      expect(res.ok, k.name).toBe(false)
      expect(res.code, k.name).toBe(k.code)
      expect(b.rejections.get(k.code), k.name).toBe(1)
      expect(b.net.stats().syncSessionsFailed, k.name).toBeGreaterThanOrEqual(1)
      // only the flood case delivered valid records before being cut off; none past the page limit
      expect((await b.store.counts()).records, k.name).toBe(k.name === 'flood' ? 2 + 8 : 2)
    }
  })

  it('a sync client that sends garbage, stalls or opens too many streams is cut off; the server keeps serving', async () => {
    const b = await node({ sync: { timeoutMs: 1000 } })
    await ownRecords(b, 3)
    const evil = await rawPeer()
    const conn = await evil.dial(multiaddr(b.addr))

    const garbage = await conn.newStream(SYNC_PROTOCOL)
    const g = lpStream(garbage)
    await g.write(Uint8Array.of(FRAME_HEADS, 0x7b, 0x7b))
    await expect(g.read()).rejects.toThrow()

    // four silent sessions at once: two take the per-peer slots (and time out), two are refused
    const silent = await Promise.all([1, 2, 3, 4].map(async () => await conn.newStream(SYNC_PROTOCOL)))
    const outcomes = await Promise.all(silent.map(async s => await lpStream(s).read().then(() => 'data', () => 'cut')))
    expect(outcomes).toEqual(['cut', 'cut', 'cut', 'cut'])
    await waitFor('silent sessions timed out', () => b.rejections.get('E_SYNC_TIMEOUT') === 2)
    expect(b.rejections.get('E_SYNC_BUSY')).toBe(2)
    expect(b.rejections.get('E_SYNC_PROTOCOL')).toBe(1)

    // an honest client still gets everything
    const c = await node({ bootstrap: [b.addr] })
    await waitFor('honest client synced', async () => (await c.store.counts()).records === 3)
  })

  it('a session is capped at maxRecordsPerSession records', async () => {
    const evil = await evilServer(async (_s, lp) => {
      await lp.read()
      for (;;) {
        const frames: Uint8Array[] = []
        for (let i = 0; i < 4; i++) frames.push(frame(FRAME_RECORD, toWire(await signed(evilRef.key, evilRef.author, ++seq))))
        frames.push(frame(FRAME_END, Uint8Array.of(1)))
        await lp.writeV(frames)
        const more = (await lp.read()).subarray()
        if (more[0] !== FRAME_MORE) return
      }
    })
    let seq = 0
    const evilRef = evil
    const { b, res } = await clientOf(evil, { sync: { maxRecordsPerSession: 10, pageSize: 4 } })
    expect(res).toMatchObject({ ok: false, code: 'E_SYNC_LIMIT', inserted: 10 })
    expect(b.rejections.get('E_SYNC_LIMIT')).toBe(1)
  })
})
