import { describe, expect, it } from 'vitest'
// @ts-expect-error the dashboard's scripts are plain browser JavaScript, without types
import { curveSeries } from '../../../src/node/dashboard/quality.js'

describe('dashboard learning-curve series', () => {
  it('takes the default row by its flag and single-best by name, null where a point lacks one', () => {
    const curve = [
      { at: 0, records: 10, rows: [{ selector: 'single-best', regret: 0.3 }, { selector: 'forest-a', regret: 0.25, default: true }] },
      { at: 60_000, records: 20, rows: [{ selector: 'forest-b', regret: 0.1, default: true }] }
    ]
    const s = curveSeries(curve) as { records: number[], defaultRegret: Array<number | null>, singleBestRegret: Array<number | null>, defaultName: string, labels: string[] }
    expect(s.records).toEqual([10, 20])
    expect(s.defaultRegret).toEqual([0.25, 0.1])
    expect(s.singleBestRegret).toEqual([0.3, null])
    expect(s.defaultName).toBe('forest-b')
    expect(s.labels).toHaveLength(2)
    expect(curveSeries([]).defaultName).toBe('default selector')
  })
})
