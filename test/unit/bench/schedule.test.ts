import { describe, it, expect } from 'vitest'
import { DEFAULT_NOISE, QUICK_FIRST_PASS_MIN_BYTES, cellKey, demandOf, failureBackoffMs, measuredCellOf, needsQuickFirstPass, pooledNoise, scheduleNext, tieBreakOf, type CellPrediction, type MeasuredCell, type ScheduleCell } from '../../../src/bench/schedule.js'

const methods = ['baseline', 'prefix-cache', 'batch-4']
const workloads = ['chat', 'rag']
const cells: ScheduleCell[] = methods.flatMap(method => workloads.map(workload => ({ method, workload, firstPass: method !== 'batch-4' })))
const counts = (entries: Array<[string, string, number]>): Map<string, number> => new Map(entries.map(([m, w, n]) => [cellKey(m, w), n]))
const all = (n: number): Map<string, number> => counts(cells.map(c => [c.method, c.workload, n]))
const preds = (table: Record<string, Record<string, CellPrediction>>) => (workload: string): Map<string, CellPrediction> | undefined =>
  table[workload] != null ? new Map(Object.entries(table[workload])) : undefined

describe('scheduleNext', () => {
  it('cold start: the first pass measures the baseline on every workload first, then the quick methods in order', () => {
    expect(scheduleNext({ cells, counts: new Map() })).toEqual({ cell: cells[0], reason: 'first-pass' })
    const order: string[] = []
    const c = new Map<string, number>()
    for (let i = 0; i < 4; i++) {
      const next = scheduleNext({ cells, counts: c })!
      expect(next.reason).toBe('first-pass')
      order.push(`${next.cell.method}/${next.cell.workload}`)
      c.set(cellKey(next.cell.method, next.cell.workload), 1)
    }
    expect(order).toEqual(['baseline/chat', 'baseline/rag', 'prefix-cache/chat', 'prefix-cache/rag'])
    // first pass done: batch-4 was never measured anywhere, so it is tried once (ties: catalog order)
    expect(scheduleNext({ cells, counts: c })).toEqual({ cell: { method: 'batch-4', workload: 'chat', firstPass: false }, reason: 'untried-method' })
    // every method tried once, no model: coverage (fewest records, catalog order)
    c.set(cellKey('batch-4', 'chat'), 1)
    expect(scheduleNext({ cells, counts: c })).toEqual({ cell: { method: 'batch-4', workload: 'rag', firstPass: false }, reason: 'coverage' })
  })

  it('spot checks come after the first pass and before value of information', () => {
    const c = all(1)
    const next = scheduleNext({ cells, counts: c, spotChecks: [{ method: 'nope', workload: 'chat' }, { method: 'batch-4', workload: 'rag' }], predict: preds({ chat: { baseline: { mean: 0, std: 0 }, 'prefix-cache': { mean: 1, std: 1 }, 'batch-4': { mean: 0, std: 0 } } }) })
    expect(next).toEqual({ cell: { method: 'batch-4', workload: 'rag', firstPass: false }, reason: 'spot-check' })
    // the first pass still wins over a spot check
    expect(scheduleNext({ cells, counts: new Map(), spotChecks: [{ method: 'batch-4', workload: 'rag' }] })?.reason).toBe('first-pass')
  })

  it('value of information: the UCB of predicted gain over the current choice, discounted by own records', () => {
    const c = all(1)
    const predict = preds({
      // current choice prefix-cache (0.5); batch-4 could be better (0.3 + 0.5 > 0.5), baseline cannot (0 + 0.1)
      chat: { baseline: { mean: 0, std: 0.1 }, 'prefix-cache': { mean: 0.5, std: 0.05 }, 'batch-4': { mean: 0.3, std: 0.5 } },
      rag: { baseline: { mean: 0, std: 0 }, 'prefix-cache': { mean: 0.2, std: 0.01 }, 'batch-4': { mean: 0.1, std: 0.05 } }
    })
    const next = scheduleNext({ cells, counts: c, predict })
    expect(next?.reason).toBe('value')
    expect(next?.cell).toEqual({ method: 'batch-4', workload: 'chat', firstPass: false })
    expect(next?.value).toBeCloseTo((0.3 + 0.5 - 0.5) / 2)
    // measured often, the same cell is worth less than the current choice's own spread elsewhere
    c.set(cellKey('batch-4', 'chat'), 100)
    expect(scheduleNext({ cells, counts: c, predict })?.cell).toEqual({ method: 'prefix-cache', workload: 'chat', firstPass: true })
    // a larger exploration weight values spread more
    expect(scheduleNext({ cells, counts: all(1), predict, c: 0 })?.reason).toBe('coverage')
  })

  it('a method with no record on any workload is tried once, on the workload measured most, before value picks', () => {
    const c = counts([['baseline', 'chat', 1], ['baseline', 'rag', 3], ['prefix-cache', 'chat', 1], ['prefix-cache', 'rag', 1]])
    const predict = preds({ chat: { baseline: { mean: 0, std: 0 }, 'prefix-cache': { mean: 0.1, std: 2 }, 'batch-4': { mean: 0, std: 0 } } })
    expect(scheduleNext({ cells, counts: c, predict })).toEqual({ cell: { method: 'batch-4', workload: 'rag', firstPass: false }, reason: 'untried-method' })
    // once tried on one workload, value of information decides
    c.set(cellKey('batch-4', 'rag'), 1)
    expect(scheduleNext({ cells, counts: c, predict })?.reason).toBe('value')
  })

  it('an unmeasured baseline comes before value (it is the reference of every speedup)', () => {
    const c = all(1)
    c.delete(cellKey('baseline', 'rag'))
    const noFirst = cells.map(x => ({ ...x, firstPass: false }))
    expect(scheduleNext({ cells: noFirst, counts: c, predict: preds({ chat: { 'batch-4': { mean: 5, std: 5 } } }) })).toEqual({ cell: { method: 'baseline', workload: 'rag', firstPass: false }, reason: 'baseline' })
  })

  it('skips cells in back-off, and returns nothing when every cell is blocked', () => {
    const blocked = (k: string): boolean => k === cellKey('baseline', 'chat')
    expect(scheduleNext({ cells, counts: new Map(), blocked })?.cell).toEqual(cells[1])
    expect(scheduleNext({ cells, counts: new Map(), blocked: () => true })).toBeUndefined()
  })

  it('ignores predictions that are not finite', () => {
    const predict = preds({ chat: { baseline: { mean: NaN, std: 1 }, 'batch-4': { mean: Infinity, std: NaN } } })
    expect(scheduleNext({ cells, counts: all(1), predict })?.reason).toBe('coverage')
  })
})

describe('scheduleNext: serving demand and near-ties (issue #17)', () => {
  const m = (entries: Array<[string, string, number[]]>): Map<string, MeasuredCell> => new Map(entries.map(([method, w, tps]) => [cellKey(method, w), measuredCellOf(tps)]))
  const demand = new Map([['rag', 5], ['chat', 1]])

  it('on the most demanded workload, measures every method nobody measured there, the baseline first, before baselines elsewhere', () => {
    const noFirst = cells.map(x => ({ ...x, firstPass: false }))
    // rag is demanded most: its baseline first, although chat's baseline is not measured either
    expect(scheduleNext({ cells: noFirst, counts: new Map(), demand, measured: new Map() })).toEqual({ cell: { method: 'baseline', workload: 'rag', firstPass: false }, reason: 'demand' })
    // another author's record counts: peers of one machine split the work
    const measured = m([['baseline', 'rag', [100]]])
    expect(scheduleNext({ cells: noFirst, counts: new Map(), demand, measured })).toEqual({ cell: { method: 'prefix-cache', workload: 'rag', firstPass: false }, reason: 'demand' })
    // equally due cells: the peer's tie-break picks among them
    expect(scheduleNext({ cells: noFirst, counts: new Map(), demand, measured, tieBreak: 0.9 })?.cell.method).toBe('batch-4')
  })

  it('comes after the first pass\'s baselines and before the rest of the first pass', () => {
    // cells: baseline and prefix-cache are first-pass cells; nothing measured yet
    expect(scheduleNext({ cells, counts: new Map(), demand, measured: new Map() })).toEqual({ cell: cells[0], reason: 'first-pass' })
    const c = counts([['baseline', 'chat', 1], ['baseline', 'rag', 1]])
    const measured = m([['baseline', 'chat', [100]], ['baseline', 'rag', [100]]])
    expect(scheduleNext({ cells, counts: c, demand, measured })).toMatchObject({ cell: { workload: 'rag', method: 'prefix-cache' }, reason: 'demand' })
    // without demand, the first pass goes on
    expect(scheduleNext({ cells, counts: c, measured })).toMatchObject({ cell: { workload: 'chat', method: 'prefix-cache' }, reason: 'first-pass' })
  })

  it('measures a method whose predicted upper bound is below the best measured speedup last, not never', () => {
    const measured = m([['baseline', 'rag', [100]], ['prefix-cache', 'rag', [300]]])
    // prefix-cache measured 3x (ln 1.10); batch-4 predicted at most ln 1.2 + 0.1: below it
    const predict = preds({ rag: { 'batch-4': { mean: 0.2, std: 0.1 } } })
    const next = scheduleNext({ cells, counts: all(1), demand: new Map([['rag', 1]]), measured, predict, noise: 0.01 })
    expect(next?.reason).not.toBe('demand')
    // own counts 0 on rag: batch-4 (bound below) is still the demand step's cell once nothing else is unmeasured there
    const low = all(1)
    low.delete(cellKey('batch-4', 'rag'))
    expect(scheduleNext({ cells, counts: low, demand: new Map([['rag', 1]]), measured, predict })).toEqual({ cell: cells[5], reason: 'demand' })
    // with a bound above it, batch-4 is measured there
    const wide = preds({ rag: { 'batch-4': { mean: 0.2, std: 1 } } })
    const c = all(1)
    c.delete(cellKey('batch-4', 'rag'))
    expect(scheduleNext({ cells, counts: c, demand: new Map([['rag', 1]]), measured, predict: wide })).toEqual({ cell: cells[5], reason: 'demand' })
  })

  it('repeats the cells of a near-tie on a demanded workload, fewest records first, up to maxRepeats', () => {
    // rag: prefix-cache 200 (2 records) vs batch-4 190 (1 record): within noise; baseline 100 is clearly worse
    const measured = m([['baseline', 'rag', [100]], ['prefix-cache', 'rag', [190, 210]], ['batch-4', 'rag', [190]], ['baseline', 'chat', [100]], ['prefix-cache', 'chat', [100]], ['batch-4', 'chat', [100]]])
    const d = new Map([['rag', 1]])
    const next = scheduleNext({ cells, counts: all(1), demand: d, measured, noise: 0.2 })
    expect(next).toMatchObject({ cell: { method: 'batch-4', workload: 'rag' }, reason: 'near-tie' })
    // a clear winner (small noise) needs no repeat: the steps after decide
    expect(scheduleNext({ cells, counts: all(1), demand: d, measured, noise: 0.01 })?.reason).toBe('coverage')
    // every tied cell at maxRepeats: no more repeats
    expect(scheduleNext({ cells, counts: all(1), demand: d, measured, noise: 0.2, maxRepeats: 1 })?.reason).toBe('coverage')
    // no demand: no near-tie step
    expect(scheduleNext({ cells, counts: all(1), measured, noise: 0.2 })?.reason).toBe('coverage')
  })

  it('a failed cell counts as measured and never as a contender', () => {
    const measured = m([['baseline', 'rag', [100]], ['prefix-cache', 'rag', [0]], ['batch-4', 'rag', [100]]])
    expect(measured.get(cellKey('prefix-cache', 'rag'))).toEqual({ n: 0, failed: 1 })
    const next = scheduleNext({ cells, counts: all(1), demand: new Map([['rag', 1]]), measured, noise: 0.2 })
    expect(next).toMatchObject({ reason: 'near-tie', cell: { workload: 'rag' } })
    expect(next?.cell.method).not.toBe('prefix-cache')
  })

  it('noise: pooled within-cell spread, the default before any cell has two records', () => {
    expect(pooledNoise(undefined)).toBe(DEFAULT_NOISE)
    expect(pooledNoise(m([['a', 'w', [100]]]))).toBe(DEFAULT_NOISE)
    const s = pooledNoise(m([['a', 'w', [100, 100 * Math.E ** 0.2]], ['b', 'w', [50, 50]]]))
    // (1·sd_a² + 1·0) / 2 with sd_a = 0.2/√2
    expect(s).toBeCloseTo(Math.sqrt((0.2 / Math.SQRT2) ** 2 / 2))
  })

  it('demand: served tasks matched to the nearest sweep workload within the shape bound', () => {
    const workloads = new Map([['chat', { promptTokensMean: 24, requests: 4 }], ['rag', { promptTokensMean: 400, requests: 2 }]])
    const d = demandOf([{ promptTokensMean: 26, requests: 4 }, { promptTokensMean: 30, requests: 4 }, { promptTokensMean: 380, requests: 2 }, { promptTokensMean: 5000, requests: 2 }], workloads)
    expect(Object.fromEntries(d)).toEqual({ chat: 2, rag: 1 })
  })

  it('tie-break: fixed per id, in [0, 1)', () => {
    const a = tieBreakOf('12D3KooWA')
    expect(a).toBe(tieBreakOf('12D3KooWA'))
    expect(a).toBeGreaterThanOrEqual(0)
    expect(a).toBeLessThan(1)
    expect(tieBreakOf('12D3KooWB')).not.toBe(a)
  })
})

describe('failureBackoffMs', () => {
  it('doubles per failure up to the cap', () => {
    expect(failureBackoffMs(0, 1000, 10_000)).toBe(0)
    expect(failureBackoffMs(1, 1000, 10_000)).toBe(1000)
    expect(failureBackoffMs(3, 1000, 10_000)).toBe(4000)
    expect(failureBackoffMs(50, 1000, 10_000)).toBe(10_000)
  })

  it('a quick first pass only when the default model is not the quick one and must be generated or is large (issue #17)', () => {
    const big = { exists: true, bytes: QUICK_FIRST_PASS_MIN_BYTES }
    expect(needsQuickFirstPass({ defaultModel: 'small', quickModel: 'tiny', file: { exists: false, bytes: 0 } })).toBe(true)
    expect(needsQuickFirstPass({ defaultModel: 'small', quickModel: 'tiny', file: big })).toBe(true)
    expect(needsQuickFirstPass({ defaultModel: 'small', quickModel: 'tiny', file: { exists: true, bytes: 1024 } })).toBe(false)
    expect(needsQuickFirstPass({ defaultModel: 'tiny', quickModel: 'tiny', file: { exists: false, bytes: 0 } })).toBe(false)
    expect(needsQuickFirstPass({ defaultModel: 'small', quickModel: null, file: big })).toBe(false)
    expect(needsQuickFirstPass({ defaultModel: 'nope', quickModel: 'tiny', file: undefined })).toBe(false)
  })
})
