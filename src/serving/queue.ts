import { ServingError } from './types.js'

/**
 * Batches run one at a time, at most `maxQueue` waiting: on the small CPU machines this targets,
 * two batches in parallel only slow each other down (DESIGN.md §3: thread barrier).
 */
export interface BatchQueue {
  /** run fn after every batch queued before it; refuses with E_OVERLOADED when the queue is full */
  run: <T>(fn: () => Promise<T>) => Promise<T>
  /** batches waiting or running */
  depth: () => number
  /** resolves once every queued batch has settled */
  idle: () => Promise<void>
}

export function createBatchQueue (maxQueue: number): BatchQueue {
  let chain: Promise<unknown> = Promise.resolve()
  let waiting = 0

  async function run<T> (fn: () => Promise<T>): Promise<T> {
    // not E_BUSY: that code blames the requesting peer; a full queue is this node's state
    if (waiting >= maxQueue) throw new ServingError('E_OVERLOADED', `${waiting} batches already queued: try later`)
    waiting++
    const next = chain.then(fn, fn)
    chain = next.catch(() => {})
    try {
      return await next
    } finally {
      waiting--
    }
  }

  async function idle (): Promise<void> {
    try { await chain } catch {}
  }

  return { run, depth: () => waiting, idle }
}
