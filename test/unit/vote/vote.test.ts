import { describe, it, expect } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import {
  signVote, voteToWire, verifyVoteWire, validateVoteBody, chunkClasses, VOTE_DOMAIN, MAX_VOTE_BYTES, MAX_RANKING,
  MAX_VOTE_AGE_MS, taskClassKey, parseTaskClassKey, workloadBucket, tally, bordaPoints, VoteBook, ReputationBook,
  agreement, updateWeight, DEFAULT_REPUTATION, measuredByMethod, objectiveValue, type VoteBody, type ClassVote
} from '../../../src/vote/index.js'
import { RECORD_DOMAIN, withDomain, canonicalBytes, synthBodies } from '../../../src/records/index.js'

async function identity () {
  const key = await generateKeyPair('Ed25519')
  return { key, author: peerIdFromPrivateKey(key).toString() }
}

const NOW = Date.UTC(2026, 5, 1)
const KEY = 'v1|m=abcdef0123456789|w=m-p-4|b=cpu|o=throughput'

function cls (key: string, methods: string[]): ClassVote {
  return { key, ranking: methods.map((m, i) => ({ method: m, score: 10 - i })), evidence: { records: 12, authors: 2 } }
}

function body (author: string, seq = 1, classes = [cls(KEY, ['prefix-cache', 'baseline', 'batch-4'])]): VoteBody {
  return { v: 1, author, seq, timestamp: NOW, snapshot: 's1', classes }
}

async function codeOf (p: Promise<unknown> | (() => unknown)): Promise<string | undefined> {
  try { await (typeof p === 'function' ? p() : p) } catch (err: any) { return err.code }
  return undefined
}

describe('vote wire form', () => {
  it('round-trips with identical bytes and verifies', async () => {
    const { key, author } = await identity()
    const v = await signVote(key, body(author))
    const back = await verifyVoteWire(voteToWire(v), NOW)
    expect(back.body).toEqual(v.body)
    expect(Buffer.compare(back.bytes, canonicalBytes(v.body))).toBe(0)
  })

  it('rejects a forged signature, a tampered body and another author', async () => {
    const { key, author } = await identity()
    const other = await identity()
    const wire = voteToWire(await signVote(key, body(author)))
    const forged = Uint8Array.from(wire); forged[5] ^= 1
    expect(await codeOf(verifyVoteWire(forged, NOW))).toBe('E_VOTE_SIGNATURE')
    const tampered = Uint8Array.from(wire)
    const i = Buffer.from(tampered).indexOf('prefix-cache')
    tampered[i] = 'q'.charCodeAt(0)
    expect(await codeOf(verifyVoteWire(tampered, NOW))).toBe('E_VOTE_SIGNATURE')
    // signed by `other` but claiming `author`
    const impostor = voteToWire(await signVote(other.key, body(author)))
    expect(await codeOf(verifyVoteWire(impostor, NOW))).toBe('E_VOTE_SIGNATURE')
  })

  it('uses its own signature domain: a record signature over the same bytes does not verify as a vote', async () => {
    const { key, author } = await identity()
    const v = await signVote(key, body(author))
    const recordSig = await key.sign(withDomain(RECORD_DOMAIN, v.bytes))
    expect(await codeOf(verifyVoteWire(voteToWire({ ...v, signature: recordSig }), NOW))).toBe('E_VOTE_SIGNATURE')
    expect(new TextDecoder().decode(VOTE_DOMAIN)).toBe('swarmtune/vote/v1\n')
  })

  it('refuses garbage, unknown envelope versions, oversize, non-canonical bodies', async () => {
    const { key, author } = await identity()
    expect(await codeOf(verifyVoteWire(new Uint8Array([1, 2, 3]), NOW))).toBe('E_VOTE_MALFORMED')
    const wire = voteToWire(await signVote(key, body(author)))
    const v2 = Uint8Array.from(wire); v2[0] = 2
    expect(await codeOf(verifyVoteWire(v2, NOW))).toBe('E_VOTE_VERSION')
    const big = new Uint8Array(65 + MAX_VOTE_BYTES + 1); big[0] = 1
    expect(await codeOf(verifyVoteWire(big, NOW))).toBe('E_VOTE_OVERSIZE')
    const notJson = new Uint8Array(100); notJson[0] = 1; notJson.fill(0xff, 65)
    expect(await codeOf(verifyVoteWire(notJson, NOW))).toBe('E_VOTE_MALFORMED')
    const pretty = new TextEncoder().encode(JSON.stringify(body(author), null, 1))
    const sig = await key.sign(withDomain(VOTE_DOMAIN, pretty))
    const w = new Uint8Array(65 + pretty.length); w[0] = 1; w.set(sig, 1); w.set(pretty, 65)
    expect(await codeOf(verifyVoteWire(w, NOW))).toBe('E_VOTE_MALFORMED')
  })
})

describe('vote schema', () => {
  const author = '12D3KooWLRPJAA5o6jTZVBbNa8h4vNBePcgPgDTPxKxAyEDyf2Pb'
  const bad = (patch: (b: any) => void) => () => { const b: any = structuredClone(body(author)); patch(b); validateVoteBody(b, NOW) }

  it('accepts a valid body', () => { expect(validateVoteBody(body(author), NOW).seq).toBe(1) })
  it.each([
    ['version', (b: any) => { b.v = 2 }, 'E_VOTE_VERSION'],
    ['unknown field', (b: any) => { b.extra = 1 }, 'E_VOTE_MALFORMED'],
    ['bad author', (b: any) => { b.author = 'Qm123' }, 'E_VOTE_ID'],
    ['seq 0', (b: any) => { b.seq = 0 }, 'E_VOTE_MALFORMED'],
    ['future', (b: any) => { b.timestamp = NOW + 3600_000 }, 'E_VOTE_FUTURE'],
    ['stale', (b: any) => { b.timestamp = NOW - MAX_VOTE_AGE_MS - 1 }, 'E_VOTE_STALE'],
    ['no classes', (b: any) => { b.classes = [] }, 'E_VOTE_MALFORMED'],
    ['duplicate class', (b: any) => { b.classes.push(b.classes[0]) }, 'E_VOTE_MALFORMED'],
    ['bad class key', (b: any) => { b.classes[0].key = 'a b' }, 'E_VOTE_ID'],
    ['empty ranking', (b: any) => { b.classes[0].ranking = [] }, 'E_VOTE_MALFORMED'],
    ['long ranking', (b: any) => { b.classes[0].ranking = Array.from({ length: MAX_RANKING + 1 }, (_, i) => ({ method: `m${i}`, score: 1 })) }, 'E_VOTE_MALFORMED'],
    ['duplicate method', (b: any) => { b.classes[0].ranking.push({ ...b.classes[0].ranking[0] }) }, 'E_VOTE_MALFORMED'],
    ['bad method id', (b: any) => { b.classes[0].ranking[0].method = '../x y' }, 'E_VOTE_ID'],
    ['NaN score', (b: any) => { b.classes[0].ranking[0].score = NaN }, 'E_VOTE_SCORE'],
    ['negative evidence', (b: any) => { b.classes[0].evidence.records = -1 }, 'E_VOTE_MALFORMED']
  ])('refuses %s', async (_name, patch, code) => {
    expect(await codeOf(bad(patch))).toBe(code)
  })

  it('chunks many classes into bodies that fit the size limit', async () => {
    const { key, author: a } = await identity()
    const methods = Array.from({ length: MAX_RANKING }, (_, i) => `method-with-a-long-name-${i}`)
    const classes = Array.from({ length: 200 }, (_, i) => cls(`v1|m=${i.toString(16).padStart(16, '0')}|w=m-p-4|b=cpu|o=throughput`, methods))
    const chunks = chunkClasses(classes)
    expect(chunks.flat().length).toBe(200)
    expect(chunks.length).toBeGreaterThan(1)
    for (const [i, c] of chunks.entries()) {
      const v = await signVote(key, { ...body(a, i + 1), classes: c })
      expect(v.bytes.length).toBeLessThanOrEqual(MAX_VOTE_BYTES)
    }
  })
})

describe('task class', () => {
  it('buckets prompt length, shared prefix and batch size', () => {
    expect(workloadBucket({ promptTokensMean: 50, sharedPrefixRatio: 0.9, requests: 1 })).toBe('s-p-1')
    expect(workloadBucket({ promptTokensMean: 500, sharedPrefixRatio: 0.1, requests: 3 })).toBe('m-n-4')
    expect(workloadBucket({ promptTokensMean: 4000, sharedPrefixRatio: 0.5, requests: 16 })).toBe('l-p-n')
    expect(workloadBucket({})).toBe('s-n-1')
  })
  it('builds parseable keys that pass vote validation', () => {
    const key = taskClassKey({ modelId: 'abcdef0123456789', features: { promptTokensMean: 300, requests: 8 }, backend: 'cuda', objective: 'latency' })
    expect(key).toBe('v1|m=abcdef0123456789|w=m-n-n|b=cuda|o=latency')
    expect(parseTaskClassKey(key)).toEqual({ model: 'abcdef0123456789', workload: 'm-n-n', backend: 'cuda', objective: 'latency' })
    expect(() => validateVoteBody(body('12D3KooWLRPJAA5o6jTZVBbNa8h4vNBePcgPgDTPxKxAyEDyf2Pb', 1, [cls(key, ['a'])]), NOW)).not.toThrow()
    expect(taskClassKey({ modelId: 'x|y', features: {}, backend: 'Weird Backend', objective: 'cost' })).toBe('v1|m=x_y|w=s-n-1|b=other|o=cost')
  })
})

describe('weighted Borda tally', () => {
  const b = (author: string, methods: string[], seq = 1) => ({ author, seq, timestamp: NOW, ranking: methods.map(m => ({ method: m, score: 0 })), evidence: { records: 1, authors: 1 } })

  it('normalizes points by ballot length', () => {
    expect(bordaPoints(0, 4)).toBe(1)
    expect(bordaPoints(3, 4)).toBe(0.25)
  })

  it('gives a consensus second the mean of a polarizing first/last', () => {
    // A first for 2 voters but last for 2; B second for all 4
    const r = tally(KEY, [b('p1', ['A', 'B', 'C']), b('p2', ['A', 'B', 'C']), b('p3', ['C', 'B', 'A']), b('p4', ['C', 'B', 'A'])], () => 1)
    const s = Object.fromEntries(r.ranking.map(e => [e.method, e.score]))
    expect(s.B).toBeCloseTo(2 / 3)
    expect(s.A).toBeCloseTo((1 + 1 + 1 / 3 + 1 / 3) / 4)
    expect(s.C).toBeCloseTo(s.A)
  })

  it('lets weights decide and bounds each author by its weight', () => {
    const ballots = [b('honest1', ['A', 'B']), b('honest2', ['A', 'B']), b('liar', ['B', 'A'])]
    expect(tally(KEY, ballots, () => 1).ranking[0].method).toBe('A')
    // a liar at 3x the weight of each honest peer outvotes two of them, at 1.5x it does not
    expect(tally(KEY, ballots, a => a === 'liar' ? 3 : 1).ranking[0].method).toBe('B')
    expect(tally(KEY, ballots, a => a === 'liar' ? 1.5 : 1).ranking[0].method).toBe('A')
  })

  it('ignores zero-weight and empty ballots, breaks ties deterministically', () => {
    const r = tally(KEY, [b('x', ['B', 'A']), b('y', ['A', 'B']), b('z', [])], a => a === 'x' ? 0 : 1)
    expect(r.voters).toBe(1)
    expect(r.ranking[0].method).toBe('A')
    const tie = tally(KEY, [b('x', ['B', 'A']), b('y', ['A', 'B'])], () => 1)
    expect(tie.ranking.map(e => e.method)).toEqual(['A', 'B'])
  })

  it('counts unranked methods as zero points', () => {
    const r = tally(KEY, [b('x', ['A', 'B', 'C', 'D']), b('y', ['D'])], () => 1)
    const s = Object.fromEntries(r.ranking.map(e => [e.method, e.score]))
    expect(s.D).toBeCloseTo((0.25 + 1) / 2)
    expect(s.A).toBeCloseTo(0.5)
    expect(r.ranking[0].method).toBe('D')
  })
})

describe('vote book', () => {
  const a = '12D3KooWLRPJAA5o6jTZVBbNa8h4vNBePcgPgDTPxKxAyEDyf2Pb'
  it('keeps only the latest ballot per author per class', () => {
    const book = new VoteBook()
    expect(book.add(body(a, 2)).updated).toEqual([KEY])
    expect(book.add(body(a, 1, [cls(KEY, ['x'])])).stale).toEqual([KEY])
    expect(book.ballot(KEY, a)?.ranking[0].method).toBe('prefix-cache')
    book.add(body(a, 3, [cls(KEY, ['batch-4'])]))
    expect(book.ballots(KEY)).toHaveLength(1)
    expect(book.ballot(KEY, a)?.ranking[0].method).toBe('batch-4')
  })
  it('is bounded per class and survives a JSON round trip', () => {
    const book = new VoteBook({ maxPerClass: 2 })
    book.add({ ...body('p1'), timestamp: NOW - 10 })
    book.add({ ...body('p2'), timestamp: NOW - 5 })
    book.add({ ...body('p3'), timestamp: NOW })
    expect(book.ballots(KEY).map(x => x.author).sort()).toEqual(['p2', 'p3'])
    const again = VoteBook.fromJSON(JSON.parse(JSON.stringify(book.toJSON())))
    expect(again.toJSON()).toEqual(book.toJSON())
    expect(again.prune(NOW - 1)).toBe(1)
  })
})

describe('reputation', () => {
  const measured = new Map([['A', 100], ['B', 60], ['C', 30]])

  it('scores agreement with Kendall tau and a top-1 hit', () => {
    expect(agreement(['A', 'B', 'C'], measured)).toMatchObject({ tau: 1, top1Hit: true, score: 1, common: 3 })
    expect(agreement(['C', 'B', 'A'], measured)).toMatchObject({ tau: -1, top1Hit: false, score: -1 })
    expect(agreement(['B', 'A', 'C'], measured)?.top1Hit).toBe(false)
    expect(agreement(['A', 'Z'], measured)).toBeUndefined()
    // within the tie tolerance, both orders are right
    const close = new Map([['A', 100], ['B', 99]])
    expect(agreement(['B', 'A'], close)).toMatchObject({ tau: 0, top1Hit: true, score: 0.5 })
  })

  it('updates multiplicatively within bounds', () => {
    const p = DEFAULT_REPUTATION
    expect(updateWeight(1, 1)).toBeCloseTo(Math.exp(p.eta))
    let w = 1
    for (let i = 0; i < 50; i++) w = updateWeight(w, 1)
    expect(w).toBe(p.wMax)
    for (let i = 0; i < 50; i++) w = updateWeight(w, -1)
    expect(w).toBe(p.wMin)
  })

  it('starts equal, moves honest up and liars down, once per evidence growth', () => {
    const rep = new ReputationBook()
    expect(rep.weight('h')).toBe(rep.weight('l'))
    expect(rep.observe('h', KEY, { seq: 1, ranking: ['A', 'B', 'C'] }, measured, 3)?.after).toBeGreaterThan(1)
    expect(rep.observe('l', KEY, { seq: 1, ranking: ['C', 'B', 'A'] }, measured, 3)?.after).toBeLessThan(1)
    // same evidence again: no change
    expect(rep.observe('h', KEY, { seq: 2, ranking: ['A', 'B', 'C'] }, measured, 3)).toBeUndefined()
    const w = rep.weight('h')
    expect(rep.observe('h', KEY, { seq: 2, ranking: ['A', 'B', 'C'] }, measured, 4)?.after).toBeGreaterThan(w)
    const again = ReputationBook.fromJSON(JSON.parse(JSON.stringify(rep.toJSON())))
    expect(again.weight('h')).toBe(rep.weight('h'))
    expect(again.weight('l')).toBe(rep.weight('l'))
  })
})

describe('objective values from records', () => {
  it('takes the median per method, higher is better, skips failed runs', () => {
    const bodies = synthBodies(30, 3, NOW)
    const mk = (method: string, tps: number, ok = true) => ({ ...bodies[0], method: { id: method, knobs: {} }, result: { ...bodies[0].result, ok, totalTokensPerSecond: tps } })
    const m = measuredByMethod([mk('A', 10), mk('A', 30), mk('A', 1000), mk('B', 5), mk('B', 7), mk('C', 99, false)], 'throughput')
    expect([...m.entries()]).toEqual([['A', 30], ['B', 6]])
    const failed = { ...bodies[0], result: { ...bodies[0].result, ok: false } }
    expect(objectiveValue(failed, 'throughput')).toBeUndefined()
    expect(objectiveValue(bodies[0], 'latency')).toBeCloseTo(1000 / bodies[0].result.ttftMsP50)
  })
})
