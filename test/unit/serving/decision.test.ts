import { describe, it, expect } from 'vitest'
import { quantizeFeatures } from '../../../src/serving/decision.js'

describe('decision cache keys', () => {
  it('quantizes features so near-identical tasks share a cache key and distinct ones do not', () => {
    const k = (f: Record<string, number>) => JSON.stringify(quantizeFeatures(f))
    expect(k({ a: 100, b: 0 })).toBe(k({ b: 0, a: 101 }))
    expect(k({ a: 100 })).not.toBe(k({ a: 110 }))
  })
})

describe('a model still being prepared (issue #20: the first answer)', () => {
  const base = {
    decide: () => { throw new Error('not reached') },
    catalogIds: () => ['baseline'],
    meta: () => null,
    votes: () => undefined,
    tokenizerFor: () => undefined,
    hardwareForAdvice: () => { throw new Error('not reached') },
    modelWaitMs: 20
  }
  const req = { model: { name: 'small' }, features: { requests: 1 } } as any

  it('answers E_STARTING instead of letting the exchange time out', async () => {
    const { createRecommender } = await import('../../../src/serving/decision.js')
    const r = createRecommender({ ...base, modelSpec: async () => await new Promise(() => {}) } as any)
    await expect(r.recommend(req)).rejects.toMatchObject({ code: 'E_STARTING', message: expect.stringContaining('small') })
  })

  it('a model that cannot be prepared is unknown, not starting', async () => {
    const { createRecommender } = await import('../../../src/serving/decision.js')
    const r = createRecommender({ ...base, modelSpec: async () => { throw new Error('no such file') } } as any)
    await expect(r.recommend(req)).rejects.toMatchObject({ code: 'E_UNKNOWN_MODEL' })
  })
})
