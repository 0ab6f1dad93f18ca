import { describe, expect, it } from 'vitest'
import { learnEnv, sampleOf, samplesCsv } from '../../../src/testbed/learn.js'

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
      SWARMTUNE__bench__background__enabled: 'true', SWARMTUNE__engine__defaultModel: 'tiny', SWARMTUNE__meta__evalIntervalMs: '30000', SWARMTUNE__bench__background__share: '0.5'
    })
  })
})
