import { describe, expect, it } from 'vitest'
import { newestRecords } from '../../../src/store/query.js'
import type { RecordQuery, RecordPage } from '../../../src/store/types.js'
import type { SignedRecord } from '../../../src/records/types.js'

/** A store of `n` records whose query pages newest first, recording what it was asked. */
function pagedStore (n: number): { query: (q: RecordQuery) => Promise<RecordPage>, asked: RecordQuery[] } {
  const ids = Array.from({ length: n }, (_, i) => `r${n - i}`)
  const asked: RecordQuery[] = []
  return {
    asked,
    async query (q) {
      asked.push(q)
      const from = q.cursor == null ? 0 : Number(q.cursor)
      const to = Math.min(ids.length, from + (q.limit ?? 100))
      return { records: ids.slice(from, to).map(id => ({ id }) as unknown as SignedRecord), ...(to < ids.length ? { cursor: String(to) } : {}) }
    }
  }
}

describe('newestRecords', () => {
  it('reads newest first, page by page, and stops at `max` without asking for more', async () => {
    const s = pagedStore(2500)
    const got: string[] = []
    for await (const r of newestRecords(s, { hardwareId: 'h', source: 'benchmark' }, 1200)) got.push(r.id)
    expect(got).toHaveLength(1200)
    expect(got[0]).toBe('r2500')
    expect(s.asked.map(q => [q.order, q.limit, q.hardwareId])).toEqual([['desc', 1000, 'h'], ['desc', 200, 'h']])
  })

  it('ends with the store when it holds fewer than `max`', async () => {
    const s = pagedStore(30)
    const got: string[] = []
    for await (const r of newestRecords(s, {}, 5000)) got.push(r.id)
    expect(got).toHaveLength(30)
    expect(s.asked).toHaveLength(1)
  })
})
