import { describe, it, expect } from 'vitest'
import { parseInferRequest } from '../../../src/net/infer.js'

function codeOf (fn: () => unknown): string | undefined {
  try { fn() } catch (err: any) { return err.code }
  return undefined
}

describe('infer request schema', () => {
  it('accepts a batch and refuses bad fields', () => {
    expect(parseInferRequest({ prompts: ['a'], maxTokens: 4, model: 'tiny', objective: 'latency' })).toEqual({ prompts: ['a'], maxTokens: 4, model: 'tiny', objective: 'latency' })
    for (const bad of [{}, { prompts: [] }, { prompts: ['a'], model: '../x' }, { prompts: ['a'], objective: 'fast' }, { prompts: ['a'], budget: -1 }, { prompts: ['a'], extra: 1 }]) {
      expect(codeOf(() => parseInferRequest(bad as Record<string, unknown>))).toBe('E_REQ_INVALID')
    }
  })
})
