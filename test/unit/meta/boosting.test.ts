import { describe, expect, it } from 'vitest'
import { BoostedTrees, boostedBackend, crossFitFolds, trainBoostedTrees } from '../../../src/meta/boosting.js'
import { createRng } from '../../../src/util/random.js'

/** y = a known function of x0, x1 (x2 is noise), with a little noise. */
function data (n: number, seed: number): { X: number[][], y: number[] } {
  const rng = createRng(seed)
  const X: number[][] = []
  const y: number[] = []
  for (let i = 0; i < n; i++) {
    const x = [rng(), rng(), rng()]
    X.push(x)
    y.push(f(x) + 0.02 * (rng() - 0.5))
  }
  return { X, y }
}
const f = (x: number[]): number => (x[0] > 0.5 ? 1 : 0) + 0.5 * x[1]

describe('boosted trees (boosting.ts)', () => {
  const { X, y } = data(600, 1)

  it('learns a known function: held-out error far below the target\'s spread', () => {
    const m = trainBoostedTrees(X, y, { nTrees: 1, seed: 3 })
    const test = data(200, 2)
    const p = m.predict(test.X).mean
    const mse = p.reduce((s, v, i) => s + (v - f(test.X[i])) ** 2, 0) / p.length
    const mu = test.y.reduce((s, v) => s + v, 0) / test.y.length
    const variance = test.y.reduce((s, v) => s + (v - mu) ** 2, 0) / test.y.length
    expect(mse).toBeLessThan(0.05 * variance)
    // early stopping kept some stages in every booster, fewer than the cap
    for (const s of m.stages) { expect(s).toBeGreaterThan(0); expect(s).toBeLessThan(300) }
  })

  it('is deterministic for a seed; another seed gives another model', () => {
    const a = trainBoostedTrees(X, y, { nTrees: 1, seed: 7 }).predict(X.slice(0, 20))
    const b = trainBoostedTrees(X, y, { nTrees: 1, seed: 7 }).predict(X.slice(0, 20))
    const c = trainBoostedTrees(X, y, { nTrees: 1, seed: 8 }).predict(X.slice(0, 20))
    expect(b).toEqual(a)
    expect(c.mean).not.toEqual(a.mean)
  })

  it('uncertainty (spread over the boosters) is non-negative and larger where the training data are sparse and noisy', () => {
    // dense, clean data for x0 < 0.8; six scattered, noisy points beyond
    const rng = createRng(5)
    const Xs: number[][] = []
    const ys: number[] = []
    for (let i = 0; i < 400; i++) { const x = [0.8 * rng(), rng()]; Xs.push(x); ys.push(x[0] + 0.2 * x[1]) }
    for (let i = 0; i < 6; i++) { const x = [0.85 + 0.15 * rng(), rng()]; Xs.push(x); ys.push(rng() * 4 - 2) }
    const m = trainBoostedTrees(Xs, ys, { nTrees: 1, seed: 1 })
    const inside = m.predict(Array.from({ length: 20 }, (_, i) => [0.1 + 0.03 * i, 0.5]))
    const outside = m.predict(Array.from({ length: 20 }, (_, i) => [0.86 + 0.007 * i, 0.5]))
    for (const s of [...inside.std, ...outside.std]) expect(s).toBeGreaterThanOrEqual(0)
    const mean = (a: number[]): number => a.reduce((s, v) => s + v, 0) / a.length
    expect(mean(outside.std)).toBeGreaterThan(2 * mean(inside.std))
  })

  it('the depth is chosen by the cross-fit among the candidates, or fixed by maxDepth', () => {
    // an additive target (no interaction) vs a three-way interaction
    const rng = createRng(9)
    const X3 = Array.from({ length: 800 }, () => [rng(), rng(), rng()])
    const additive = trainBoostedTrees(X3, X3.map(x => x[0] + x[1] + x[2]), { nTrees: 1, seed: 1 })
    const xor = trainBoostedTrees(X3, X3.map(x => ((x[0] > 0.5 ? 1 : 0) ^ (x[1] > 0.5 ? 1 : 0) ^ (x[2] > 0.5 ? 1 : 0))), { nTrees: 1, seed: 1 })
    expect([3, 5, 7]).toContain(additive.params.maxDepth)
    expect([3, 5, 7]).toContain(xor.params.maxDepth)
    expect(trainBoostedTrees(X3, X3.map(x => x[0]), { nTrees: 1, seed: 1, maxDepth: 2 }).params.maxDepth).toBe(2)
  })

  it('cross-fit folds keep a group together and use every fold', () => {
    const groups = Array.from({ length: 100 }, (_, i) => Math.floor(i / 4))
    const folds = crossFitFolds(100, 5, 1, groups)
    for (let i = 0; i < 100; i++) expect(folds[i]).toBe(folds[groups[i] * 4])
    expect(new Set(folds).size).toBe(5)
    // without groups, rows
    expect(new Set(crossFitFolds(10, 5, 1)).size).toBe(5)
  })

  it('one group: a single booster, no held-out rows, spread 0', () => {
    const m = trainBoostedTrees(X.slice(0, 50), y.slice(0, 50), { nTrees: 1, seed: 1, maxStages: 20, groups: X.slice(0, 50).map(() => 0) })
    expect(m.stages).toEqual([20])
    expect(m.predict(X.slice(0, 3)).std).toEqual([0, 0, 0])
  })

  it('snapshot round trip predicts identically; a bad snapshot is a coded error', async () => {
    const m = await boostedBackend.train(X, y, { nTrees: 1, seed: 2 })
    const back = boostedBackend.load(JSON.parse(JSON.stringify(m.toJSON())))
    expect(back.predict(X.slice(0, 30))).toEqual(m.predict(X.slice(0, 30)))
    expect(() => BoostedTrees.load({ format: 'nope' })).toThrow(expect.objectContaining({ code: 'E_BAD_SNAPSHOT' }))
    expect(() => BoostedTrees.load({ ...(m.toJSON() as object), version: 99 })).toThrow(expect.objectContaining({ code: 'E_BAD_SNAPSHOT' }))
  })

  it('bad training data is a coded error', () => {
    expect(() => trainBoostedTrees([], [], { nTrees: 1 })).toThrow(expect.objectContaining({ code: 'E_BAD_TRAINING_DATA' }))
    expect(() => trainBoostedTrees([[1]], [Number.NaN], { nTrees: 1 })).toThrow(expect.objectContaining({ code: 'E_BAD_TRAINING_DATA' }))
  })
})
