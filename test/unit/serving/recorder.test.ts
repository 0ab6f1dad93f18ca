import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { UnsignedBody } from '../../../src/records/types.js'
import { createServedRecorder } from '../../../src/serving/recorder.js'

const body = (i: number): UnsignedBody => ({ source: 'serving', workload: { name: `w${i}` } }) as unknown as UnsignedBody
const names = (b: UnsignedBody[]): string[] => b.map(x => x.workload.name)
// fake clock and timers: the waits below are exact whatever the machine's load
const sleep = async (ms: number): Promise<void> => { await vi.advanceTimersByTimeAsync(ms) }

function setup (opts: { maxPending?: number, maxDelayMs?: number, fail?: boolean } = {}) {
  const writes: string[][] = []
  const state = { busy: true, written: 0, failed: 0 }
  const rec = createServedRecorder({
    ownRecords: async bodies => {
      if (opts.fail === true) throw new Error('disk full')
      writes.push(names(bodies))
      return []
    },
    activity: { idle: () => !state.busy },
    pollMs: 5,
    maxPending: opts.maxPending,
    maxDelayMs: opts.maxDelayMs ?? 60_000,
    onWritten: n => { state.written += n },
    onError: (_err, n) => { state.failed += n }
  })
  return { rec, writes, state }
}

describe('served-batch recorder', () => {
  beforeEach(() => { vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] }) })
  afterEach(() => { vi.useRealTimers() })

  it('holds records while a batch runs and writes them together, in order, once the engine is idle', async () => {
    const { rec, writes, state } = setup()
    rec.add(body(1)); rec.add(body(2))
    await sleep(40)
    expect(writes).toEqual([])
    expect(rec.pending()).toBe(2)
    state.busy = false
    await sleep(40)
    expect(writes).toEqual([['w1', 'w2']])
    expect(state.written).toBe(2)
    expect(rec.pending()).toBe(0)
  })

  it('still writes on a node that never idles: after maxDelayMs, or once maxPending wait', async () => {
    const late = setup({ maxDelayMs: 30 })
    late.rec.add(body(1))
    await sleep(10)
    expect(late.writes).toEqual([])
    await sleep(60)
    expect(late.writes).toEqual([['w1']])

    const full = setup({ maxPending: 3 })
    for (let i = 1; i <= 3; i++) full.rec.add(body(i))
    await sleep(30)
    expect(full.writes).toEqual([['w1', 'w2', 'w3']])
  })

  it('flush() writes at once; a failed write is counted, not thrown', async () => {
    const ok = setup()
    ok.rec.add(body(1))
    await ok.rec.flush()
    expect(ok.writes).toEqual([['w1']])
    const bad = setup({ fail: true })
    bad.rec.add(body(1)); bad.rec.add(body(2))
    await bad.rec.flush()
    expect(bad.state).toMatchObject({ written: 0, failed: 2 })
  })
})
