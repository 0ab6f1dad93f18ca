import { describe, expect, it } from 'vitest'
import { buildDataset } from '../../../src/meta/dataset.js'
import { BOOSTED_ROW, BOOSTED_SAFE_ROW, evaluate, formatEvalTable, formatPerHost, kmeans, makeFolds, SKLEARN_PRIOR_ROW } from '../../../src/meta/eval.js'
import { synthHistory } from '../../../src/meta/synthetic.js'

describe('meta eval (grouped cross-validation)', () => {
  // methods win in different contexts (see src/meta/synthetic.ts): a selector that reads the
  // task must beat random choice and the single best method
  const ds = buildDataset(synthHistory({ machines: 3, models: 2, workloads: 6, repeats: 1, seed: 5 }))

  it('leave-one-group-out folds never share a group between train and test', () => {
    const folds = makeFolds(ds.tasks, 'hardware', 1)
    expect(folds).toHaveLength(3)
    for (const f of folds) expect(new Set(f.map(t => t.hardwareId)).size).toBe(1)
    expect(folds.flat()).toHaveLength(ds.tasks.length)
    const random = makeFolds(ds.tasks, 'random', 1)
    expect(random).toHaveLength(5)
    expect(random.flat()).toHaveLength(ds.tasks.length)
  })

  it('a split with a single group is a coded error', () => {
    const one = buildDataset(synthHistory({ machines: 1, models: 1, workloads: 2, repeats: 1 }))
    expect(() => makeFolds(one.tasks, 'hardware', 1)).toThrow(expect.objectContaining({ code: 'E_EVAL_SPLIT' }))
  })

  it('random forest beats random choice; oracle is perfect', async () => {
    const r = await evaluate(ds, { split: 'hardware', nTrees: 6, seed: 2 })
    const row = (n: string) => r.rows.find(x => x.selector === n)!
    expect(r.rows.map(x => x.selector)).toEqual(['random', 'single-best', 'per-workload-best', 'isac', 'knn', 'random-forest', 'oracle'])
    expect(r.reference.counts).toEqual({ 'default-setting': r.tasks })
    expect(r.grouping).toBe('host')
    expect(r.rows.some(x => x.default === true)).toBe(false)
    expect(row('oracle')).toMatchObject({ top1: 1, top1Within3pct: 1, regret: 0, oracleShare: 1 })
    expect(row('random').top1).toBeCloseTo(1 / ds.methods.length, 1)
    expect(row('random-forest').top1).toBeGreaterThan(row('random').top1 + 0.2)
    expect(row('random-forest').regret).toBeLessThan(row('random').regret)
    expect(row('random-forest').speedupOverBaseline).toBeGreaterThan(row('random').speedupOverBaseline)
    expect(row('random-forest').oracleShare).toBeGreaterThan(row('single-best').oracleShare)
    for (const x of r.rows) {
      expect(x.top1Within3pct).toBeGreaterThanOrEqual(x.top1)
      expect(x.regret).toBeGreaterThanOrEqual(0)
    }
    expect(formatEvalTable(r)).toMatch(/random-forest/)
  }, 180_000)

  it('a history without a baseline method is evaluated against each task\'s median setting', async () => {
    const noBase = buildDataset(synthHistory({ machines: 2, models: 1, workloads: 2, repeats: 1 }).filter(b => b.method.id !== 'baseline'))
    const r = await evaluate(noBase, { split: 'hardware', nTrees: 3, mlRandomForest: false, backends: { 'histogram-forest': (await import('../../../src/meta/ml-forest.js')).mlForestBackend } })
    expect(r.tasks).toBe(noBase.tasks.length)
    expect(r.reference.counts).toEqual({ 'median-setting': noBase.tasks.length })
    const oracle = r.rows.find(x => x.selector === 'oracle')!
    // the median setting is never the best of several distinct throughputs
    expect(oracle.speedupOverBaseline).toBeGreaterThan(1)
    // the daemon's default is the pairwise-prior learner behind the safe-default rule, reported with its decisions
    expect(r.rows.filter(x => x.default === true).map(x => x.selector)).toEqual(['histogram-forest+pairwise-prior+safe-default'])
    expect(r.rows.find(x => x.selector === 'histogram-forest')!.default).toBeUndefined()
    expect(r.rows.find(x => x.selector === 'histogram-forest+safe-default')!.default).toBeUndefined()
    expect(r.rows.find(x => x.selector === 'histogram-forest+pairwise-prior')!.default).toBeUndefined()
    const sd = r.safeDefault!
    expect(sd.checks).toHaveLength(r.folds)
    expect(sd.untrusted + sd.gated + sd.learner).toBeLessThanOrEqual(r.tasks)
  })

  it('stronger learners are rows on the same folds; per-host regret averages back to each row\'s mean', async () => {
    const { getBackend } = await import('../../../src/meta/ml-forest.js')
    const r = await evaluate(ds, { split: 'workload', nTrees: 4, mlRandomForest: false, strongerLearners: true, backends: { 'histogram-forest': await getBackend('histogram') } })
    const names = r.rows.map(x => x.selector)
    for (const n of [BOOSTED_ROW, BOOSTED_SAFE_ROW, SKLEARN_PRIOR_ROW]) expect(names).toContain(n)
    expect(r.rows.filter(x => x.default === true).map(x => x.selector)).toEqual(['histogram-forest+pairwise-prior+safe-default'])
    expect(r.boostedSafeDefault!.checks).toHaveLength(r.folds)
    // every task belongs to one host: 3 machines in the synthetic history
    expect(r.perHost).toHaveLength(3)
    expect(r.perHost.reduce((s, h) => s + h.tasks, 0)).toBe(r.tasks)
    for (const row of r.rows) {
      const pooled = r.perHost.reduce((s, h) => s + h.tasks * h.regret[row.selector], 0) / r.tasks
      expect(pooled, row.selector).toBeCloseTo(row.regret, 9)
    }
    expect(r.perHost.every(h => h.regret.oracle === 0)).toBe(true)
    const text = formatPerHost(r)
    expect(text).toMatch(/mean regret per host \(3 hosts/)
    expect(text).toContain(BOOSTED_ROW)
    // without them
    const lean = await evaluate(ds, { split: 'workload', nTrees: 2, mlRandomForest: false, strongerLearners: false, backends: { 'histogram-forest': await getBackend('histogram') } })
    expect(lean.rows.map(x => x.selector)).not.toContain(BOOSTED_ROW)
    expect(lean.boostedSafeDefault).toBeUndefined()
  }, 180_000)

  it('counts the tasks it cannot score instead of dropping them silently', async () => {
    const h = synthHistory({ machines: 2, models: 1, workloads: 2, repeats: 1 })
    const lone = { ...h[0], workload: { ...h[0].workload, name: 'lonely' } }
    const failed = { ...h[0], workload: { ...h[0].workload, name: 'allfail' }, result: { ...h[0].result, ok: false, error: 'E_X' } }
    const r = await evaluate(buildDataset([...h, lone, failed]), { split: 'hardware', nTrees: 2, mlRandomForest: false })
    expect(r.excluded).toEqual({ 'single-method': 1, 'no-ok-measurement': 1 })
    expect(formatEvalTable(r)).toMatch(/excluded tasks: .*single-method 1/)
  })

  it('empty history is E_EMPTY_HISTORY with the exclusion counts', async () => {
    const h = synthHistory({ machines: 2, models: 1, workloads: 1, repeats: 1 }).filter(b => b.method.id === 'baseline')
    await expect(evaluate(buildDataset(h), { split: 'hardware' })).rejects.toMatchObject({ code: 'E_EMPTY_HISTORY', message: expect.stringMatching(/single-method: 2/) })
  })

  it('k-means separates two obvious clusters', () => {
    const pts = [[0, 0], [0.1, 0], [0, 0.1], [10, 10], [10.1, 10], [10, 10.1]]
    const { assign } = kmeans(pts, 2, 1)
    expect(new Set(assign.slice(0, 3)).size).toBe(1)
    expect(new Set(assign.slice(3)).size).toBe(1)
    expect(assign[0]).not.toBe(assign[3])
  })
})
