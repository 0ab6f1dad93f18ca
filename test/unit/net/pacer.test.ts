import { describe, expect, it } from 'vitest'
import { createPacer } from '../../../src/net/pacer.js'
import { createLoopMonitor } from '../../../src/node/loop-monitor.js'

const busy = (ms: number): void => { const t = performance.now(); while (performance.now() - t < ms) { /* spin */ } }

describe('pacer (issue #7: verification bursts must not hold the event loop)', () => {
  it('runs jobs in order, passes results and errors through', async () => {
    const p = createPacer({ sliceMs: 1000 })
    const order: number[] = []
    const results = await Promise.all([1, 2, 3].map(async i => await p.run(() => { order.push(i); return i * 10 })))
    expect(results).toEqual([10, 20, 30])
    expect(order).toEqual([1, 2, 3])
    await expect(p.run(() => { throw new Error('bad record') })).rejects.toThrow('bad record')
    expect(await p.run(async () => await Promise.resolve('async ok'))).toBe('async ok')
    expect(p.queued).toBe(0)
  })

  it('hands the loop back between slices: a timer due during a long burst fires before the burst ends', async () => {
    const p = createPacer({ sliceMs: 2 })
    let done = 0
    let doneWhenTimerFired = -1
    setTimeout(() => { doneWhenTimerFired = done }, 0)
    await Promise.all(Array.from({ length: 50 }, async () => { await p.run(() => { busy(1); done++ }) }))
    expect(done).toBe(50)
    expect(p.yields).toBeGreaterThan(5)
    // without yielding, all 50 jobs would run in one macrotask and the timer would see 50
    expect(doneWhenTimerFired).toBeGreaterThanOrEqual(0)
    expect(doneWhenTimerFired).toBeLessThan(50)
  })
})

describe('event-loop monitor', () => {
  it('sees a blocked loop, and windows by time', async () => {
    const m = createLoopMonitor({ resolutionMs: 5 })
    m.start()
    const t0 = Date.now()
    await new Promise(resolve => setTimeout(resolve, 30))
    busy(150)
    await new Promise(resolve => setTimeout(resolve, 30))
    const d = m.delay(t0)
    m.stop()
    expect(d.samples).toBeGreaterThan(2)
    expect(d.maxMs).toBeGreaterThanOrEqual(100)
    expect(d.p50Ms).toBeLessThan(d.maxMs)
    expect(d.fromMs).toBeGreaterThanOrEqual(t0 - 1000)
    expect(d.cpuPct).toBeGreaterThan(0)
  })
})
