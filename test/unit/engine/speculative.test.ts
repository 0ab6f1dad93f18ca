import { describe, expect, it } from 'vitest'
import { lookupDraft } from '../../../src/engine/speculative.js'

describe('prompt lookup drafting', () => {
  it('proposes what followed the latest earlier match of the longest suffix n-gram', () => {
    expect(lookupDraft([1, 2, 3, 4, 9, 1, 2, 3], 3)).toEqual([4, 9, 1])
    expect(lookupDraft([5, 1, 7, 1, 8, 1], 2)).toEqual([8, 1]) // most recent 1-gram match wins
    expect(lookupDraft([1, 2, 3], 4)).toEqual([])
    expect(lookupDraft([1, 2, 1], 0)).toEqual([])
    // a longer n-gram match beats a more recent shorter one
    expect(lookupDraft([7, 8, 9, 1, 8, 2, 7, 8], 2)).toEqual([9, 1])
    // the draft stops at the end of the history
    expect(lookupDraft([4, 5, 4], 8)).toEqual([5, 4])
  })
})
