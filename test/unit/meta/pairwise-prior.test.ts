import { describe, expect, it } from 'vitest'
import { buildDataset } from '../../../src/meta/dataset.js'
import { getBackend } from '../../../src/meta/ml-forest.js'
import { isPairwisePriorJSON, PairwisePriorModel, priorPredictorOf, residualRows, trainPairwisePrior } from '../../../src/meta/pairwise-prior.js'
import { Pairwise } from '../../../src/meta/safe-default.js'
import { synthHistory } from '../../../src/meta/synthetic.js'

type Body = ReturnType<typeof synthHistory>[number]

/** One task per (hardware, workload) with the given throughputs per method. */
function table (rows: Array<{ hw: number, wl: string, perf: Record<string, number> }>): Body[] {
  const proto = synthHistory({ machines: 3, models: 1, workloads: 1, repeats: 1, seed: 3 })
  const hws = [...new Map(proto.map(b => [b.hardware.id, b.hardware])).values()]
  return rows.flatMap(r => Object.entries(r.perf).map(([m, tps]) => {
    const b = proto[0]
    return { ...b, hardware: hws[r.hw], workload: { ...b.workload, name: r.wl }, method: { id: m, knobs: {} }, result: { ...b.result, ok: true, totalTokensPerSecond: tps, wallMs: 1000 / tps } }
  }))
}

const FO = { nTrees: 5, seed: 1, maxFeatures: 1, minSamplesLeaf: 1 }

describe('pairwise-prior learner', () => {
  // a is 2x b everywhere; c only measured against b (1.5x b)
  const ds = buildDataset(table([
    { hw: 0, wl: 'w1', perf: { a: 200, b: 100 } },
    { hw: 1, wl: 'w1', perf: { a: 400, b: 200, c: 300 } },
    { hw: 2, wl: 'w2', perf: { b: 50, c: 75 } }
  ]))

  it('prior = pairwise advantage summed over the other candidates / the candidates (the scale of ln perf − task mean); an unmeasured pair counts 0', () => {
    const m = new PairwisePriorModel(new Pairwise(ds.tasks), null)
    expect(m.prior('a', ['a', 'b'])).toBeCloseTo(Math.log(2) / 2, 12)
    expect(m.prior('b', ['a', 'b'])).toBeCloseTo(-Math.log(2) / 2, 12)
    // a vs c measured once (400 vs 300), a vs b ln 2
    expect(m.prior('a', ['a', 'b', 'c'])).toBeCloseTo((Math.log(2) + Math.log(4 / 3)) / 3, 12)
    expect(m.prior('x', ['x', 'a'])).toBe(0)
    expect(m.prior('a', ['a'])).toBe(0)
    // without a forest the scores are the prior, with no spread
    expect(m.predictRows([[0], [0]], ['a', 'b'])).toEqual({ mean: [m.prior('a', ['a', 'b']), m.prior('b', ['a', 'b'])], std: [0, 0] })
  })

  it('the residual target is ln perf − task mean − prior: zero where one ranking holds exactly', () => {
    const consistent = buildDataset(table([{ hw: 0, wl: 'w1', perf: { a: 200, b: 100 } }, { hw: 1, wl: 'w2', perf: { a: 60, b: 30 } }]))
    const { X, y } = residualRows(consistent.tasks, new Pairwise(consistent.tasks), (t, m) => t.cells.get(m)?.knobs ?? {})
    expect(X).toHaveLength(4)
    for (const v of y) expect(v).toBeCloseTo(0, 12)
  })

  it('trains, predicts with a spread, and survives a JSON round trip', async () => {
    const backend = await getBackend('histogram')
    const model = await trainPairwisePrior(ds.tasks, backend, FO)
    expect(model.forest).not.toBeNull()
    const json = JSON.parse(JSON.stringify(model.toJSON()))
    expect(isPairwisePriorJSON(json)).toBe(true)
    expect(isPairwisePriorJSON({ ...json, learner: 'other' })).toBe(false)
    const back = PairwisePriorModel.load(json, backend)
    const predict = priorPredictorOf(model, ds.methodKnobs)
    const again = priorPredictorOf(back, ds.methodKnobs)
    const t = ds.tasks[1]
    const cands = ['a', 'b', 'c']
    expect(again(t, cands)).toEqual(predict(t, cands))
    const p = predict(t, cands)
    expect(p.std.every(s => s >= 0)).toBe(true)
    // the consistent ranking a > c > b is kept on this task
    expect(p.mean[0]).toBeGreaterThan(p.mean[2])
    expect(p.mean[2]).toBeGreaterThan(p.mean[1])
  })
})

describe('pairwise-prior learner with boosted trees (boosting.ts) on the residual', () => {
  it('learns a departure from the ranking that the prior alone cannot: a wins on two machines, b on the third', async () => {
    const { boostedBackend } = await import('../../../src/meta/boosting.js')
    const proto = synthHistory({ machines: 3, models: 1, workloads: 1, repeats: 1, seed: 3 })
    const hws = [...new Map(proto.map(b => [b.hardware.id, b.hardware])).values()]
    const knobs: Record<string, Record<string, number>> = { a: { flashAttention: 1 }, b: { flashAttention: 0 } }
    const bodies = [0, 1, 2].flatMap(hw => Array.from({ length: 12 }, (_, w) => Object.entries(hw === 2 ? { a: 100, b: 200 } : { a: 200, b: 100 }).map(([m, tps]) => {
      const b = proto[0]
      return { ...b, hardware: hws[hw], workload: { ...b.workload, name: `w${w}` }, method: { id: m, knobs: knobs[m] }, result: { ...b.result, ok: true, totalTokensPerSecond: tps, wallMs: 1000 / tps } }
    })).flat())
    const ds = buildDataset(bodies)
    const model = await trainPairwisePrior(ds.tasks, boostedBackend, { nTrees: 1, seed: 1 })
    const predict = priorPredictorOf(model, ds.methodKnobs)
    for (const t of ds.tasks) {
      const p = predict(t, ['a', 'b'])
      const winner = p.mean[0] > p.mean[1] ? 'a' : 'b'
      expect(winner, t.key).toBe(t.hardwareId === hws[2].id ? 'b' : 'a')
      for (const s of p.std) expect(s).toBeGreaterThanOrEqual(0)
    }
    // the prior alone ranks a first everywhere (it won on 24 of 36 tasks)
    expect(model.prior('a', ['a', 'b'])).toBeGreaterThan(0)
    // snapshot round trip through the boosted backend
    const back = PairwisePriorModel.load(JSON.parse(JSON.stringify(model.toJSON())), boostedBackend)
    expect(priorPredictorOf(back, ds.methodKnobs)(ds.tasks[0], ['a', 'b'])).toEqual(predict(ds.tasks[0], ['a', 'b']))
  })
})
