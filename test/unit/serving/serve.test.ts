import { describe, it, expect } from 'vitest'
import { metricsOf, outputCaps, servingWorkloadName } from '../../../src/serving/serve.js'
import { checkResult } from '../../../src/records/validate.js'

describe('served batch metrics and names', () => {
  it('turns an engine outcome into schema-valid record metrics', () => {
    const m = metricsOf({ wallMs: 200, requests: [{ promptTokens: 10, outputTokens: 5, ttftMs: 20, latencyMs: 60 }, { promptTokens: 30, outputTokens: 1, ttftMs: 40, latencyMs: 40 }] })
    expect(m).toMatchObject({ ok: true, repeats: 1, promptTokens: 40, outputTokens: 6, outputTokensPerSecond: 30, totalTokensPerSecond: 230, tpotMs: 10 })
    expect(() => checkResult(m)).not.toThrow()
    expect(servingWorkloadName({ requests: 2, promptTokensMean: 20.4, outputTokensMean: 8 })).toBe('serving-n2-p20-o8')
  })
  it('gives each prompt its output cap and refuses an empty batch or a bad cap', () => {
    expect(outputCaps({ prompts: ['a', 'b'] })).toEqual([32, 32])
    expect(outputCaps({ prompts: ['a', 'b'], maxTokens: [1, 7] })).toEqual([1, 7])
    for (const req of [{ prompts: [] }, { prompts: ['a'], maxTokens: 0 }, { prompts: ['a', 'b'], maxTokens: [3] }, { prompts: ['a'], maxTokens: 1.5 }]) {
      expect(() => outputCaps(req)).toThrow(expect.objectContaining({ code: 'E_REQ_INVALID' }))
    }
  })
})
