import { describe, it, expect } from 'vitest'
import { quantizeFeatures } from '../../../src/serving/decision.js'

describe('decision cache keys', () => {
  it('quantizes features so near-identical tasks share a cache key and distinct ones do not', () => {
    const k = (f: Record<string, number>) => JSON.stringify(quantizeFeatures(f))
    expect(k({ a: 100, b: 0 })).toBe(k({ b: 0, a: 101 }))
    expect(k({ a: 100 })).not.toBe(k({ a: 110 }))
  })
})
