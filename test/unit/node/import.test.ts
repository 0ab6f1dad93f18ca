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
