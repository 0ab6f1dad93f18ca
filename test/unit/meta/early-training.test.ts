import { describe, it, expect } from 'vitest'
import { createEarlyTrainingState, shouldTrainEarly } from '../../../src/meta/early-training.js'

describe('shouldTrainEarly', () => {
  it('trains on the second distinct author while young', () => {
    const s = createEarlyTrainingState(100)
    expect(shouldTrainEarly(s, 'a', true, 100)).toBe(false)
    expect(shouldTrainEarly(s, 'a', true, 100)).toBe(false)
    expect(shouldTrainEarly(s, 'b', true, 100)).toBe(true)
    expect(shouldTrainEarly(s, 'b', true, 100)).toBe(false)
    expect(shouldTrainEarly(s, 'c', true, 100)).toBe(true)
    // not young any more: the periodic thresholds decide
    expect(shouldTrainEarly(s, 'd', false, 100)).toBe(false)
  })

  it('trains after firstRecords records, then at doubling marks', () => {
    const s = createEarlyTrainingState(3)
    const fired: number[] = []
    for (let i = 1; i <= 25; i++) if (shouldTrainEarly(s, 'a', true, 3)) fired.push(i)
    expect(fired).toEqual([3, 6, 12, 24])
  })

  it('firstRecords 0 turns it off', () => {
    const s = createEarlyTrainingState(0)
    expect(shouldTrainEarly(s, 'a', true, 0)).toBe(false)
    expect(shouldTrainEarly(s, 'b', true, 0)).toBe(false)
  })
})
