import { beforeAll, describe, expect, it } from 'vitest'
import { buildDataset, type HistoryBody } from '../../../src/meta/dataset.js'
import { createLiveEvidence, dropThinCells, liveViewOf, type LiveView } from '../../../src/meta/live-evidence.js'
import { selectMethod, train, type MetaModel } from '../../../src/meta/selector.js'
import { synthHistory } from '../../../src/meta/synthetic.js'

const OPTS = { nTrees: 6, seed: 3, now: 1_700_000_000_000 }

// one machine, five workloads: the safe default's fixed rule decides (selector.test.ts)
const history: HistoryBody[] = synthHistory({ machines: 1, models: 1, workloads: 5, repeats: 1, failRate: 0, seed: 7 }).map(b => ({ ...b, source: 'benchmark' }))
const hw = history[0].hardware.id
const w0 = history[0].workload.name

/** the history with one method's throughput on one workload multiplied by `f` */
function scaled (bodies: readonly HistoryBody[], workload: string, method: string, f: number): HistoryBody[] {
  return bodies.map(b => b.workload.name === workload && b.method.id === method ? { ...b, result: { ...b.result, totalTokensPerSecond: b.result.totalTokensPerSecond * f } } : b)
}

function bestOn (bodies: readonly HistoryBody[], workload: string): string {
  const t = buildDataset(bodies).tasks.find(x => x.workload === workload)!
  return [...t.cells.values()].reduce((b, c) => (c.throughput > b.throughput ? c : b)).method
}

function withLive (model: MetaModel, view: LiveView): MetaModel {
  return { ...model, live: { view: id => (id === view.hardwareId ? view : undefined), version: () => 1 } }
}

describe('live evidence: pure parts', () => {
  it('a cell measured once does not decide over cells measured twice or more', () => {
    const methods = [...new Set(history.filter(b => b.workload.name === w0).map(b => b.method.id))]
    const [a, b, c] = methods
    // a and b measured three times, c once but 5x faster
    const bodies = history.filter(x => x.workload.name === w0 && [a, b, c].includes(x.method.id))
    const more = bodies.filter(x => x.method.id !== c).flatMap(x => [x, x])
    const lucky = scaled(bodies, w0, c, 5)
    const task = buildDataset([...lucky, ...more]).tasks[0]
    expect(task.cells.has(c)).toBe(true)
    dropThinCells(task)
    expect([...task.cells.keys()].sort()).toEqual([a, b].sort())
    expect(task.reference).toBeDefined()
    // with fewer than two cells of two records nothing is dropped
    const thin = buildDataset(lucky).tasks[0]
    dropThinCells(thin)
    expect(thin.cells.size).toBe(3)
  })

  it('a view holds only its machine\'s benchmark records', () => {
    const other = history.map(b => ({ ...b, hardware: { ...b.hardware, id: 'other-machine' } }))
    const served = history.map(b => ({ ...b, source: 'serving' }))
    const v = liveViewOf(hw, [...history, ...other, ...served], 5)
    expect(v.records).toBe(history.length)
    expect(v.builtAt).toBe(5)
    expect(v.shapes.map(s => s.workload).sort()).toEqual([...new Set(history.map(b => b.workload.name))].sort())
    expect(liveViewOf('nobody', history).records).toBe(0)
  })
})

describe('live evidence in the selector', () => {
  let a: MetaModel
  let b: MetaModel
  let runnerUp: string
  let snapshotBest: string

  beforeAll(async () => {
    snapshotBest = bestOn(history, w0)
    const t = buildDataset(history).tasks.find(x => x.workload === w0)!
    runnerUp = [...t.cells.values()].filter(c => c.method !== snapshotBest).reduce((x, c) => (c.throughput > x.throughput ? c : x)).method
    // two peers' snapshots trained on different records: b saw the best method measured slow
    a = await train(history, OPTS)
    b = await train(scaled(history, w0, snapshotBest, 0.3), OPTS)
  })

  it('two snapshots that disagree give the same answer from the same live records', () => {
    const task = { ...buildDataset(history).tasks.find(x => x.workload === w0)!.info }
    expect(selectMethod(a, task).choice).toBe(snapshotBest)
    expect(selectMethod(b, task).choice).not.toBe(snapshotBest)
    // the store now holds records where the runner-up is ahead
    const now = scaled(history, w0, runnerUp, 2)
    const view = liveViewOf(hw, now)
    const sa = selectMethod(withLive(a, view), task)
    const sb = selectMethod(withLive(b, view), task)
    expect(sa.choice).toBe(runnerUp)
    expect(sb.choice).toBe(runnerUp)
    expect(sa.safeDefault?.rule).toBe('per-workload-best')
    expect(sa.reason).toMatch(/live evidence: \d+ benchmark records of this machine/)
  })

  it('pairs the shape never measured together fall back to the live evidence, not to each snapshot\'s', async () => {
    const task = buildDataset(history).tasks.find(x => x.workload === w0)!.info
    const others = (f: (m: string) => number): HistoryBody[] => history.map(x => x.workload.name === w0 ? x : { ...x, result: { ...x.result, totalTokensPerSecond: x.result.totalTokensPerSecond * f(x.method.id) } })
    // two peers' snapshots whose global evidence (the other workloads) favours one of the two each
    const pa = await train(others(m => (m === snapshotBest ? 3 : 1)), OPTS)
    const pb = await train(others(m => (m === runnerUp ? 3 : 1)), OPTS)
    // the store now: on w0 only the two were measured, nearly tied
    const now = history.filter(x => x.workload.name !== w0 || x.method.id === snapshotBest || x.method.id === runnerUp)
    const view = liveViewOf(hw, now)
    const sa = selectMethod(withLive(pa, view), task)
    const sb = selectMethod(withLive(pb, view), task)
    expect([snapshotBest, runnerUp]).toContain(sa.choice)
    expect(sb.choice).toBe(sa.choice)
  })

  it('another machine, or a shape the view lacks, keeps the snapshot\'s rule', () => {
    const task = buildDataset(history).tasks.find(x => x.workload === w0)!.info
    const elsewhere = liveViewOf('other-machine', scaled(history, w0, runnerUp, 2).map(x => ({ ...x, hardware: { ...x.hardware, id: 'other-machine' } })))
    expect(selectMethod(withLive(a, elsewhere), task).choice).toBe(snapshotBest)
    const without = liveViewOf(hw, scaled(history, w0, runnerUp, 2).filter(x => x.workload.name !== w0))
    const s = selectMethod(withLive(a, without), task)
    expect(s.choice).toBe(snapshotBest)
    expect(s.reason ?? '').not.toMatch(/live evidence/)
  })
})

describe('live evidence service', () => {
  it('builds a machine\'s view on first use and rebuilds it when its benchmark records arrive', async () => {
    let bodies = history
    let queries = 0
    const store = {
      query: async (q: { hardwareId?: string, source?: string }) => {
        queries++
        return { records: bodies.filter(x => x.hardware.id === q.hardwareId && x.source === q.source).map(body => ({ body })) }
      }
    }
    const events = new EventTarget()
    const live = createLiveEvidence({ refreshMs: 60_000 }, { store: store as never, events })
    live.start()
    try {
      expect(live.view(hw)).toBeUndefined()
      await live.refresh()
      const first = live.view(hw)!
      expect(first.records).toBe(history.length)
      const v1 = live.version()
      expect(v1).toBeGreaterThan(0)
      // a record of another machine or source changes nothing; one of this machine marks it for a rebuild
      const q = queries
      events.dispatchEvent(new CustomEvent('record', { detail: { record: { body: { ...history[0], hardware: { ...history[0].hardware, id: 'x' } } } } }))
      events.dispatchEvent(new CustomEvent('record', { detail: { record: { body: { ...history[0], source: 'serving' } } } }))
      expect(queries).toBe(q)
      bodies = [...history, history[0]]
      events.dispatchEvent(new CustomEvent('record', { detail: { record: { body: history[0] } } }))
      await live.refresh()
      expect(live.view(hw)!.records).toBe(history.length + 1)
      expect(live.version()).toBeGreaterThan(v1)
      expect(live.status()).toEqual([{ hardwareId: hw, records: history.length + 1, builtAt: expect.any(Number) }])
    } finally {
      live.stop()
    }
  })
})
