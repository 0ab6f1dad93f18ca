import { describe, it, expect } from 'vitest'
import { MAX_HISTORY_SETTINGS, quantizeFeatures, withHistorySettings } from '../../../src/serving/decision.js'
import { logicalModelId } from '../../../src/meta/dataset.js'
import type { MetaModel } from '../../../src/meta/selector.js'

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

describe('withHistorySettings', () => {
  const model = { name: 'm', architecture: 'llama', params: 1, layers: 0, embd: 0, heads: 0, kvHeads: 0, ff: 0, vocab: 0, ctx: 0, weightBits: 4 }
  const id = logicalModelId(model)
  const meta = (methods: string[]): MetaModel => ({ modelMethods: { [id]: methods, other: ['llama-bench:other'] }, prior: null } as unknown as MetaModel)

  it('adds the settings the history holds for the model (not other models\') after the catalog', () => {
    expect(withHistorySettings(['baseline', 'flash-attn'], meta(['baseline', 'llama-bench:fa0', 'llama-bench:fa1']), model))
      .toEqual(['baseline', 'flash-attn', 'llama-bench:fa0', 'llama-bench:fa1'])
  })

  it('is the catalog alone without a model or a named model, and caps the history settings', () => {
    expect(withHistorySettings(['baseline'], null, model)).toEqual(['baseline'])
    expect(withHistorySettings(['baseline'], meta(['llama-bench:x']), { ...model, name: undefined } as never)).toEqual(['baseline'])
    const many = Array.from({ length: MAX_HISTORY_SETTINGS + 10 }, (_, i) => `llama-bench:s${String(i).padStart(3, '0')}`)
    expect(withHistorySettings(['baseline'], meta(many), model)).toHaveLength(1 + MAX_HISTORY_SETTINGS)
  })
})
