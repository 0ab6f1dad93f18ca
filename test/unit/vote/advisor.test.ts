import { describe, it, expect } from 'vitest'
import { advise, isCold, resolveModel, approximateTokenize, featuresOfPrompts, ClassIndex, classBase, tally, DEFAULT_COLD_OWN_RECORDS } from '../../../src/vote/index.js'
import { synthBodies, type RecordBody } from '../../../src/records/index.js'
import type { Selection } from '../../../src/meta/selector.js'

const blank = { speedup: null, wallMs: null, ttftMs: null, cost: null }
function selection (order: string[], extra: Partial<Selection> = {}): Selection {
  return { objective: 'throughput', choice: order[0], ranking: order.map((m, i) => ({ method: m, predicted: { ...blank, speedup: 2 - i / 10 }, uncertainty: 0.1, feasible: true })), coldStart: false, explored: false, unseen: [], ...extra }
}
const committee = tally('k', [
  { author: 'a', seq: 1, timestamp: 1, ranking: [{ method: 'batch-4', score: 1 }, { method: 'baseline', score: 0 }], evidence: { records: 1, authors: 1 } },
  { author: 'b', seq: 1, timestamp: 1, ranking: [{ method: 'batch-4', score: 1 }, { method: 'prefix-cache', score: 0 }], evidence: { records: 1, authors: 1 } }
], () => 1)

describe('advisor: source of a warm answer', () => {
  it('is safe-default when a fixed rule decided, meta otherwise', () => {
    const own = { records: 10, methods: 3 }
    const safe = selection(['baseline', 'batch-4'], { safeDefault: { rule: 'single-best', learnerChoice: 'batch-4', reason: 'safe default: single-best → baseline' } })
    expect(advise({ selection: safe, classKey: 'k', own }).source).toBe('safe-default')
    expect(advise({ selection: selection(['batch-4', 'baseline']), classKey: 'k', own }).source).toBe('meta')
  })
})

describe('advisor: committee while cold, own model once warm', () => {
  it('uses the committee order when this node is cold for the class', () => {
    const a = advise({ selection: selection(['prefix-cache', 'baseline', 'batch-4']), classKey: 'k', committee, own: { records: 0, methods: 0 } })
    expect(a.source).toBe('committee')
    expect(a.coldStart).toBe(true)
    expect(a.choice).toBe('batch-4')
    expect(a.ranking.map(r => r.method)).toEqual(['batch-4', 'baseline', 'prefix-cache'])
    expect(a.ranking[0].committeeScore).toBe(1)
    expect(a.ranking[0].predicted.speedup).toBeCloseTo(1.8) // predictions still from the model
  })
  it('keeps the meta-model answer once own evidence suffices', () => {
    const a = advise({ selection: selection(['prefix-cache', 'baseline', 'batch-4']), classKey: 'k', committee, own: { records: DEFAULT_COLD_OWN_RECORDS, methods: 2 } })
    expect(a).toMatchObject({ source: 'meta', coldStart: false, choice: 'prefix-cache' })
    expect(isCold({ records: 100, methods: 1 })).toBe(true)
  })
  it('falls back to the meta-model (or its cold-start rule) without ballots', () => {
    expect(advise({ selection: selection(['baseline'], { coldStart: true }), classKey: 'k', own: { records: 0, methods: 0 } })).toMatchObject({ source: 'cold-start', coldStart: true })
    expect(advise({ selection: selection(['x', 'y']), classKey: 'k', own: { records: 0, methods: 0 } })).toMatchObject({ source: 'meta', coldStart: true, choice: 'x' })
  })
  it('keeps infeasible methods last even when the committee prefers them', () => {
    const sel = selection(['prefix-cache', 'baseline', 'batch-4'])
    sel.ranking[2].feasible = false
    const a = advise({ selection: sel, classKey: 'k', committee, own: { records: 0, methods: 0 } })
    expect(a.ranking.at(-1)?.method).toBe('batch-4')
    expect(a.choice).toBe('baseline')
  })
})

describe('task resolution', () => {
  const known = { id: '0123456789abcdef', name: 'tiny', architecture: 'llama', params: 5e6, layers: 4, embd: 256, heads: 4, kvHeads: 4, ff: 768, vocab: 1024, ctx: 2048, weightBits: 32, fileType: 'F32' }
  const lookup = (k: string) => (k === known.id || k === known.name ? known : undefined)
  it('resolves by id or name, takes a descriptor as given, refuses the unknown', () => {
    expect(resolveModel({ name: 'tiny' }, lookup)).toBe(known)
    expect(resolveModel({ id: known.id }, lookup)).toBe(known)
    expect(resolveModel({ params: 1e9, layers: 16, embd: 2048, heads: 16 }, lookup)).toMatchObject({ kvHeads: 16, weightBits: 16 })
    expect(() => resolveModel({ name: 'nope' }, lookup)).toThrow(expect.objectContaining({ code: 'E_UNKNOWN_MODEL' }))
  })
  it('approximates tokens and keeps shared prefixes shared', () => {
    expect(approximateTokenize('hello world')).toHaveLength(4)
    expect(approximateTokenize('a b')).toHaveLength(2)
    const f = featuresOfPrompts(['You are a helpful assistant. Say hi', 'You are a helpful assistant. Say bye'], 8)
    expect(f.requests).toBe(2)
    expect(f.concurrency).toBe(2)
    expect(f.sharedPrefixRatio).toBeGreaterThan(0.5)
    expect(f.outputTokensMean).toBe(8)
  })
})

describe('class index', () => {
  it('counts records, authors and own measurements per class', () => {
    const bodies = synthBodies(40, 5, Date.UTC(2026, 0, 1)).map((b, i) => ({ ...b, v: 1, author: i % 2 === 0 ? 'me' : `p${i % 5}`, seq: i + 1, timestamp: b.timestamp ?? 0, source: 'benchmark' as const }) as RecordBody)
    const idx = new ClassIndex({ self: 'me' })
    for (const b of bodies) idx.add(b)
    const b0 = bodies[0]
    const base = classBase(b0.model.id, b0.workload.features, b0.hardware.backend)
    const inClass = bodies.filter(b => classBase(b.model.id, b.workload.features, b.hardware.backend) === base)
    expect(idx.evidence(base)).toEqual({ records: inClass.length, authors: new Set(inClass.map(b => b.author)).size })
    expect(idx.ownEvidence(base).records).toBe(inClass.filter(b => b.author === 'me').length)
    expect(idx.model(b0.model.name)?.id).toBeDefined()
    expect(idx.model(b0.model.id)?.id).toBe(b0.model.id)
  })
})
