import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import {
  parseRecommendRequest, readSource, readRecommendResponse, createRecommendService, requestRecommendation, type RecommendRequest, type RecommendResponse
} from '../../../src/net/recommend.js'
import { createClientNode } from '../../../src/net/rpc/client.js'
import { Counters } from '../../../src/util/counters.js'

// The framework's behaviour (framing, coded errors, deadlines, stream limits, penalties, pool) is
// tested on its own protocol in test/unit/net/rpc/; here: the recommend schema and its wiring.

function codeOf (fn: () => unknown): string | undefined {
  try { fn() } catch (err: any) { return err.code }
  return undefined
}

describe('recommend answer source', () => {
  it('reads the known sources as they are and a newer peer\'s unknown one as meta', () => {
    for (const s of ['meta', 'safe-default', 'committee', 'cold-start']) expect(readSource(s)).toBe(s)
    expect(readSource('future-rule')).toBe('meta')
    expect(readSource(undefined)).toBe('meta')
  })
})

describe('recommend answer versions', () => {
  const entry = { method: 'baseline', predicted: { speedup: 1 }, uncertainty: 0 }
  const answer = { ranking: [entry], evidence: { records: 1, authors: 1, snapshot: null }, coldStart: false, source: 'meta', objective: 'throughput', taskClass: 'c' } as unknown as RecommendResponse
  it('reads a v1 answer (no v, no runnable) as v1 with every entry runnable', () => {
    const r = readRecommendResponse(answer)
    expect(r.v).toBe(1)
    expect(r.ranking[0].runnable).toBeUndefined()
  })

  it('keeps a v2 answer\'s runnable flags and drops a malformed one instead of rejecting the answer', () => {
    const r = readRecommendResponse({ ...answer, v: 2, source: 'future' as never, ranking: [{ ...entry, method: 'llama-bench:x', runnable: false }, { ...entry, runnable: 'no' as never }] })
    expect(r.v).toBe(2)
    expect(r.source).toBe('meta')
    expect(r.ranking[0].runnable).toBe(false)
    expect('runnable' in r.ranking[1]).toBe(false)
    expect(readRecommendResponse({ ...answer, v: 'x' as never }).v).toBe(1)
  })
})

describe('recommend request schema', () => {
  const ok = { model: 'tiny', workload: { features: { requests: 4, promptTokensMean: 100, sharedPrefixRatio: 0.8 } }, objective: 'latency' }
  it('accepts features in three shapes and prompts', () => {
    expect(parseRecommendRequest(ok)).toMatchObject({ model: { name: 'tiny' }, objective: 'latency', features: { requests: 4 } })
    expect(parseRecommendRequest({ model: 'tiny', workload: { requests: 2, family: 'chat' } })).toMatchObject({ features: { requests: 2 }, family: 'chat', objective: 'throughput' })
    expect(parseRecommendRequest({ model: 'tiny', features: { requests: 1 } }).features).toEqual({ requests: 1 })
    expect(parseRecommendRequest({ model: { id: '0123456789abcdef' }, prompts: ['a b', 'a c'], maxTokens: 8 })).toMatchObject({ prompts: ['a b', 'a c'], maxTokens: 8 })
    expect(parseRecommendRequest({ model: '0123456789abcdef', prompts: ['x'] }).model.id).toBe('0123456789abcdef')
  })
  it.each([
    ['no model', { workload: { features: {} } }],
    ['no workload', { model: 'tiny' }],
    ['bad objective', { ...ok, objective: 'speed' }],
    ['unknown field', { ...ok, extra: 1 }],
    ['NaN-like feature', { ...ok, workload: { features: { requests: 'many' } } }],
    ['negative feature', { ...ok, workload: { features: { requests: -1 } } }],
    ['bad feature key', { ...ok, workload: { features: { 'a b': 1 } } }],
    ['empty prompts', { model: 'tiny', prompts: [] }],
    ['maxTokens 0', { model: 'tiny', prompts: ['x'], maxTokens: 0 }],
    ['bad slo', { ...ok, slo: { p99: 3 } }],
    ['bad hardware', { ...ok, hardware: { cores: 'two' } }],
    ['bad method id', { ...ok, methods: ['a b'] }],
    ['descriptor without numbers', { ...ok, model: { architecture: 'llama' } }]
  ])('refuses %s with E_REQ_INVALID', (_n, req) => {
    expect(codeOf(() => parseRecommendRequest(req as Record<string, unknown>))).toBe('E_REQ_INVALID')
  })
})

describe('recommend service over libp2p on loopback', () => {
  let server: Libp2p
  let client: Libp2p
  const rejections = new Counters()
  const violations: string[] = []
  const answered: RecommendRequest[] = []
  let svc: ReturnType<typeof createRecommendService>

  beforeAll(async () => {
    server = await createLibp2p({ addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] }, transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()] })
    svc = createRecommendService({
      libp2p: server,
      rejections,
      limits: { maxRequestBytes: 4096, timeoutMs: 500, maxPenalties: 1000 },
      onViolation: (_peer, code) => { violations.push(code) },
      answer: async (req) => {
        answered.push(req)
        return { ranking: [{ method: 'prefix-cache', predicted: { speedup: 2 }, uncertainty: 0.1 }], evidence: { records: 3, authors: 1, snapshot: 's' }, coldStart: false, source: 'meta', objective: req.objective, taskClass: 'k' } satisfies RecommendResponse
      }
    })
    await svc.start()
    client = await createClientNode()
  })
  afterAll(async () => {
    await svc?.stop()
    await client?.stop()
    await server?.stop()
  })

  const task = { model: 'tiny', workload: { features: { requests: 2 } } }

  it('answers a valid request', async () => {
    const res = await requestRecommendation(client, server.getMultiaddrs(), task)
    expect(res.ranking[0].method).toBe('prefix-cache')
    expect(res.evidence).toEqual({ records: 3, authors: 1, snapshot: 's' })
    expect(answered.at(-1)?.features).toEqual({ requests: 2 })
  })

  it('refuses an invalid and an oversize request (its own limits over the defaults) and counts them as recommend:<code>', async () => {
    answered.length = 0
    await expect(requestRecommendation(client, server.getMultiaddrs(), { model: 'tiny' })).rejects.toMatchObject({ code: 'E_REQ_INVALID' })
    await expect(requestRecommendation(client, server.getMultiaddrs(), { ...task, family: 'x'.repeat(60), prompts: ['y'.repeat(5000)] })).rejects.toMatchObject({ code: 'E_REQ_OVERSIZE' })
    expect(answered).toHaveLength(0)
    expect(rejections.get('recommend:E_REQ_INVALID')).toBe(1)
    expect(rejections.get('recommend:E_REQ_OVERSIZE')).toBe(1)
    expect(violations).toEqual(['E_REQ_INVALID', 'E_REQ_OVERSIZE'])
    expect(svc.stats().byCode).toEqual({ E_REQ_INVALID: 1, E_REQ_OVERSIZE: 1 })
  })
})
