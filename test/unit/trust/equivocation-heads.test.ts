import { describe, it, expect, beforeEach, afterEach } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createRecord, leafHash, merkleRoot, signLogHead, synthBodies, toWire } from '../../../src/records/index.js'
import { createRecordStore } from '../../../src/store/record-store.js'
import type { RecordStore } from '../../../src/store/types.js'
import { equivocationCounts } from '../../../src/trust/service.js'

/* Trust reads sync 2.0.0's head evidence: two signed heads of one author over different logs. */
let dir: string
let store: RecordStore
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'swarmtune-trust-heads-'))
  store = createRecordStore({ path: join(dir, 'store'), maxRecords: 1000 })
  await store.start()
})
afterEach(async () => {
  await store.stop()
  rmSync(dir, { recursive: true, force: true })
})

describe('trust: equivocation from log-head evidence', () => {
  it('counts an author whose two signed heads disagree, not a lone evidence head, not an honest author', async () => {
    const liarKey = await generateKeyPair('Ed25519')
    const liar = peerIdFromPrivateKey(liarKey).toString()
    const honestKey = await generateKeyPair('Ed25519')
    const honest = peerIdFromPrivateKey(honestKey).toString()
    const body = synthBodies(1, 3)[0]
    const recs = await Promise.all([1, 2].map(async seq => await createRecord(honestKey, honest, seq, body)))
    const honestHead = await signLogHead(honestKey, honest, 2, merkleRoot(recs.map(r => leafHash(toWire(r)))))
    expect(await store.putLogHead!(honestHead)).toBe('inserted')
    expect((await equivocationCounts(store)).size).toBe(0)

    const a = await signLogHead(liarKey, liar, 4, leafHash(Uint8Array.of(1)))
    // one head kept as evidence alone (its pair not held): no proof
    await store.putLogHeadEvidence!(a)
    expect((await equivocationCounts(store)).get(liar)).toBeUndefined()
    // a second head of the same length with another root: the store keeps both, trust counts it
    expect(await store.putLogHead!(await signLogHead(liarKey, liar, 4, leafHash(Uint8Array.of(2))))).toBe('inserted')
    expect(await store.putLogHead!(a)).toBe('equivocation')
    const eq = await equivocationCounts(store)
    expect(eq.get(liar)).toBe(1)
    expect(eq.get(honest)).toBeUndefined()
  })
})
