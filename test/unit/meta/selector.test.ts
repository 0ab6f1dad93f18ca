import { beforeAll, describe, expect, it } from 'vitest'
import { buildDataset } from '../../../src/meta/dataset.js'
import { synthHistory } from '../../../src/meta/synthetic.js'
import { FEATURE_SCHEMA_VERSION } from '../../../src/meta/features.js'
import { coldStartChoice, load, mostUncertainCells, selectMethod, toJSON, train, type MetaModel, type SelectTask } from '../../../src/meta/selector.js'
import { createRng } from '../../../src/util/random.js'

// small forests: ml-random-forest is slow (rows² per tree), and these tests check policy, not accuracy
const OPTS = { nTrees: 6, seed: 3, now: 1_700_000_000_000 }

describe('meta selector', () => {
  const history = synthHistory({ machines: 2, models: 2, workloads: 5, repeats: 1, failRate: 0 })
  const ds = buildDataset(history)
  let model: MetaModel
  const taskOf = (i: number): SelectTask => ds.tasks[i].info

  beforeAll(async () => {
    model = await train(history, OPTS)
  })

  it('trains the pairwise-prior learner and two forests, and records the snapshot metadata', () => {
    expect(model.schemaVersion).toBe(FEATURE_SCHEMA_VERSION)
    expect(model.rows).toBe(ds.cells.length)
    expect(model.methods).toEqual(ds.methods)
    expect(model.learner).toBe('pairwise-prior')
    expect(model.prior?.forest).not.toBeNull()
    expect(model.forests.speedup).toBeNull()
    expect(model.forests.wallMs).not.toBeNull()
    // every (model, workload) shape of the history, and the settings measured per model
    expect(model.shapes).toHaveLength(new Set(ds.tasks.map(t => t.modelId + '|' + t.workload)).size)
    expect(Object.keys(model.modelMethods).sort()).toEqual([...new Set(ds.tasks.map(t => t.modelId))].sort())
    expect(model.trainedAt).toBe(OPTS.now)
    expect(model.trainingSetHash).toMatch(/^[0-9a-f]{32}$/)
  })

  it('ranks every method with predictions and uncertainty', () => {
    const sel = selectMethod(model, taskOf(0), { objective: 'throughput' })
    expect(sel.coldStart).toBe(false)
    expect(sel.ranking.map(r => r.method).sort()).toEqual(ds.methods)
    expect(sel.choice).toBe(sel.ranking[0].method)
    for (const r of sel.ranking) {
      expect(r.predicted.speedup).toBeGreaterThan(0)
      expect(r.uncertainty).toBeGreaterThanOrEqual(0)
    }
    const speeds = sel.ranking.map(r => r.predicted.speedup as number)
    expect([...speeds].sort((a, b) => b - a)).toEqual(speeds)
    expect(sel.unseen).toEqual([])
  })

  it('latency objective orders by predicted TTFT', () => {
    const sel = selectMethod(model, taskOf(1), { objective: 'latency' })
    const t = sel.ranking.map(r => r.predicted.ttftMs as number)
    expect([...t].sort((a, b) => a - b)).toEqual(t)
  })

  it('enforces a budget as predicted runtime × price/hour ≤ budget', () => {
    const task = taskOf(2)
    const free = selectMethod(model, task, { objective: 'throughput', pricePerHour: 3600 })
    const costs = free.ranking.map(r => r.predicted.cost as number)
    // price 3600 USD/h = 1 USD/s: cost is the predicted wall time in seconds
    free.ranking.forEach(r => expect(r.predicted.cost).toBeCloseTo((r.predicted.wallMs as number) / 1000))
    const budget = (Math.min(...costs) + Math.max(...costs)) / 2
    const sel = selectMethod(model, task, { objective: 'throughput', pricePerHour: 3600, budget })
    for (const r of sel.ranking) expect(r.feasible).toBe((r.predicted.cost as number) <= budget)
    expect(sel.ranking[0].feasible).toBe(true)
    expect(sel.ranking.find(r => !r.feasible)?.reason).toMatch(/budget/)
    // feasible ones come first
    const firstInfeasible = sel.ranking.findIndex(r => !r.feasible)
    expect(sel.ranking.slice(firstInfeasible).every(r => !r.feasible)).toBe(true)
  })

  it('reports when no method meets the budget', () => {
    const sel = selectMethod(model, taskOf(2), { pricePerHour: 3600, budget: 0 })
    expect(sel.ranking.every(r => !r.feasible)).toBe(true)
    expect(sel.reason).toMatch(/no method meets/)
  })

  it('enforces a TTFT SLO', () => {
    const task = taskOf(3)
    const ttfts = selectMethod(model, task, {}).ranking.map(r => r.predicted.ttftMs as number)
    const slo = (Math.min(...ttfts) + Math.max(...ttfts)) / 2
    const sel = selectMethod(model, task, { sloTtftMs: slo })
    for (const r of sel.ranking) expect(r.feasible).toBe((r.predicted.ttftMs as number) <= slo)
    expect((sel.ranking[0].predicted.ttftMs as number) <= slo).toBe(true)
  })

  it('falls back to the documented cold-start rule without a model', () => {
    const shared = { ...taskOf(0), workload: { features: { sharedPrefixRatio: 0.9 } } }
    const a = selectMethod(null, { ...shared, methods: ['baseline', 'prefix-cache', 'parallel-4'] })
    expect(a.coldStart).toBe(true)
    expect(a.choice).toBe('prefix-cache')
    expect(a.reason).toMatch(/cold start.*no trained model/)
    const b = selectMethod(null, { ...shared, workload: { features: { sharedPrefixRatio: 0.1 } }, methods: ['baseline', 'prefix-cache'] })
    expect(b.choice).toBe('baseline')
    expect(coldStartChoice({ ...shared, workload: { features: {} } }, ['x', 'y']).method).toBe('x')
  })

  it('uses the cold-start rule when the history is too small', async () => {
    const tiny = await train(history.slice(0, 6), OPTS)
    const sel = selectMethod(tiny, taskOf(0))
    expect(sel.coldStart).toBe(true)
    expect(sel.reason).toMatch(/only 6 cells/)
  })

  it('gives coded errors for empty history, unknown methods and NaN features', async () => {
    await expect(train([], OPTS)).rejects.toMatchObject({ code: 'E_EMPTY_HISTORY' })
    expect(() => selectMethod(model, { ...taskOf(0), methods: ['warp-drive'] })).toThrow(expect.objectContaining({ code: 'E_UNKNOWN_METHOD' }))
    const bad = { ...taskOf(0), workload: { features: { promptTokensMean: NaN } } }
    expect(() => selectMethod(model, bad)).toThrow(expect.objectContaining({ code: 'E_BAD_FEATURE' }))
    expect(() => selectMethod(null, { ...bad, methods: ['baseline'] })).toThrow(expect.objectContaining({ code: 'E_BAD_FEATURE' }))
    expect(() => selectMethod(null, taskOf(0))).toThrow(expect.objectContaining({ code: 'E_NO_METHODS' }))
  })

  it('flags unseen hardware and models as zero-shot', () => {
    const t = taskOf(0)
    const sel = selectMethod(model, { ...t, hardware: { ...t.hardware, id: 'never-seen' } })
    expect(sel.unseen).toEqual(['hardware'])
    expect(sel.reason).toMatch(/zero-shot/)
  })

  it('explores with UCB only when the rate fires', () => {
    const t = taskOf(4)
    const never = selectMethod(model, t, { explore: { rate: 0.5, rng: () => 0.9 } })
    expect(never.explored).toBe(false)
    const always = selectMethod(model, t, { explore: { rate: 0.5, rng: () => 0.1, c: 100 } })
    expect(always.explored).toBe(true)
    // with a huge c the most uncertain method leads
    const maxStd = Math.max(...always.ranking.map(r => r.uncertainty))
    expect(always.ranking[0].uncertainty).toBe(maxStd)
    const seeded = selectMethod(model, t, { explore: { rate: 1, rng: createRng(1) } })
    expect(seeded.explored).toBe(true)
  })

  it('mostUncertainCells returns the k highest UCB cells', () => {
    const cells = mostUncertainCells(model, [taskOf(0), taskOf(1)], 4, 2)
    expect(cells).toHaveLength(4)
    for (let i = 1; i < cells.length; i++) expect(cells[i - 1].ucb).toBeGreaterThanOrEqual(cells[i].ucb)
    for (const c of cells) expect(c.ucb).toBeCloseTo(c.mean + 2 * c.std)
  })

  it('snapshot round trip gives identical selections', async () => {
    const json = JSON.parse(JSON.stringify(toJSON(model)))
    const back = await load(json)
    expect(back.trainingSetHash).toBe(model.trainingSetHash)
    for (let i = 0; i < 4; i++) {
      expect(selectMethod(back, taskOf(i))).toEqual(selectMethod(model, taskOf(i)))
    }
    const fromString = await load(JSON.stringify(toJSON(model)))
    expect(fromString.rows).toBe(model.rows)
  })

  it('refuses corrupt snapshots and other schema versions with coded errors', async () => {
    const json = JSON.parse(JSON.stringify(toJSON(model)))
    await expect(load('{not json')).rejects.toMatchObject({ code: 'E_SNAPSHOT_CORRUPT' })
    await expect(load({ format: 'other' })).rejects.toMatchObject({ code: 'E_SNAPSHOT_CORRUPT' })
    await expect(load({ ...json, schemaVersion: FEATURE_SCHEMA_VERSION + 1 })).rejects.toMatchObject({ code: 'E_SNAPSHOT_SCHEMA' })
    await expect(load({ ...json, rows: undefined })).rejects.toMatchObject({ code: 'E_SNAPSHOT_CORRUPT' })
    await expect(load({ ...json, forests: { ...json.forests, wallMs: { backend: 'ml-random-forest', width: 3, constant: 0, trees: [{ name: 'junk' }] } } })).rejects.toMatchObject({ code: 'E_SNAPSHOT_CORRUPT' })
    await expect(load({ ...json, backend: 'no-such-backend' })).rejects.toMatchObject({ code: 'E_SNAPSHOT_CORRUPT' })
    await expect(load({ ...json, prior: { learner: 'pairwise-prior', pairwise: {} } })).rejects.toMatchObject({ code: 'E_SNAPSHOT_CORRUPT' })
  })

  it('refuses a snapshot of the learner before the pairwise prior (no learner named) with E_SNAPSHOT_LEARNER', async () => {
    const { learner: _l, prior: _p, ...old } = JSON.parse(JSON.stringify(toJSON(model)))
    await expect(load(old)).rejects.toMatchObject({ code: 'E_SNAPSHOT_LEARNER' })
    await expect(load({ ...old, learner: 'some-future-learner' })).rejects.toMatchObject({ code: 'E_SNAPSHOT_LEARNER' })
  })
})

describe('meta selector: safe default', () => {
  // one machine, five workloads (the shape of the own fixture): too little for the forest to show
  // it beats the fixed rules, so a fixed rule decides and the answer says which
  const history = synthHistory({ machines: 1, models: 1, workloads: 5, repeats: 1, failRate: 0, seed: 7 })
  const ds = buildDataset(history)
  let model: MetaModel

  beforeAll(async () => {
    model = await train(history, OPTS)
  })

  it('answers a known shape with the per-workload best and says so', () => {
    expect(model.safeDefault).toBeDefined()
    expect(model.safeDefault!.seen).toMatchObject({ trusted: false, rule: 'per-workload-best', tasks: 0 })
    for (const t of ds.tasks) {
      const sel = selectMethod(model, t.info, { objective: 'throughput' })
      const measuredBest = [...t.cells.values()].reduce((b, c) => (c.throughput > b.throughput ? c : b)).method
      expect(sel.choice).toBe(measuredBest)
      expect(sel.ranking[0].method).toBe(sel.choice)
      expect(sel.safeDefault?.rule).toBe('per-workload-best')
      expect(sel.reason).toMatch(/^safe default: per-workload-best/)
    }
  })

  it('a snapshot keeps the policy; one without it still answers from the forest', async () => {
    const t = ds.tasks[0].info
    const back = await load(JSON.stringify(toJSON(model)))
    expect(selectMethod(back, t).safeDefault).toEqual(selectMethod(model, t).safeDefault)
    const { safeDefault: _s, ...old } = toJSON(model)
    const legacy = await load(old)
    expect(legacy.safeDefault).toBeUndefined()
    expect(selectMethod(legacy, t).safeDefault).toBeUndefined()
  })

  it('a query without a workload name is matched to the nearest known shape of its model', () => {
    const t = ds.tasks[1]
    const { name: _n, ...rest } = t.info.workload
    // features within the bound (every count × 1.2): the shape's per-workload best answers
    const near = Object.fromEntries(Object.entries(t.info.workload.features).map(([k, v]) => [k, /Ratio|Overlap/.test(k) ? v : v * 1.2]))
    const sel = selectMethod(model, { ...t.info, workload: { ...rest, features: near } })
    const measuredBest = [...t.cells.values()].reduce((b, c) => (c.throughput > b.throughput ? c : b)).method
    expect(sel.safeDefault?.shape).toBe(t.workload)
    expect(sel.safeDefault?.rule).toBe('per-workload-best')
    expect(sel.choice).toBe(measuredBest)
    expect(sel.reason).toMatch(/workload matched to shape/)
  })

  it('other objectives and exploration are not gated', () => {
    const t = ds.tasks[0].info
    expect(selectMethod(model, t, { objective: 'latency' }).safeDefault).toBeUndefined()
    expect(selectMethod(model, t, { explore: { rate: 1, rng: createRng(1) } }).safeDefault).toBeUndefined()
  })
})
