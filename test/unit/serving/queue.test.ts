import { describe, it, expect } from 'vitest'
import { createBatchQueue } from '../../../src/serving/queue.js'

describe('batch queue', () => {
  it('runs batches one at a time, in order, and goes on after a failed one', async () => {
    const q = createBatchQueue(8)
    const log: string[] = []
    const batch = (name: string, fail = false) => async () => {
      log.push(`start ${name}`)
      await new Promise(resolve => setTimeout(resolve, 5))
      log.push(`end ${name}`)
      if (fail) throw new Error(name)
      return name
    }
    const runs = [q.run(batch('a')), q.run(batch('b', true)), q.run(batch('c'))]
    expect(q.depth()).toBe(3)
    const settled = await Promise.allSettled(runs)
    expect(settled.map(s => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
    expect(log).toEqual(['start a', 'end a', 'start b', 'end b', 'start c', 'end c'])
    expect(q.depth()).toBe(0)
  })
  it('refuses a batch beyond maxQueue with E_OVERLOADED (the node is full, not the peer at fault)', async () => {
    const q = createBatchQueue(1)
    let release = (): void => {}
    const first = q.run(async () => await new Promise<void>(resolve => { release = resolve }))
    await expect(q.run(async () => 1)).rejects.toMatchObject({ code: 'E_OVERLOADED' })
    release()
    await first
    await q.idle()
    await expect(q.run(async () => 2)).resolves.toBe(2)
  })
})
