import { describe, it, expect } from 'vitest'
import { absLogError, createServedErrorTracker } from '../../../src/meta/served-error.js'

describe('served prediction error', () => {
  it('is |ln(predicted / realized)|, null for unusable values', () => {
    expect(absLogError(200, 100)).toBeCloseTo(Math.log(2))
    expect(absLogError(50, 100)).toBeCloseTo(Math.log(2))
    expect(absLogError(null, 100)).toBeNull()
    expect(absLogError(0, 100)).toBeNull()
    expect(absLogError(100, 0)).toBeNull()
    expect(absLogError(NaN, 100)).toBeNull()
  })

  it('averages over the last `window` tasks; null before any', () => {
    const t = createServedErrorTracker(2)
    expect(t.mean()).toBeNull()
    expect(t.observe(null, 10)).toBeNull()
    expect(t.count()).toBe(0)
    t.observe(10 * Math.E, 10) // 1
    t.observe(10, 10) // 0
    expect(t.mean()).toBeCloseTo(0.5)
    t.observe(10, 10 * Math.E ** 3) // 3: the 1 leaves the window
    expect(t.count()).toBe(2)
    expect(t.mean()).toBeCloseTo(1.5)
  })
})
