import { describe, it, expect } from 'vitest'
import { importStream, MAX_REPORTED_ERRORS } from '../../../src/node/import.js'
import { synthBodies } from '../../../src/records/synthetic.js'
import type { SignedRecord, UnsignedBody } from '../../../src/records/types.js'

/** An in-memory own-record path with the store's tags: enough to check the import's bookkeeping. */
function fakeNode (): { deps: Parameters<typeof importStream>[1], stored: Map<string, UnsignedBody>, tags: Map<string, string> } {
  const stored = new Map<string, UnsignedBody>()
  const tags = new Map<string, string>()
  let n = 0
  return {
    stored,
    tags,
    deps: {
      author: '12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo',
      ownRecords: async (bodies, opts) => bodies.map((body, i) => {
        const id = `r${++n}`
        stored.set(id, body)
        const t = opts?.tags?.[i]
        if (t != null) tags.set(t, id)
        return { id } as unknown as SignedRecord
      }),
      tagged: async keys => keys.map(k => tags.get(k))
    }
  }
}
async function * chunks (text: string, size: number): AsyncGenerator<Buffer> {
  const buf = Buffer.from(text)
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size)
}

describe('streamed import (issue #18)', () => {
  it('keeps line numbers across chunk boundaries (multi-byte characters split too)', async () => {
    const bodies = synthBodies(5, 3)
    const text = ['# comment', JSON.stringify(bodies[0]), 'not json é', JSON.stringify(bodies[1]), '', '{"broken": ', JSON.stringify(bodies[2])].join('\n')
    const { deps } = fakeNode()
    const r = await importStream(chunks(text, 7), deps)
    expect(r).toMatchObject({ imported: 3, duplicates: 0, errorCount: 2, errorsByCode: { E_MALFORMED: 2 } })
    expect(r.errors.map(e => e.line)).toEqual([3, 6])
  })

  it('lists the first 100 errors and counts the rest by code', async () => {
    const { deps } = fakeNode()
    const r = await importStream(chunks('1\n'.repeat(5000) + '{"v": 1}\n', 4096), deps)
    expect(r.errors).toHaveLength(MAX_REPORTED_ERRORS)
    expect(r.errorCount).toBe(5001)
    expect(r.errors[0]).toMatchObject({ line: 1, code: 'E_MALFORMED' })
    expect(r.errorsByCode.E_MALFORMED).toBeGreaterThanOrEqual(5000)
    expect(Object.values(r.errorsByCode).reduce((a, b) => a + b, 0)).toBe(5001)
  })

  it('skips lines already imported (a retry) and repeated lines, and accepts a JSON array', async () => {
    const bodies = synthBodies(1200, 9)
    const { deps, stored } = fakeNode()
    const first = await importStream(chunks(bodies.slice(0, 700).map(b => JSON.stringify(b)).join('\n'), 65536), deps)
    expect(first).toMatchObject({ imported: 700, duplicates: 0 })
    const again = await importStream(chunks(JSON.stringify([...bodies, bodies[0]]), 65536), deps)
    expect(again).toMatchObject({ imported: 500, duplicates: 701, errorCount: 0 })
    expect(stored.size).toBe(1200)
  })

  it('keeps the report of what was stored when a later batch fails', async () => {
    const { deps } = fakeNode()
    let calls = 0
    const failing = { ...deps, ownRecords: async (b: UnsignedBody[], o?: { tags?: Array<string | undefined> }) => { if (++calls === 2) throw Object.assign(new Error('disk full'), { code: 'E_STORE_FULL' }); return await deps.ownRecords(b, o) } }
    const err = await importStream(chunks(synthBodies(1200, 4).map(b => JSON.stringify(b)).join('\n'), 65536), failing).catch(e => e)
    expect(err.code).toBe('E_STORE_FULL')
    expect(err.report.imported).toBe(500)
  })
})

describe('signed lines (issue #20: backup and transfer)', () => {
  it('stores a verified record as it is, refuses a tampered one and a wrong id by line, counts repeats as duplicates', async () => {
    const { generateKeyPair } = await import('@libp2p/crypto/keys')
    const { peerIdFromPrivateKey } = await import('@libp2p/peer-id')
    const { createRecord } = await import('../../../src/records/sign.js')
    const { wireOf } = await import('../../../src/node/import.js')
    const key = await generateKeyPair('Ed25519')
    const author = peerIdFromPrivateKey(key).toString()
    const [b1, b2] = synthBodies(2, 7)
    const r1 = await createRecord(key, author, 4, b1)
    const r2 = await createRecord(key, author, 5, b2)
    const tampered = Buffer.from(wireOf(r2), 'base64')
    tampered[10] ^= 1
    const node = fakeNode()
    const kept: SignedRecord[] = []
    node.deps.signed = async records => records.map(r => {
      if (kept.some(k => k.id === r.id)) return 'duplicate'
      kept.push(r)
      return 'inserted'
    })
    const payload = [
      { id: r1.id, author, seq: 4, wire: wireOf(r1) },
      { id: r1.id, wire: wireOf(r1) },
      { wire: tampered.toString('base64') },
      { id: r1.id, wire: wireOf(r2) },
      { wire: 'not base64 at all!' }
    ].map(l => JSON.stringify(l)).join('\n')
    const report = await importStream(chunks(payload, 100), node.deps)
    expect(report).toMatchObject({ imported: 1, signed: 1, duplicates: 1, errorCount: 3 })
    expect(report.errors.map(e => [e.line, e.code])).toEqual([[3, 'E_BAD_SIGNATURE'], [4, 'E_ID_MISMATCH'], [5, 'E_MALFORMED']])
    // kept as signed: same author, seq, bytes and signature; nothing went through the own-record path
    expect(kept[0].body).toMatchObject({ author, seq: 4 })
    expect(Buffer.from(kept[0].signature).equals(Buffer.from(r1.signature))).toBe(true)
    expect(node.stored.size).toBe(0)
  })

  it('refuses signed lines where no signed sink is given, and says how to export with signatures', async () => {
    const node = fakeNode()
    const payload = [JSON.stringify({ wire: 'AAAA' }), JSON.stringify({ id: 'x', author: 'a', seq: 1, body: {} })].join('\n')
    const report = await importStream(chunks(payload, 64), node.deps)
    expect(report.errors.map(e => e.code)).toEqual(['E_SIGNED_UNSUPPORTED', 'E_UNSIGNED_EXPORT'])
  })
})
