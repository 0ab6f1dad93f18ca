import type { RecordQuery, RecordStore } from './types.js'
import type { SignedRecord } from '../records/types.js'

/**
 * The newest records of a query, at most `max`, newest first, read page by page: the sweep's
 * demand and near-tie steps (bench/service.ts) and the live evidence (meta/live-evidence.ts)
 * both read a machine's newest benchmark records this way.
 */
export async function * newestRecords (store: Pick<RecordStore, 'query'>, q: Omit<RecordQuery, 'order' | 'cursor' | 'limit'>, max: number): AsyncGenerator<SignedRecord> {
  let cursor: string | undefined
  let n = 0
  do {
    const page = await store.query({ ...q, order: 'desc', limit: Math.min(1000, max - n), cursor })
    for (const r of page.records) { n++; yield r }
    cursor = page.cursor
  } while (cursor != null && n < max)
}
