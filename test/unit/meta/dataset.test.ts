import { describe, expect, it } from 'vitest'
import { buildDataset, hostKeyOf, relativePerfOf, speedupOf, trainingRows, trainingSetHash, type HistoryBody } from '../../../src/meta/dataset.js'
import { median } from '../../../src/util/stats.js'
import { synthHistory } from '../../../src/meta/synthetic.js'

function withResult (b: HistoryBody, patch: Partial<HistoryBody['result']>): HistoryBody {
  return { ...b, result: { ...b.result, ...patch } }
}

describe('meta dataset', () => {
  const base = synthHistory({ machines: 1, models: 1, workloads: 1, repeats: 1, failRate: 0 })
  const baseline = base.find(b => b.method.id === 'baseline')!
  const prefix = base.find(b => b.method.id === 'prefix-cache')!

  it('median of odd and even counts', () => {
    expect(median([3, 1, 2])).toBe(2)
    expect(median([4, 1, 3, 2])).toBe(2.5)
    // buildDataset asks for NaN on an empty sample: a cell without ok records has no value
    expect(median([], NaN)).toBeNaN()
  })

  it('aggregates repeated records of a cell by the median, robust to one outlier', () => {
    const recs = [
      withResult(baseline, { totalTokensPerSecond: 100, wallMs: 1000, ttftMsP50: 50 }),
      withResult(prefix, { totalTokensPerSecond: 200, wallMs: 500, ttftMsP50: 10 }),
      withResult(prefix, { totalTokensPerSecond: 210, wallMs: 480, ttftMsP50: 11 }),
      withResult(prefix, { totalTokensPerSecond: 1e6, wallMs: 1, ttftMsP50: 0.1 }) // a liar
    ]
    const ds = buildDataset(recs)
    expect(ds.tasks).toHaveLength(1)
    const cell = ds.tasks[0].cells.get('prefix-cache')!
    expect(cell.records).toBe(3)
    expect(cell.throughput).toBe(210)
    expect(cell.wallMs).toBe(480)
    expect(speedupOf(ds.tasks[0], 'prefix-cache')).toBeCloseTo(2.1)
    const rows = trainingRows(ds)
    expect(rows.ySpeedup[rows.cells.findIndex(c => c.method === 'prefix-cache')]).toBeCloseTo(Math.log(2.1))
    expect(rows.ySpeedup[rows.cells.findIndex(c => c.method === 'baseline')]).toBeCloseTo(0)
  })

  it('ignores failed records in the median and keeps all-failed cells as failed', () => {
    const recs = [
      withResult(baseline, { totalTokensPerSecond: 100 }),
      withResult(baseline, { ok: false, error: 'E_X', totalTokensPerSecond: 0 }),
      withResult(prefix, { ok: false, error: 'E_OOM', totalTokensPerSecond: 0 })
    ]
    const ds = buildDataset(recs)
    const t = ds.tasks[0]
    expect(t.cells.get('baseline')!.throughput).toBe(100)
    expect(t.cells.get('prefix-cache')!.failed).toBe(true)
    expect(speedupOf(t, 'prefix-cache')).toBe(0)
    expect(trainingRows(ds).cells.map(c => c.method)).toEqual(['baseline'])
  })

  it('has no speedup target without a baseline on the task', () => {
    const ds = buildDataset([withResult(prefix, {})])
    expect(ds.tasks[0].baseline).toBeUndefined()
    expect(trainingRows(ds).ySpeedup[0]).toBeNaN()
    // evaluation still has a reference: the median setting
    expect(ds.tasks[0].referenceRule).toBe('median-setting')
    expect(trainingRows(ds, ds.tasks, { useReference: true }).ySpeedup[0]).toBeCloseTo(0)
  })

  it('the median-setting reference is the lower median, the baseline wins when ok', () => {
    const mk = (id: string, tps: number) => withResult({ ...prefix, method: { id, knobs: {} } }, { totalTokensPerSecond: tps })
    const ds = buildDataset([mk('a', 10), mk('b', 30), mk('c', 20), mk('d', 40)])
    expect(ds.tasks[0].reference!.method).toBe('c')
    expect(relativePerfOf(ds.tasks[0], 'd')).toBeCloseTo(2)
    const withBase = buildDataset([mk('a', 10), withResult(baseline, { totalTokensPerSecond: 5 })])
    expect(withBase.tasks[0].referenceRule).toBe('default-setting')
    expect(relativePerfOf(withBase.tasks[0], 'a')).toBeCloseTo(2)
  })

  it('groups the hardware split by host: backend and GPU count do not make another machine', () => {
    const hw = { cpuModel: 'EPYC 9654', gpus: [{ name: 'NVIDIA L40S', vramMiB: 46068 }] }
    expect(hostKeyOf(hw)).toBe(hostKeyOf({ cpuModel: 'EPYC 9654', gpus: Array(4).fill({ name: 'NVIDIA L40S', vramMiB: 0 }) }))
    expect(hostKeyOf(hw)).not.toBe(hostKeyOf({ cpuModel: 'EPYC 9654', gpus: [{ name: 'NVIDIA H100', vramMiB: 0 }] }))
  })

  it('keys cells by hardware, model, workload and method, and hashes the training set stably', () => {
    const h = synthHistory({ machines: 2, models: 2, workloads: 3, repeats: 2 })
    const ds = buildDataset(h)
    expect(ds.tasks).toHaveLength(12)
    expect(ds.cells).toHaveLength(12 * 6)
    expect(trainingSetHash(buildDataset([...h].reverse()))).toBe(trainingSetHash(ds))
    expect(trainingSetHash(buildDataset(h.slice(1)))).not.toBe(trainingSetHash(ds))
  })

  it('accepts history --json entries and rejects non-records', () => {
    expect(buildDataset([{ body: baseline }]).cells).toHaveLength(1)
    expect(() => buildDataset([{ nope: 1 } as never])).toThrow(expect.objectContaining({ code: 'E_BAD_HISTORY' }))
  })
})
