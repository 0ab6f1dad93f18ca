import { describe, expect, it } from 'vitest'
import { learnEnv, sampleOf, samplesCsv } from '../../../src/testbed/learn.js'
import { goalCheck, regretOf, singleBestOf, streamSlot, swarmCellsOf, tableOf, windowsOf } from '../../../src/testbed/learn-score.js'

const point = (records: number, def: number, sb: number): { at: number, records: number, authors: number, tasks: number, split: string, rows: Array<{ selector: string, top1: number, regret: number, default?: true }> } => ({
  at: 1, records, authors: 3, tasks: 6, split: 'workload',
  rows: [{ selector: 'single-best', top1: 0.5, regret: sb }, { selector: 'per-workload-best', top1: 0.5, regret: 0.2 }, { selector: 'whatever-learner', top1: 0.6, regret: def, default: true }]
})

describe('learn scenario samples', () => {
  it('reads the latest curve point, the default row by its flag', () => {
    const s = sampleOf(12.5, 1, { records: 40, authors: 3 }, { latest: null, curve: [point(20, 0.3, 0.4), point(38, 0.1, 0.25)] })
    expect(s).toEqual({ t: 12.5, peer: 1, records: 40, authors: 3, evaluatedRecords: 38, tasks: 6, split: 'workload', defaultSelector: 'whatever-learner', defaultRegret: 0.1, singleBestRegret: 0.25, perWorkloadBestRegret: 0.2 })
  })

  it('is all nulls before the first evaluation', () => {
    const s = sampleOf(1, 0, { records: 0, authors: 0 }, { latest: null, curve: [] })
    expect(s.defaultRegret).toBeNull()
    expect(s.singleBestRegret).toBeNull()
    expect(s.tasks).toBeNull()
  })

  it('writes CSV with a header, empty cells for nulls and quoted text', () => {
    const a = sampleOf(1, 0, { records: 0, authors: 0 }, { latest: null, curve: [] })
    const b = { ...sampleOf(2, 1, { records: 5, authors: 2 }, { latest: null, curve: [point(5, 0.1, 0.2)] }), defaultSelector: 'a,"b"' }
    const lines = samplesCsv([a, b]).trimEnd().split('\n')
    expect(lines[0]).toBe('t,peer,records,authors,evaluatedRecords,tasks,split,defaultSelector,defaultRegret,singleBestRegret,perWorkloadBestRegret')
    expect(lines[1]).toBe('1,0,0,0,,,,,,,')
    expect(lines[2]).toBe('2,1,5,2,5,6,workload,"a,""b""",0.1,0.2,0.2')
  })

  it('turns the sweep and the evaluation on for the scenario daemons', () => {
    expect(learnEnv({ model: 'tiny', evalIntervalMs: 30_000, share: 0.5 })).toMatchObject({
      SWARMTUNE__bench__background__enabled: 'true', SWARMTUNE__engine__defaultModel: 'tiny', SWARMTUNE__meta__evalIntervalMs: '30000', SWARMTUNE__bench__background__share: '0.5', SWARMTUNE__bench__background__intervalMs: '1000'
    })
  })
})

describe('learn scenario scoring against the ground-truth table', () => {
  // two task types; m1 wins chat, m2 wins docqa, baseline is slow on both, m3 failed on docqa
  const table = tableOf([
    { method: 'baseline', family: 'chat', ok: true, totalTokensPerSecond: 50 },
    { method: 'm1', family: 'chat', ok: true, totalTokensPerSecond: 100 },
    { method: 'm2', family: 'chat', ok: true, totalTokensPerSecond: 80 },
    { method: 'm3', family: 'chat', ok: true, totalTokensPerSecond: 90 },
    { method: 'baseline', family: 'docqa', ok: true, totalTokensPerSecond: 20 },
    { method: 'm1', family: 'docqa', ok: true, totalTokensPerSecond: 30 },
    { method: 'm2', family: 'docqa', ok: true, totalTokensPerSecond: 40 },
    { method: 'm3', family: 'docqa', ok: false, totalTokensPerSecond: 99 }
  ])

  it('builds the table with failed cells at 0 and scores regret against the best of the type', () => {
    expect(table.docqa.m3).toBe(0)
    expect(regretOf(table, 'chat', 'm1')).toBe(0)
    expect(regretOf(table, 'chat', 'baseline')).toBeCloseTo(0.5)
    expect(regretOf(table, 'docqa', 'm1')).toBeCloseTo(0.25)
    expect(regretOf(table, 'docqa', 'm3')).toBe(1)
    expect(regretOf(table, 'docqa', 'unknown')).toBeNull()
    expect(regretOf(table, 'summarize', 'm1')).toBeNull()
    expect(regretOf(tableOf([{ method: 'a', family: 'x', ok: false, totalTokensPerSecond: 0 }]), 'x', 'a')).toBeNull()
  })

  it('takes the single best in hindsight by mean regret over the task types', () => {
    // m1: (0 + 0.25)/2 = 0.125; m2: (0.2 + 0)/2 = 0.1; m3: (0.1 + 1)/2; baseline: (0.5 + 0.5)/2
    const sb = singleBestOf(table)
    expect(sb?.method).toBe('m2')
    expect(sb?.meanRegret).toBeCloseTo(0.1)
    expect(singleBestOf({})).toBeNull()
    // a method missing on one type cannot be the single best
    expect(singleBestOf({ a: { x: 10, y: 5 }, b: { y: 5 } })?.method).toBe('y')
  })

  it('averages the served choices per window next to always-baseline and always-single-best', () => {
    const served = [
      { t: 1, peer: 0, family: 'chat', method: 'baseline', source: 'cold-start', explored: false },
      { t: 9.9, peer: 1, family: 'docqa', method: 'm1', source: 'cold-start', explored: false },
      { t: 25, peer: 0, family: 'chat', method: 'm1', source: 'meta', explored: false },
      { t: 27, peer: 1, family: 'docqa', method: 'm2', source: 'meta', explored: false },
      { t: 28, peer: 0, family: 'chat', method: 'never-measured', source: 'meta', explored: true }
    ]
    const { windows, unscored } = windowsOf(served, table, { windowSeconds: 10, baseline: 'baseline', singleBest: 'm2' })
    expect(unscored).toBe(1)
    expect(windows).toHaveLength(2) // the empty window 10-20 s is left out
    expect(windows[0]).toMatchObject({ t: 10, served: 2 })
    expect(windows[0].regret).toBeCloseTo((0.5 + 0.25) / 2)
    expect(windows[0].baselineRegret).toBeCloseTo(0.5)
    expect(windows[0].singleBestRegret).toBeCloseTo((0.2 + 0) / 2)
    expect(windows[1]).toMatchObject({ t: 30, served: 2, regret: 0 })
    expect(windows[1].singleBestRegret).toBeCloseTo(0.1)
    expect(() => windowsOf(served, table, { windowSeconds: 0, baseline: 'baseline', singleBest: 'm2' })).toThrow(RangeError)
  })

  it('checks the goal: last window below the first and at most single-best', () => {
    const w = (regret: number, singleBestRegret: number): { t: number, regret: number, baselineRegret: number, singleBestRegret: number, served: number } => ({ t: 1, regret, baselineRegret: 0.5, singleBestRegret, served: 1 })
    expect(goalCheck([w(0.3, 0.1)])).toBeNull()
    expect(goalCheck([w(0.3, 0.1), w(0.1, 0.1)])).toEqual({ belowFirst: true, atMostSingleBest: true, holds: true })
    expect(goalCheck([w(0.3, 0.1), w(0.2, 0.1)])).toEqual({ belowFirst: true, atMostSingleBest: false, holds: false })
    expect(goalCheck([w(0.1, 0.1), w(0.1, 0.2)])).toEqual({ belowFirst: false, atMostSingleBest: true, holds: false })
  })

  it('sends every task type to every peer in turn', () => {
    const slots = Array.from({ length: 9 }, (_, i) => streamSlot(i, 3, ['a', 'b', 'c']))
    for (let p = 0; p < 3; p++) expect(new Set(slots.filter(s => s.peer === p).map(s => s.family))).toEqual(new Set(['a', 'b', 'c']))
    expect(streamSlot(0, 2, ['a'])).toEqual({ peer: 0, family: 'a' })
  })
})

describe('swarmCellsOf', () => {
  it('median tokens/s of the ok records per (workload, method), with records and authors', () => {
    const b = (author: string, method: string, tps: number, ok = true): Parameters<typeof swarmCellsOf>[0][number] => ({ author, workload: { name: 'chat-tiny', family: 'chat' }, method: { id: method }, result: { ok, totalTokensPerSecond: tps } })
    const cells = swarmCellsOf([b('a', 'x', 100), b('b', 'x', 300), b('a', 'x', 200), b('a', 'y', 500), b('c', 'z', 0, false)])
    expect(cells).toEqual([
      { workload: 'chat-tiny', family: 'chat', method: 'y', perf: 500, records: 1, authors: 1 },
      { workload: 'chat-tiny', family: 'chat', method: 'x', perf: 200, records: 3, authors: 2 },
      { workload: 'chat-tiny', family: 'chat', method: 'z', perf: 0, records: 1, authors: 1 }
    ])
  })
})
