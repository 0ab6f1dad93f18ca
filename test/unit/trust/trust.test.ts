import { describe, expect, it } from 'vitest'
import { authorMedians, plainMedian, robustCellValue, weightedMedian } from '../../../src/meta/aggregate.js'
import { ClaimIndex, compareClaim, computeTrust, DEFAULT_TRUST_PARAMS, emptyEvidence, scoreOf, spotCheckEvidence, statusOf, unknownAuthorWeight, type AuthorEvidence, type ClaimBody } from '../../../src/trust/trust.js'
import { pickSpotChecks } from '../../../src/trust/spotcheck.js'
import { createPeerGuard } from '../../../src/net/guard.js'
import { buildDataset } from '../../../src/meta/dataset.js'
import { synthHistory } from '../../../src/meta/synthetic.js'

describe('weighted median', () => {
  it('equal weights give the ordinary median; ties at the half average the neighbours', () => {
    expect(weightedMedian([1, 5, 3].map(value => ({ value, weight: 1 })))).toBe(3)
    expect(weightedMedian([1, 2, 3, 4].map(value => ({ value, weight: 1 })))).toBe(2.5)
    expect(plainMedian([10])).toBe(10)
  })

  it('weight moves it, a minority of weight cannot drag it past the majority', () => {
    expect(weightedMedian([{ value: 1, weight: 3 }, { value: 100, weight: 1 }])).toBe(1)
    // two liars at 1000 with 0.9 weight total versus honest 10/11/12 with weight 1 each
    expect(weightedMedian([{ value: 10, weight: 1 }, { value: 11, weight: 1 }, { value: 12, weight: 1 }, { value: 1000, weight: 0.45 }, { value: 1000, weight: 0.45 }])).toBe(11)
    expect(weightedMedian([{ value: 1, weight: 1 }, { value: 9, weight: 4 }])).toBe(9)
  })

  it('ignores zero, negative and non-finite entries; NaN when nothing is left', () => {
    expect(weightedMedian([{ value: 1, weight: 0 }, { value: 7, weight: 1 }, { value: NaN, weight: 5 }, { value: 3, weight: -1 }])).toBe(7)
    expect(weightedMedian([])).toBeNaN()
    expect(weightedMedian([{ value: 1, weight: 0 }])).toBeNaN()
  })
})

describe('robust cell value', () => {
  it('one author = one voice: repeating a claim adds no weight', () => {
    const claims = [
      ...Array.from({ length: 1000 }, () => ({ author: 'liar', value: 500 })),
      { author: 'a', value: 10 }, { author: 'b', value: 12 }
    ]
    expect(authorMedians(claims).get('liar')).toBe(500)
    const r = robustCellValue(claims, () => 1)
    expect(r.authors).toBe(3)
    expect(r.value).toBe(12)
    // the plain median over records would follow the liar
    expect(plainMedian(claims.map(c => c.value))).toBe(500)
  })

  it('weight 0 excludes an author', () => {
    const r = robustCellValue([{ author: 'x', value: 1 }, { author: 'y', value: 100 }], a => (a === 'x' ? 0 : 1))
    expect(r).toEqual({ value: 100, authors: 1, weight: 1 })
  })
})

function ev (over: Partial<AuthorEvidence>): AuthorEvidence {
  return { ...emptyEvidence(), ...over }
}

describe('trust scores and weights', () => {
  it('agreement raises the score, disagreement lowers it, equivocation zeroes it, violations halve it', () => {
    const base = scoreOf(ev({}))
    expect(base).toBe(0.5)
    expect(scoreOf(ev({ agree: 5 }))).toBeGreaterThan(base)
    expect(scoreOf(ev({ disagree: 3 }))).toBeLessThan(DEFAULT_TRUST_PARAMS.minScore)
    expect(scoreOf(ev({ agree: 50, equivocations: 1 }))).toBe(0)
    expect(scoreOf(ev({ agree: 5, violations: DEFAULT_TRUST_PARAMS.violationHalving }))).toBeCloseTo(scoreOf(ev({ agree: 5 })) / 2)
    expect(statusOf(ev({ agree: 5 }), false)).toBe('proven')
    expect(statusOf(ev({ agree: 1 }), false)).toBe('unproven')
    expect(statusOf(ev({ disagree: 4 }), false)).toBe('distrusted')
    expect(statusOf(ev({ equivocations: 1 }), false)).toBe('equivocator')
    expect(statusOf(ev({ disagree: 9 }), true)).toBe('self')
  })

  it('1000 fresh identities together weigh at most one proven author', () => {
    const evidence = new Map<string, AuthorEvidence>([['me', ev({})], ['honest', ev({ agree: 20 })]])
    for (let i = 0; i < 1000; i++) evidence.set(`sybil${i}`, ev({ cells: 50 }))
    const t = computeTrust(evidence, 'me')
    expect(t.get('me')!.weight).toBe(1)
    const proven = t.get('honest')!.weight
    expect(t.get('honest')!.status).toBe('proven')
    let sybils = 0
    for (const [a, x] of t) if (a.startsWith('sybil')) { sybils += x.weight; expect(x.status).toBe('unproven') }
    expect(sybils).toBeLessThanOrEqual(DEFAULT_TRUST_PARAMS.unprovenCap + 1e-9)
    expect(sybils).toBeLessThanOrEqual(proven * 1.1)
    // a newcomer not yet in the table shares the cap too
    expect(unknownAuthorWeight(t)).toBeLessThanOrEqual(1 / 1000)
    // with few newcomers the cap does not bind
    const few = computeTrust(new Map([['me', ev({})], ['new', ev({})]]), 'me')
    expect(few.get('new')!.weight).toBe(DEFAULT_TRUST_PARAMS.newcomerWeight)
  })

  it('a liar truthful on most cells to earn trust is not proven by them', () => {
    expect(statusOf(ev({ agree: 10, disagree: 2 }), false)).not.toBe('proven')
    expect(statusOf(ev({ agree: 10, disagree: 0 }), false)).toBe('proven')
  })

  it('distrusted authors and equivocators weigh 0', () => {
    const t = computeTrust(new Map([['me', ev({})], ['liar', ev({ disagree: 5 })], ['eq', ev({ agree: 9, equivocations: 1 })]]), 'me')
    expect(t.get('liar')!.weight).toBe(0)
    expect(t.get('eq')!.weight).toBe(0)
  })
})

function claim (author: string, method: string, tps: number, opts: { hw?: string, cpu?: string, workload?: string, ok?: boolean } = {}): ClaimBody {
  return {
    author,
    hardware: { id: opts.hw ?? 'hw1', cpuModel: opts.cpu ?? 'cpuA', cores: 8, threads: 8, ramMiB: 1, gpus: [], backend: 'cpu', os: 'linux', pricePerHour: 0 },
    model: { id: 'm1' } as ClaimBody['model'],
    workload: { family: 'chat', name: opts.workload ?? 'w1', features: {} },
    method: { id: method, knobs: {} },
    result: { ok: opts.ok ?? true, totalTokensPerSecond: tps } as ClaimBody['result']
  }
}

describe('spot-check evidence', () => {
  it('compares claims with own measurements on the same machine, one verdict per author and cell', () => {
    const ix = new ClaimIndex()
    for (const [m, v] of [['a', 100], ['b', 50], ['c', 80]] as const) {
      ix.add(claim('me', m, v))
      ix.add(claim('honest', m, v * 1.1))
      ix.add(claim('liar', m, v * 10))
      ix.add(claim('liar', m, v * 10)) // repeats do not count twice
      ix.add(claim('vague', m, v * 1.6)) // between the tolerances: neither
    }
    ix.add(claim('stranger', 'a', 5, { hw: 'hw9', cpu: 'other' }))
    const e = spotCheckEvidence(ix, 'me')
    expect(e.get('honest')).toMatchObject({ agree: 3, disagree: 0 })
    expect(e.get('liar')).toMatchObject({ agree: 0, disagree: 3 })
    expect(e.get('vague')).toMatchObject({ agree: 0, disagree: 0 })
    expect(e.get('stranger')).toMatchObject({ agree: 0, disagree: 0, cells: 1 })
    const t = computeTrust(e, 'me')
    expect(t.get('honest')!.weight).toBeGreaterThan(t.get('liar')!.weight)
    expect(t.get('liar')!.status).toBe('distrusted')
  })

  it('falls back to same-class hardware with wider tolerances', () => {
    const ix = new ClaimIndex()
    ix.add(claim('me', 'a', 100))
    ix.add(claim('twin', 'a', 160, { hw: 'hw2' })) // same cpu model/backend/cores, other machine: 1.6x is within 1.4^1.5
    ix.add(claim('far', 'a', 1000, { hw: 'hw3' }))
    const e = spotCheckEvidence(ix, 'me')
    expect(e.get('twin')).toMatchObject({ agree: 1, classChecks: 1 })
    expect(e.get('far')).toMatchObject({ disagree: 1, classChecks: 1 })
    expect(compareClaim(100, 100, 1)).toBe('agree')
    expect(compareClaim(0, 100, 1)).toBe('disagree')
  })
})

describe('spot-check choice', () => {
  it('picks unmeasured cells on this hardware, influential and unproven authors first', () => {
    const ix = new ClaimIndex()
    ix.add(claim('me', 'a', 100))
    ix.add(claim('big', 'b', 500)) // claims the best method of the task
    ix.add(claim('big', 'c', 50, { workload: 'w2' }))
    ix.add(claim('big', 'd', 40, { workload: 'w3' }))
    ix.add(claim('small', 'e', 60))
    ix.add(claim('x', 'f', 60, { hw: 'elsewhere' }))
    ix.add(claim('me', 'g', 1, { ok: false })) // measured here (failed): never re-picked
    ix.add(claim('y', 'g', 99))
    const trust = computeTrust(spotCheckEvidence(ix, 'me'), 'me')
    const picks = pickSpotChecks(ix, 'me', 'hw1', trust, 10)
    expect(picks.map(p => p.method)).not.toContain('a')
    expect(picks.map(p => p.method)).not.toContain('f')
    expect(picks.map(p => p.method)).not.toContain('g')
    expect(picks[0]).toMatchObject({ method: 'b', authors: ['big'] })
    expect(picks.map(p => p.method).sort()).toEqual(['b', 'c', 'd', 'e'])
  })
})

describe('peer guard', () => {
  it('excess gossip and invalid messages drive the application score to the graylist, and it decays', () => {
    let now = 1_000_000
    const g = createPeerGuard({ gossipPerPeerPerSecond: 10, gossipBurst: 10, excessPenalty: 0.05, now: () => now, penaltyHalfLifeMs: 10_000 })
    for (let i = 0; i < 10; i++) expect(g.admitGossip!('p')).toBe(true)
    expect(g.appSpecificScore!('p')).toBe(0)
    let refused = 0
    for (let i = 0; i < 200; i++) if (!g.admitGossip!('p')) refused++
    expect(refused).toBe(200)
    // penalty 200 × 0.05 = 10, past the graylist penalty 8: the score is below -1 graylist unit
    expect(g.appSpecificScore!('p')).toBeLessThan(-1)
    expect(g.admitGossip!('other')).toBe(true)
    g.onViolation!('q', 'E_BAD_SIGNATURE', 'gossip')
    expect(g.peer('q')).toMatchObject({ invalid: 1, codes: { E_BAD_SIGNATURE: 1 } })
    now += 10_000
    // one half-life later: penalty 5 = 5/8 of the graylist
    expect(g.appSpecificScore!('p')).toBeCloseTo(-5 / 8)
    // the bucket refilled at the sustained rate (10/s, capped at the burst)
    for (let i = 0; i < 10; i++) expect(g.admitGossip!('p')).toBe(true)
    expect(g.admitGossip!('p')).toBe(false)
    expect(g.totals()).toMatchObject({ rateLimited: 201, invalid: 1 })
    expect(g.peers()[0].peer).toBe('p')
  })

  it('a peer reaching the graylist penalty is banned (no connection) until the penalty has halved; allow-listed peers never are', () => {
    let now = 1_000_000
    const g = createPeerGuard({ gossipPerPeerPerSecond: 10, gossipBurst: 10, excessPenalty: 0.1, now: () => now, penaltyHalfLifeMs: 10_000, allowPeers: ['p', 'friend'] })
    const open = createPeerGuard({ gossipPerPeerPerSecond: 10, gossipBurst: 10, excessPenalty: 0.1, now: () => now, penaltyHalfLifeMs: 10_000 })
    for (let i = 0; i < 10; i++) open.admitGossip!('p')
    for (let i = 0; i < 79; i++) open.admitGossip!('p')
    // penalty 7.9: graylist not reached, still welcome
    expect(open.admitConnection!('p')).toBe(true)
    expect(open.peer('p')?.banned).toBe(false)
    open.admitGossip!('p')
    open.admitGossip!('p')
    expect(open.admitConnection!('p')).toBe(false)
    expect(open.peer('p')).toMatchObject({ banned: true, bannedAt: now })
    expect(open.admitConnection!('q')).toBe(true)
    // one half-life: penalty ~4.05, still banned (hysteresis); a little later below 4: lifted
    now += 10_000
    expect(open.admitConnection!('p')).toBe(false)
    now += 1_000
    expect(open.admitConnection!('p')).toBe(true)
    expect(open.peers()[0]).toMatchObject({ peer: 'p', banned: false })
    // allow-listed: graylisted by score like anyone, but never disconnected
    for (let i = 0; i < 200; i++) g.admitGossip!('friend')
    expect(g.appSpecificScore!('friend')).toBeLessThan(-1)
    expect(g.admitConnection!('friend')).toBe(true)
    expect(g.admitConnection!('stranger')).toBe(false)
  })

  it('per-author gossip budget: reserved units come back when refunded, it refills, proven authors are exempt', () => {
    let now = 1_000_000
    const g = createPeerGuard({ gossipPerAuthorPerSecond: 2, gossipAuthorBurst: 3, now: () => now })
    // forgeries reserve and are refunded: any number of them leaves the budget whole
    for (let i = 0; i < 50; i++) { expect(g.reserveGossipAuthor!('fresh')).toBe(true); g.refundGossipAuthor!('fresh') }
    for (let i = 0; i < 3; i++) expect(g.reserveGossipAuthor!('fresh')).toBe(true)
    expect(g.reserveGossipAuthor!('fresh')).toBe(false)
    expect(g.reserveGossipAuthor!('other')).toBe(true)
    now += 1000 // 2 units back
    expect(g.reserveGossipAuthor!('fresh')).toBe(true)
    expect(g.reserveGossipAuthor!('fresh')).toBe(true)
    expect(g.reserveGossipAuthor!('fresh')).toBe(false)
    g.setAuthorExempt(a => a === 'fresh')
    expect(g.reserveGossipAuthor!('fresh')).toBe(true)
    expect(g.totals().authorLimited).toBe(2)
    // no peer is penalized for relaying an author's records
    expect(g.peers()).toEqual([])
  })

  it('allow and deny lists', () => {
    const g = createPeerGuard({ denyPeers: ['bad'] })
    expect(g.admitGossip!('bad')).toBe(false)
    expect(g.admitSync!('bad')).toBe(false)
    expect(g.admitGossip!('x')).toBe(true)
    const only = createPeerGuard({ allowPeers: ['friend'], denyPeers: ['friend2'] })
    expect(only.allowed('friend')).toBe(true)
    expect(only.allowed('stranger')).toBe(false)
    expect(only.totals().denied).toBe(0)
    only.admitSync!('stranger')
    expect(only.totals().denied).toBe(1)
  })

  it('standing for the reserved RPC slots (issue #18): priority, allow list, proven authors; stalled streams ban after 8', () => {
    let now = 0
    const g = createPeerGuard({ priorityPeers: ['fleet', 'staller'], now: () => now })
    expect(g.standing('fleet')).toBe(true)
    expect(g.standing('fresh')).toBe(false)
    g.setAuthorExempt(a => a === 'proven')
    expect(g.standing('proven')).toBe(true)
    // a malformed request weighs 0.5, a stalled stream 1: eight stalls ban, and a banned peer loses its standing
    for (let i = 0; i < 7; i++) g.onViolation!('staller', 'E_REQ_STALLED', 'infer')
    expect(g.admitConnection!('staller')).toBe(true)
    g.onViolation!('staller', 'E_REQ_STALLED', 'infer')
    expect(g.admitConnection!('staller')).toBe(false)
    expect(g.standing('staller')).toBe(false)
    expect(g.peer('staller')?.codes).toEqual({ E_REQ_STALLED: 8 })
    // the ban lifts as the penalty decays (half-life 60 s)
    now += 120_000
    expect(g.standing('staller')).toBe(true)
    expect(createPeerGuard({ allowPeers: ['friend'] }).standing('friend')).toBe(true)
  })
})

describe('trust-weighted training set (meta dataset hook)', () => {
  it('liars inflating a slow method do not change any cell once weighted; the plain median does move', () => {
    const honest = synthHistory({ machines: 2, models: 1, workloads: 3, repeats: 1, noise: 0.02, seed: 4 })
      .map((b, i) => ({ ...b, author: `h${i % 3}` }))
    const slow = 'baseline'
    const lies = honest.flatMap(b => (b.method.id === slow
      ? ['l1', 'l2', 'l3', 'l4'].map(author => ({ ...b, author, result: { ...b.result, totalTokensPerSecond: b.result.totalTokensPerSecond * 10 } }))
      : []))
    const clean = buildDataset(honest)
    const plain = buildDataset([...honest, ...lies])
    const weights: Record<string, number> = { h0: 1, h1: 1, h2: 1, l1: 0, l2: 0, l3: 0, l4: 0 }
    const robust = buildDataset([...honest, ...lies], { weightOf: a => weights[a] ?? 0 })
    const tp = (ds: ReturnType<typeof buildDataset>): number[] => ds.cells.map(c => c.throughput)
    expect(tp(robust)).toEqual(tp(clean))
    expect(tp(plain)).not.toEqual(tp(clean))
    // an equal-weight robust aggregate is also better than per-record median here: 4 liars vs ≥1 honest author
    const unweighted = buildDataset([...honest, ...lies], { weightOf: () => 1 })
    expect(unweighted.cells.length).toBe(clean.cells.length)
  })
})
