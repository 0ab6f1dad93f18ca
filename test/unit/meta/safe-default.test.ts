import { describe, expect, it } from 'vitest'
import { buildDataset, type Task } from '../../../src/meta/dataset.js'
import { bestOf, checkTrust, checkTrustProfile, chooseZ, FixedRule, Pairwise, perfOf, SAFE_Z, SafeDefault, safeDecision, shapeKey, signTestWins, Z_GRID, Z_RULE, type Predictor } from '../../../src/meta/safe-default.js'
import { synthHistory } from '../../../src/meta/synthetic.js'

type Body = ReturnType<typeof synthHistory>[number]

/** Bodies of one task per (hardware, workload) with the given throughputs per method. */
function table (rows: Array<{ hw: number, wl: string, perf: Record<string, number> }>): Body[] {
  const proto = synthHistory({ machines: 3, models: 1, workloads: 1, repeats: 1, seed: 3 })
  const hws = [...new Map(proto.map(b => [b.hardware.id, b.hardware])).values()]
  const out: Body[] = []
  for (const r of rows) {
    for (const [m, tps] of Object.entries(r.perf)) {
      const b = proto[0]
      out.push({ ...b, hardware: hws[r.hw], workload: { ...b.workload, name: r.wl }, method: { id: m, knobs: {} }, result: { ...b.result, ok: true, totalTokensPerSecond: tps, wallMs: 1000 / tps } })
    }
  }
  return out
}

describe('safe default: fixed rules', () => {
  it('pairwise scoring does not reward a method for the absence of a stronger one', () => {
    // b looks best on average (it only ran where c did not), but loses to a wherever both ran
    const ds = buildDataset(table([
      { hw: 0, wl: 'w1', perf: { a: 100, b: 90 } },
      { hw: 1, wl: 'w1', perf: { a: 100, b: 90 } },
      { hw: 2, wl: 'w1', perf: { a: 10, c: 50 } }
    ]))
    const pw = new Pairwise(ds.tasks)
    expect(pw.of('a', 'b')).toBeGreaterThan(0)
    expect(bestOf(pw, ['a', 'b'])).toBe('a')
    // a snapshot of the evidence chooses the same
    const again = Pairwise.fromJSON(JSON.parse(JSON.stringify(pw.toJSON())))
    expect(again.of('a', 'b')).toBeCloseTo(pw.of('a', 'b') as number, 12)
    expect(bestOf(again, ['a', 'b', 'c'])).toBe(bestOf(pw, ['a', 'b', 'c']))
  })

  it('per-workload-best uses the shape, single-best everywhere else', () => {
    const ds = buildDataset(table([
      { hw: 0, wl: 'short', perf: { a: 100, b: 50 } },
      { hw: 1, wl: 'short', perf: { a: 100, b: 50 } },
      { hw: 0, wl: 'long', perf: { a: 50, b: 60 } }
    ]))
    const rule = FixedRule.fromTasks(ds.tasks)
    const model = ds.tasks[0].modelId
    expect(rule.choose(shapeKey(model, 'long'), ['a', 'b'])).toEqual({ method: 'b', rule: 'per-workload-best' })
    expect(rule.choose(shapeKey(model, 'unseen'), ['a', 'b'])).toEqual({ method: 'a', rule: 'single-best' })
    expect(rule.choose(shapeKey(model, 'long'), ['a', 'b'], 'single-best')).toEqual({ method: 'a', rule: 'single-best' })
    const back = FixedRule.fromJSON(JSON.parse(JSON.stringify(rule.toJSON())))
    expect(back.choose(shapeKey(model, 'long'), ['a', 'b'])).toEqual({ method: 'b', rule: 'per-workload-best' })
  })
})

describe('safe default: the per-task gate', () => {
  it('keeps the fixed choice when the predicted gain is within the spread', () => {
    const d = safeDecision([{ method: 'a', mean: 0.10, std: 0.2 }, { method: 'b', mean: 0, std: 0.2 }], 'b')
    expect(d).toMatchObject({ choice: 'b', learnerChoice: 'a', safe: true })
    expect(d.margin).toBeCloseTo(Math.SQRT2 * 0.2, 12)
  })

  it('takes the learner choice when the gain exceeds the spread', () => {
    const d = safeDecision([{ method: 'a', mean: 0.5, std: 0.1 }, { method: 'b', mean: 0, std: 0.1 }], 'b')
    expect(d).toMatchObject({ choice: 'a', safe: false })
    expect(d.gain).toBeCloseTo(0.5, 12)
  })

  it('agreement is not a safe-default answer; z widens the margin', () => {
    expect(safeDecision([{ method: 'a', mean: 1, std: 0 }, { method: 'b', mean: 0, std: 0 }], 'a')).toMatchObject({ choice: 'a', safe: false })
    expect(safeDecision([{ method: 'a', mean: 0.5, std: 0.1 }, { method: 'b', mean: 0, std: 0.1 }], 'b', 5)).toMatchObject({ choice: 'b', safe: true })
  })
})

describe('safe default: the nested trust check', () => {
  const ds = buildDataset(synthHistory({ machines: 3, models: 1, workloads: 6, repeats: 1, seed: 5 }))
  const truth: Predictor = (t: Task, cands) => {
    const p = perfOf(t)
    return { mean: cands.map(m => Math.log(Math.max(1e-9, p.get(m) as number))), std: cands.map(() => 0) }
  }
  const inverted: Predictor = (t, cands) => { const r = truth(t, cands); return { mean: r.mean.map(x => -x), std: r.std } }

  it('trusts a learner that is right on held-out tasks, not one that is wrong', async () => {
    const good = await checkTrust(ds.tasks, async () => truth, { grouping: 'hardware' })
    expect(good.trusted).toBe(true)
    expect(good.learnerRegret).toBe(0)
    expect(good.folds).toBe(3)
    expect(good.tasks).toBe(ds.tasks.length)
    const bad = await checkTrust(ds.tasks, async () => inverted, { grouping: 'hardware' })
    expect(bad.trusted).toBe(false)
    // untrusted: the fixed rule answers, and no z of the grid let the inverted learner beat it
    expect(bad.learnerRegret).toBe(bad.fixedRegret)
    for (const z of Z_GRID.filter(Number.isFinite)) expect(bad.zRegret[String(z)]).toBeGreaterThan(bad.fixedRegret)
  })

  it('a history with one task keeps the fixed rule', async () => {
    const one = await checkTrust(ds.tasks.slice(0, 1), async () => truth, { grouping: 'random' })
    expect(one).toMatchObject({ trusted: false, rule: 'single-best', folds: 0 })
  })

  it('checks known and unseen shapes apart, and the policy applies the matching one', async () => {
    const p = await checkTrustProfile(ds.tasks, async () => truth)
    expect(p.seen.grouping).toBe('hardware')
    expect(p.unseen.grouping).toBe('workload')
    expect(p.unseen.rule).toBe('single-best')
    const bad = await SafeDefault.train(ds.tasks, async () => inverted)
    expect(bad.policy.seen.trusted).toBe(false)
    const t = ds.tasks[0]
    const cands = [...t.cells.keys()].sort()
    const pred = inverted(t, cands)
    const scored = cands.map((method, i) => ({ method, mean: pred.mean[i], std: 0 }))
    const a = bad.policy.decide(shapeKey(t.modelId, t.workload), scored)
    // an untrusted learner never decides: the answer is the fixed rule's, and says so
    expect(a.choice).toBe(bad.policy.fixed.choose(shapeKey(t.modelId, t.workload), cands, a.rule).method)
    expect(a.trusted).toBe(false)
    expect(a.reason).toMatch(/^safe default: /)
    const good = await SafeDefault.train(ds.tasks, async () => truth)
    const back = SafeDefault.fromJSON(JSON.parse(JSON.stringify(good.policy.toJSON())))
    expect(back.seen).toEqual(good.policy.seen)
    const tp = truth(t, cands)
    const best = back.decide(shapeKey(t.modelId, t.workload), cands.map((method, i) => ({ method, mean: tp.mean[i], std: 0 })))
    expect(best.trusted).toBe(true)
    expect(perfOf(t).get(best.choice)).toBe(Math.max(...cands.map(m => perfOf(t).get(m) as number)))
  })

  it('a known shape on a known machine is its own situation: checked by holding out tasks, not hosts', async () => {
    const p = await checkTrustProfile(ds.tasks, async () => truth)
    expect(p.seenHost.grouping).toBe('random')
    const good = await SafeDefault.train(ds.tasks, async () => truth)
    const t = ds.tasks[0]
    const cands = [...t.cells.keys()].sort()
    const tp = truth(t, cands)
    const scored = cands.map((method, i) => ({ method, mean: tp.mean[i], std: 0 }))
    const shape = shapeKey(t.modelId, t.workload)
    // trusted on known machines only: the learner decides there, the fixed rule on a new machine
    const split = new SafeDefault(good.policy.fixed, { ...good.policy.seen, trusted: false }, good.policy.unseen, good.policy.z, good.policy.newModel, { ...good.policy.seen, trusted: true })
    const onKnown = split.decide(shape, scored, true)
    expect(onKnown.trusted).toBe(true)
    expect(perfOf(t).get(onKnown.choice)).toBe(Math.max(...cands.map(m => perfOf(t).get(m) as number)))
    const onNew = split.decide(shape, scored, false)
    expect(onNew.trusted).toBe(false)
    expect(onNew.reason).toMatch(/known workload shape\)/)
    expect(split.decide(shape, scored, true).reason).not.toMatch(/safe default/)
    // it survives a snapshot; older snapshots (no seenHost) answer by the known-shape check
    const back = SafeDefault.fromJSON(JSON.parse(JSON.stringify(split.toJSON())))
    expect(back.decide(shape, scored, true).trusted).toBe(true)
    const { seenHost: _s, ...old } = split.toJSON()
    expect(SafeDefault.fromJSON(old).decide(shape, scored, true).trusted).toBe(false)
  })

  it('a model the history does not hold is its own situation: checked by holding out models, untrusted with one model', async () => {
    const p = await checkTrustProfile(ds.tasks, async () => truth)
    // one model in this history: no evidence for a new model, the learner is not trusted there
    expect(p.newModel).toMatchObject({ trusted: false, rule: 'single-best', tasks: 0, grouping: 'model' })
    const good = await SafeDefault.train(ds.tasks, async () => truth)
    expect(good.policy.unseen.trusted).toBe(true)
    expect(good.policy.newModel?.trusted).toBe(false)
    const t = ds.tasks[0]
    const cands = [...t.cells.keys()].sort()
    const inv = inverted(t, cands)
    const scored = cands.map((method, i) => ({ method, mean: inv.mean[i], std: 0 }))
    // an unseen shape of a known model: the (trusted) learner decides
    expect(good.policy.decide(shapeKey(t.modelId, 'no-such-shape'), scored).trusted).toBe(true)
    // any shape of another model, or no shape with another model id: the fixed rule, saying why
    for (const a of [good.policy.decide(shapeKey('other-model', t.workload), scored), good.policy.decide(undefined, scored, true, 'other-model')]) {
      expect(a.trusted).toBe(false)
      expect(a.choice).toBe(good.policy.fixed.choose(undefined, cands).method)
      expect(a.reason).toMatch(/model not in the history/)
    }
    // older snapshots (no newModel) keep answering by the unseen-shape check
    const { newModel: _n, ...old } = good.policy.toJSON()
    expect(SafeDefault.fromJSON(old).decide(shapeKey('other-model', t.workload), scored).trusted).toBe(true)
  })
})

describe('safe default: the gate\'s z, chosen per situation on held-out tasks', () => {
  const grid = [0, 0.5, 1, Infinity]

  // rule `min` alone: the lowest mean (the daemon's rule adds the fold and sign-test guards, below)
  it('z = 0 wins when always following the learner has the lowest held-out regret', () => {
    // rows: grid z; columns: held-out tasks. Infinity is the fixed rule.
    const c = chooseZ(grid, [[0, 0, 0.1], [0, 0.2, 0.1], [0.3, 0.2, 0.1], [0.3, 0.2, 0.1]], 'min')
    expect(c.z).toBe(0)
    expect(c.mean[0]).toBeCloseTo(0.1 / 3, 12)
  })

  it('Infinity (the fixed rule) wins when every finite z is worse', () => {
    expect(chooseZ(grid, [[0.5, 0.5], [0.4, 0.2], [0.2, 0.2], [0.1, 0.2]], 'min').z).toBe(Infinity)
  })

  it('an intermediate z wins when the learner is right only where its gain is large against its spread', () => {
    expect(chooseZ(grid, [[0.3, 0], [0, 0], [0, 0.2], [0.2, 0.2]], 'min').z).toBe(0.5)
  })

  it('ties go to the larger z, the one that overrides the fixed rule less often', () => {
    expect(chooseZ(grid, [[0.1, 0], [0, 0.1], [0.05, 0.05], [0.2, 0.2]], 'min').z).toBe(1)
    // a finite z that only equals the fixed rule is not chosen: Infinity is the larger
    expect(chooseZ(grid, [[0.2, 0.3], [0.2, 0.2], [0.2, 0.2], [0.2, 0.2]], 'min').z).toBe(Infinity)
    // float noise is a tie
    expect(chooseZ(grid, [[0.1 + 1e-15], [0.1], [0.3], [0.3]], 'min').z).toBe(0.5)
  })

  it('a z with no held-out task is never chosen', () => {
    expect(chooseZ(grid, [[], [], [], []]).z).toBe(Infinity)
  })

  it('the daemon\'s rule: a mean moved by one or two tasks is not evidence (sign test)', () => {
    expect(Z_RULE).toBe('tested')
    const fixed = Array.from({ length: 30 }, () => 0.05)
    const lucky = fixed.map((v, k) => (k < 2 ? 0 : v))
    const fold = fixed.map((_, k) => k % 3)
    // lower mean, but 2 wins and no loss: p = 0.25, the fixed rule stays
    expect(chooseZ([0, Infinity], [lucky, fixed], 'min', fold).z).toBe(0)
    expect(chooseZ([0, Infinity], [lucky, fixed], 'tested', fold).z).toBe(Infinity)
    // 6 wins, 1 loss spread over the folds: p = 0.0625 → not yet; 7 wins, 1 loss: p = 0.035 → chosen
    const six = fixed.map((v, k) => (k < 6 ? 0 : k === 29 ? 0.06 : v))
    const seven = fixed.map((v, k) => (k < 7 ? 0 : k === 29 ? 0.06 : v))
    expect(signTestWins(six, fixed)).toBe(false)
    expect(signTestWins(seven, fixed)).toBe(true)
    expect(chooseZ([0, Infinity], [seven, fixed], 'tested', fold).z).toBe(0)
  })

  it('the daemon\'s rule: a z that loses to the fixed rule on one inner fold is not chosen, whatever its mean', () => {
    const fixed = Array.from({ length: 30 }, () => 0.05)
    const fold = fixed.map((_, k) => k % 3)
    // wins big on folds 0 and 1, loses on fold 2
    const uneven = fixed.map((v, k) => (k % 3 === 2 ? (k === 2 ? 0.2 : v) : 0))
    expect(chooseZ([0, Infinity], [uneven, fixed], 'min', fold).z).toBe(0)
    expect(chooseZ([0, Infinity], [uneven, fixed], 'every-fold', fold).z).toBe(Infinity)
    expect(chooseZ([0, Infinity], [uneven, fixed], 'tested', fold).z).toBe(Infinity)
    // a safer z that wins on every fold is chosen instead
    const steady = fixed.map((v, k) => (k % 3 === 0 || k % 10 === 1 || k === 5 ? 0 : v))
    expect(chooseZ([0, 1, Infinity], [uneven, steady, fixed], 'tested', fold).z).toBe(1)
  })

  const ds = buildDataset(synthHistory({ machines: 3, models: 1, workloads: 6, repeats: 1, seed: 5 }))
  const truthWide: Predictor = (t: Task, cands) => {
    const p = perfOf(t)
    // right about every task, but its trees disagree widely: the fixed z = 1 never lets it through
    return { mean: cands.map(m => Math.log(Math.max(1e-9, p.get(m) as number))), std: cands.map(() => 50) }
  }

  it('the check trusts a right learner with a wide spread at a small z, where the fixed z = 1 rule never did', async () => {
    const calibrated = await checkTrust(ds.tasks, async () => truthWide, { grouping: 'random' })
    expect(calibrated.trusted).toBe(true)
    expect(calibrated.z).toBe(0)
    expect(calibrated.learnerRegret).toBe(0)
    expect(calibrated.fixedRegret).toBeGreaterThan(0)
    expect(calibrated.zRegret.Infinity).toBe(calibrated.fixedRegret)
    expect(new Set(Object.keys(calibrated.zRegret))).toEqual(new Set(Z_GRID.map(String)))
    // the evidence behind it is reported: z = 0 wins held-out tasks, loses none, loses no inner fold
    expect(calibrated.zTest['0']).toMatchObject({ losses: 0, foldsLost: 0 })
    expect(calibrated.zTest['0'].wins).toBeGreaterThanOrEqual(5)
    expect(calibrated.zTest['0'].t).toBeGreaterThan(0)
    // the grid [1] is the rule before per-situation z: the spread hides the learner's wins
    const fixedZ = await checkTrust(ds.tasks, async () => truthWide, { grouping: 'random', grid: [1] })
    expect(fixedZ).toMatchObject({ trusted: false, z: null })
    expect(fixedZ.learnerRegret).toBe(fixedZ.fixedRegret)
  })

  it('the policy answers with the situation\'s z and says so; its snapshot keeps it', async () => {
    const { policy } = await SafeDefault.train(ds.tasks, async () => truthWide)
    expect(policy.unseen).toMatchObject({ trusted: true, z: 0 })
    expect(policy.z).toBe(SAFE_Z)
    const t = ds.tasks[0]
    const cands = [...t.cells.keys()].sort()
    const tp = truthWide(t, cands)
    const scored = cands.map((method, i) => ({ method, mean: tp.mean[i], std: tp.std[i] }))
    const best = cands.reduce((b, m) => ((perfOf(t).get(m) as number) > (perfOf(t).get(b) as number) ? m : b))
    const back = SafeDefault.fromJSON(JSON.parse(JSON.stringify(policy.toJSON())))
    const a = back.decide(shapeKey(t.modelId, 'no-such-shape'), scored)
    expect(a).toMatchObject({ trusted: true, choice: best })
    if (a.choice !== policy.fixed.choose(undefined, cands).method) expect(a.reason).toMatch(/^learner: .*z = 0 chosen on held-out tasks for a unseen workload shape/)
  })

  it('an older snapshot (no z per situation) reads with its global z, as it was trained; a malformed z falls back to it', () => {
    const t = ds.tasks[0]
    const cands = [...t.cells.keys()].sort()
    const fixed = FixedRule.fromTasks(ds.tasks)
    const d = fixed.choose(undefined, cands).method
    const other = cands.find(m => m !== d) as string
    // the learner prefers another method by 0.5 ln with trees spread 0.5 each: margin at z = 1 is 0.71
    const scored = cands.map(method => ({ method, mean: method === other ? 0.5 : 0, std: 0.5 }))
    const json = new SafeDefault(fixed, { trusted: false, rule: 'single-best' }, { trusted: true, rule: 'single-best', z: 0 }).toJSON()
    expect(SafeDefault.fromJSON(json).decide(undefined, scored, true, t.modelId)).toMatchObject({ choice: other, safe: false })
    const { z: _z, ...oldUnseen } = json.unseen
    const old = SafeDefault.fromJSON({ ...json, unseen: oldUnseen })
    const a = old.decide(undefined, scored, true, t.modelId)
    expect(a).toMatchObject({ choice: d, safe: true, trusted: true })
    expect(a.reason).toMatch(/\(z = 1\)$/)
    for (const bad of [-1, 'x', null]) {
      const b = SafeDefault.fromJSON({ ...json, unseen: { ...oldUnseen, z: bad as unknown as number } })
      expect(b.decide(undefined, scored, true, t.modelId).choice).toBe(d)
    }
  })
})
