import { describe, it, expect } from 'vitest'
import { commonPrefixLength, reusablePrefixTokens, ngramOverlap, workloadFeatures } from '../../../src/meta/workload-features.js'
import { mean, median, percentile, spread } from '../../../src/util/stats.js'

describe('stats', () => {
  it('median and percentiles interpolate between ranks', () => {
    expect(median([3, 1, 2])).toBe(2)
    expect(median([4, 1, 3, 2])).toBe(2.5)
    expect(percentile([1, 2, 3, 4, 5], 95)).toBeCloseTo(4.8)
    expect(percentile([10], 95)).toBe(10)
    expect(percentile([], 50)).toBe(0)
    expect(percentile([5, 1], 0)).toBe(1)
    expect(percentile([5, 1], 100)).toBe(5)
    expect(median([])).toBe(0)
    expect(median([], NaN)).toBeNaN()
  })
  it('nearest-rank percentiles are measured values', () => {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1)
    expect(percentile(xs, 50, 'nearest-rank')).toBe(50)
    expect(percentile(xs, 99, 'nearest-rank')).toBe(99)
    expect(percentile([3, 1, 2], 0, 'nearest-rank')).toBe(1)
    expect(percentile([3, 1, 2], 100, 'nearest-rank')).toBe(3)
    expect(percentile([], 50, 'nearest-rank')).toBe(0)
  })
  it('median of two middle values is their exact mean', () => {
    // interpolation gives 0.1 + (0.7 - 0.1) * 0.5 = 0.4, one bit off (0.1 + 0.7) / 2
    expect(median([0.7, 0.1])).toBe((0.1 + 0.7) / 2)
  })
  it('does not reorder its input', () => {
    const xs = [3, 1, 2]
    median(xs)
    expect(xs).toEqual([3, 1, 2])
  })
  it('spread is (max - min) / median', () => {
    expect(spread([90, 100, 120])).toBeCloseTo(0.3)
    expect(spread([5])).toBe(0)
    expect(spread([0, 0])).toBe(0)
    expect(mean([1, 2, 3, 6])).toBe(3)
    expect(mean([])).toBe(0)
  })
})

describe('workload features', () => {
  it('common prefix of all prompts', () => {
    expect(commonPrefixLength([[1, 2, 3, 4], [1, 2, 3, 9], [1, 2, 7]])).toBe(2)
    expect(commonPrefixLength([[1, 2], [1, 2, 3]])).toBe(2)
    expect(commonPrefixLength([[5], [6]])).toBe(0)
    expect(commonPrefixLength([])).toBe(0)
  })

  it('reusable prefix counts what each request shares with any earlier one', () => {
    // second shares 3 with first; third shares 4 with second; fourth shares nothing
    expect(reusablePrefixTokens([[1, 2, 3, 4], [1, 2, 3, 5, 6], [1, 2, 3, 5, 7], [9, 9]])).toBe(3 + 4 + 0)
    // identical prompts are fully reusable after the first
    expect(reusablePrefixTokens([[1, 2], [1, 2], [1, 2]])).toBe(4)
    expect(reusablePrefixTokens([[1, 2]])).toBe(0)
  })

  it('n-gram overlap is the share of output trigrams found in the prompt', () => {
    const prompts = [[1, 2, 3, 4, 5, 6]]
    expect(ngramOverlap(prompts, [[2, 3, 4, 5]])).toBe(1)
    expect(ngramOverlap(prompts, [[2, 3, 4, 9]])).toBe(0.5)
    expect(ngramOverlap(prompts, [[7, 8, 9]])).toBe(0)
    expect(ngramOverlap(prompts, [[1, 2]])).toBe(0) // too short for a trigram
  })

  it('computes the documented feature set from tokens', () => {
    const prompts = [
      [1, 2, 3, 4, 10, 11],
      [1, 2, 3, 4, 20, 21, 22, 23],
      [1, 2, 3, 4, 30, 31, 32, 33, 34, 35]
    ]
    const f = workloadFeatures({ prompts, maxTokens: [4, 4, 10], concurrency: 2, outputs: [[3, 4, 10, 11], [8, 8, 8], [1, 2]] })
    expect(f).toEqual({
      requests: 3,
      promptTokensMean: 8,
      promptTokensP50: 8,
      promptTokensP95: 9.8,
      promptTokensMax: 10,
      totalPromptTokens: 24,
      outputTokensMean: 6,
      sharedPrefixRatio: 0.5,
      reusablePrefixRatio: 0.3333,
      ngramOverlap: 0.6667, // 2 of 2 windows in request 0, 0 of 1 in request 1
      concurrency: 2
    })
    expect(workloadFeatures({ prompts, maxTokens: [4, 4, 10], concurrency: 2 }).ngramOverlap).toBe(0)
    expect(workloadFeatures({ prompts: [[1, 2, 3]], maxTokens: [1], concurrency: 1 }).sharedPrefixRatio).toBe(0)
    expect(workloadFeatures({ prompts: [], maxTokens: [], concurrency: 1 }).promptTokensMax).toBe(0)
  })
})
