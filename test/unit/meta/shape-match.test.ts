import { describe, expect, it } from 'vitest'
import { knownShapes, matchShape, RATIO_STEP, SHAPE_MATCH_BOUND, shapeDistance, validShapes, type KnownShape } from '../../../src/meta/shape-match.js'

const chat = { promptTokensMean: 128, outputTokensMean: 64, concurrency: 1, sharedPrefixRatio: 0 }
const doc = { promptTokensMean: 2048, outputTokensMean: 64, concurrency: 1, sharedPrefixRatio: 0 }
const shared = { promptTokensMean: 128, outputTokensMean: 64, concurrency: 1, sharedPrefixRatio: 0.9 }
const shapes: KnownShape[] = [
  { model: 'm1', workload: 'chat', features: chat },
  { model: 'm1', workload: 'doc', features: doc },
  { model: 'm1', workload: 'shared', features: shared },
  { model: 'm2', workload: 'chat2', features: chat }
]

describe('shape distance', () => {
  it('is 0 for equal features and symmetric', () => {
    expect(shapeDistance(chat, chat)).toBe(0)
    expect(shapeDistance(chat, doc)).toBeCloseTo(shapeDistance(doc, chat) as number, 12)
  })

  it('counts lengths on a log scale: a factor of 2 (of 1 + x) is distance 1', () => {
    expect(shapeDistance({ promptTokensMean: 99 }, { promptTokensMean: 199 })).toBeCloseTo(1, 12)
    expect(shapeDistance({ promptTokensMean: 99 }, { promptTokensMean: 399 })).toBeCloseTo(2, 12)
  })

  it('counts ratios linearly: a difference of RATIO_STEP is distance 1', () => {
    expect(shapeDistance({ sharedPrefixRatio: 0.5 }, { sharedPrefixRatio: 0.5 + RATIO_STEP })).toBeCloseTo(1, 12)
  })

  it('takes the largest feature difference, not the sum, over the features both sides have', () => {
    expect(shapeDistance({ promptTokensMean: 99, outputTokensMean: 63 }, { promptTokensMean: 199, outputTokensMean: 63 })).toBeCloseTo(1, 12)
    // a feature only one side has does not count; none in common → undefined
    expect(shapeDistance({ promptTokensMean: 128, concurrency: 8 }, { promptTokensMean: 128 })).toBe(0)
    expect(shapeDistance({ promptTokensMean: 128 }, { concurrency: 1 })).toBeUndefined()
    // keys outside the workload feature list and non-finite or negative values are ignored
    expect(shapeDistance({ other: 1, promptTokensMean: NaN }, { other: 100, promptTokensMean: 5 })).toBeUndefined()
  })
})

describe('matchShape', () => {
  it('matches the nearest shape of the same model within the bound', () => {
    expect(matchShape(shapes, 'm1', { ...chat, promptTokensMean: 150 })).toMatchObject({ workload: 'chat' })
    expect(matchShape(shapes, 'm1', { ...doc, promptTokensMean: 1800 })).toMatchObject({ workload: 'doc' })
    expect(matchShape(shapes, 'm1', { ...chat, sharedPrefixRatio: 0.8 })).toMatchObject({ workload: 'shared' })
    expect(matchShape(shapes, 'm2', chat)).toEqual({ workload: 'chat2', distance: 0 })
  })

  it('matches nothing beyond the bound, for another model, or without common features', () => {
    // 512 tokens: a factor of 4 from chat, of 4 from doc
    expect(matchShape(shapes, 'm1', { ...chat, promptTokensMean: 512 })).toBeUndefined()
    expect(matchShape(shapes, 'm3', chat)).toBeUndefined()
    expect(matchShape(shapes, 'm1', { requests: 4 })).toBeUndefined()
    // the bound is a parameter (default SHAPE_MATCH_BOUND)
    expect(SHAPE_MATCH_BOUND).toBe(1)
    expect(matchShape(shapes, 'm1', { ...chat, promptTokensMean: 512 }, 2.1)).toMatchObject({ workload: 'chat' })
  })

  it('breaks ties by the smaller workload name (the same answer on every peer)', () => {
    const twins: KnownShape[] = [{ model: 'm', workload: 'b', features: chat }, { model: 'm', workload: 'a', features: chat }]
    expect(matchShape(twins, 'm', chat)?.workload).toBe('a')
  })

  it('within the bound, a shape that compares methods wins over a nearer one that does not (issue #17: a served batch\'s own shape)', () => {
    const served: KnownShape = { model: 'm', workload: 'serving-n4-p24-o6', features: { ...chat, promptTokensMean: 120 }, methods: 0 }
    const bench: KnownShape = { model: 'm', workload: 'chat-tiny', features: chat, methods: 18 }
    const query = { ...chat, promptTokensMean: 121 }
    expect(matchShape([served, bench], 'm', query)).toEqual({ workload: 'chat-tiny', distance: shapeDistance(query, chat) })
    // one method measured compares nothing either
    expect(matchShape([{ ...served, methods: 1 }, { ...bench, methods: 2 }], 'm', query)?.workload).toBe('chat-tiny')
    // neither compares: the most methods, then the nearest
    expect(matchShape([{ ...served, methods: 1 }, { ...bench, methods: 0 }], 'm', query)?.workload).toBe('serving-n4-p24-o6')
    expect(matchShape([{ ...served, methods: 0 }, { ...bench, methods: 0 }], 'm', query)?.workload).toBe('serving-n4-p24-o6')
    // beyond the bound, evidence does not help
    expect(matchShape([served, { ...bench, features: { ...chat, promptTokensMean: 2000 } }], 'm', query)?.workload).toBe('serving-n4-p24-o6')
  })

  it('among shapes that compare methods, the nearest wins, not the most measured (two benchmark shapes of one family can have different winners)', () => {
    const tiny: KnownShape = { model: 'm', workload: 'classify-n6-p10', features: { ...chat, requests: 6, promptTokensMean: 10 }, methods: 12 }
    const dflt: KnownShape = { model: 'm', workload: 'classify-n8-p16', features: { ...chat, requests: 8, promptTokensMean: 16 }, methods: 18 }
    const query = { ...chat, requests: 6, promptTokensMean: 11 }
    expect(matchShape([dflt, tiny], 'm', query)?.workload).toBe('classify-n6-p10')
    expect(matchShape([dflt, tiny], 'm', { ...query, requests: 8, promptTokensMean: 15 })?.workload).toBe('classify-n8-p16')
    // both within the bound of the query whatever their counts
    expect(shapeDistance(query, dflt.features)).toBeLessThanOrEqual(SHAPE_MATCH_BOUND)
  })
})

describe('knownShapes / validShapes', () => {
  it('keeps one shape per (model, workload), sorted, and checks snapshot input', () => {
    const t = (modelId: string, workload: string, promptTokensMean: number): Parameters<typeof knownShapes>[0][number] => ({ modelId, workload, info: { workload: { features: { promptTokensMean } } } })
    const got = knownShapes([t('m2', 'x', 1), t('m1', 'y', 2), t('m1', 'y', 3), t('m1', 'a', 4)])
    expect(got.map(s => `${s.model}|${s.workload}|${s.features.promptTokensMean}`)).toEqual(['m1|a|4', 'm1|y|2', 'm2|x|1'])
    expect(validShapes(got)).toBe(true)
    expect(validShapes([{ model: 'm', workload: 'w', features: { a: 'x' } }])).toBe(false)
    expect(validShapes({})).toBe(false)
    expect(validShapes([{ model: 'm', workload: 'w', features: {}, methods: 'many' }])).toBe(false)
  })

  it('counts a shape\'s methods as the most of any of its tasks', () => {
    const t = (workload: string, size: number): Parameters<typeof knownShapes>[0][number] => ({ modelId: 'm', workload, info: { workload: { features: {} } }, cells: { size } })
    expect(knownShapes([t('a', 2), t('a', 5), t('a', 3), t('b', 1)]).map(s => s.methods)).toEqual([5, 1])
    // a served batch's shape compares nothing: its methods ran on other prompts as they were chosen
    expect(knownShapes([{ ...t('serving-n3-p80-o6', 4), family: 'serving' }])[0].methods).toBe(0)
  })
})
