import { describe, it, expect } from 'vitest'
import { createServedLog, servedChoice } from '../../../src/serving/served-log.js'

const base = { at: 1, model: 'tiny', method: 'baseline', source: 'meta', taskClass: 'c' }

describe('served choices log', () => {
  it('turns predicted and realized wall time of the same tokens into tokens/s and the |ln| error', () => {
    const c = servedChoice({ ...base, predictedWallMs: 500, realizedWallMs: 1000, tokens: 100 })
    expect(c.predictedTokensPerSecond).toBe(200)
    expect(c.realizedTokensPerSecond).toBe(100)
    expect(c.absLogError).toBeCloseTo(Math.log(2), 3)
  })
  it('keeps a task without a usable prediction, with nulls', () => {
    for (const p of [null, 0, -1, Number.NaN]) {
      const c = servedChoice({ ...base, predictedWallMs: p, realizedWallMs: 200, tokens: 10 })
      expect(c).toMatchObject({ predictedTokensPerSecond: null, predictedWallMs: null, absLogError: null, realizedTokensPerSecond: 50 })
    }
  })
  it('is a bounded ring, newest last; recent(limit) takes the newest', () => {
    const log = createServedLog(3)
    for (let i = 0; i < 5; i++) log.add({ ...base, at: i, predictedWallMs: 100, realizedWallMs: 100, tokens: 1 })
    expect(log.recent().map(c => c.at)).toEqual([2, 3, 4])
    expect(log.recent(2).map(c => c.at)).toEqual([3, 4])
  })
})
