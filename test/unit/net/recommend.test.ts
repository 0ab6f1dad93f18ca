import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { lpStream } from '@libp2p/utils'
import {
  parseRecommendRequest, createRecommendService, requestRecommendation, createClientNode, PeerPenalties, rpcErrorCode,
  lengthPrefixed, RpcPool, type RecommendRequest, type RecommendResponse
} from '../../../src/net/recommend.js'
import { RECOMMEND_PROTOCOL } from '../../../src/net/types.js'
import { Counters } from '../../../src/util/counters.js'

function codeOf (fn: () => unknown): string | undefined {
  try { fn() } catch (err: any) { return err.code }
  return undefined
}

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

describe('peer penalties and error codes', () => {
  it('refuses a peer after max penalties for at least one window', () => {
    const p = new PeerPenalties(3, 1000)
    p.add('a', 0); p.add('a', 10)
    expect(p.penalized('a', 20)).toBe(false)
    p.add('a', 30)
    expect(p.penalized('a', 40)).toBe(true)
    expect(p.penalized('b', 40)).toBe(false)
    expect(p.penalized('a', 1500)).toBe(true) // previous window still counts
    expect(p.penalized('a', 3100)).toBe(false)
  })
  it('frames like lpStream', () => {
    expect([...lengthPrefixed(new Uint8Array(3))]).toEqual([3, 0, 0, 0])
    expect([...lengthPrefixed(new Uint8Array(300)).subarray(0, 2)]).toEqual([0xac, 0x02])
  })
  it('maps stream errors to codes', () => {
    expect(rpcErrorCode(Object.assign(new Error('x'), { name: 'InvalidDataLengthError' }))).toBe('E_REQ_OVERSIZE')
    expect(rpcErrorCode(Object.assign(new Error('x'), { name: 'UnexpectedEOFError' }))).toBe('E_STREAM_CLOSED')
    expect(rpcErrorCode(Object.assign(new Error('x'), { name: 'AbortError' }))).toBe('E_REQ_TIMEOUT')
    expect(rpcErrorCode(new Error('x'))).toBe('E_INTERNAL')
  })
})

describe('recommend protocol over libp2p on loopback', () => {
  let server: Libp2p
  let client: Libp2p
  const rejections = new Counters()
  const violations: string[] = []
  let answered: RecommendRequest[] = []
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
        if (req.family === 'slow') await new Promise(resolve => setTimeout(resolve, 1500))
        if (req.family === 'boom') throw new Error('bug')
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

  it('answers invalid, oversize, garbage and truncated input with coded errors and counts them', async () => {
    answered = []
    await expect(requestRecommendation(client, server.getMultiaddrs(), { model: 'tiny' })).rejects.toMatchObject({ code: 'E_REQ_INVALID' })
    await expect(requestRecommendation(client, server.getMultiaddrs(), { ...task, family: 'x'.repeat(60), prompts: ['y'.repeat(5000)] })).rejects.toMatchObject({ code: 'E_REQ_OVERSIZE' })
    // a valid length prefix followed by bytes that are not JSON
    const stream = await client.dialProtocol(server.getMultiaddrs(), RECOMMEND_PROTOCOL)
    const lp = lpStream(stream)
    await lp.write(Uint8Array.from([0xff, 0xfe, 0x00, 0x01, 0x02]))
    const reply = JSON.parse(new TextDecoder().decode((await lp.read()).subarray()))
    expect(reply.error.code).toBe('E_REQ_MALFORMED')
    // raw garbage whose "length prefix" is huge
    const s2 = await client.dialProtocol(server.getMultiaddrs(), RECOMMEND_PROTOCOL)
    s2.send(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3]))
    const lp2 = lpStream(s2)
    expect(JSON.parse(new TextDecoder().decode((await lp2.read()).subarray())).error.code).toBe('E_REQ_OVERSIZE')
    // half a request, then close
    const s3 = await client.dialProtocol(server.getMultiaddrs(), RECOMMEND_PROTOCOL)
    s3.send(Uint8Array.from([100, 1, 2]))
    await s3.close()
    await expect.poll(() => rejections.get('recommend:E_REQ_TRUNCATED'), { timeout: 5000 }).toBe(1)
    expect(answered).toHaveLength(0)
    expect(rejections.get('recommend:E_REQ_INVALID')).toBe(1)
    expect(rejections.get('recommend:E_REQ_OVERSIZE')).toBe(2)
    expect(rejections.get('recommend:E_REQ_MALFORMED')).toBe(1)
    expect(violations).toEqual(expect.arrayContaining(['E_REQ_INVALID', 'E_REQ_OVERSIZE', 'E_REQ_MALFORMED', 'E_REQ_TRUNCATED']))
    // and still answers
    expect((await requestRecommendation(client, server.getMultiaddrs(), task)).ranking).toHaveLength(1)
  })

  it('answers several requests on one kept-open stream (pool), and recovers after an error response', async () => {
    const pool = new RpcPool(client, server.getMultiaddrs(), RECOMMEND_PROTOCOL, { size: 2 })
    const before = svc.stats()
    const results = await Promise.all(Array.from({ length: 20 }, async (_, i) => await pool.call<RecommendResponse>({ model: 'tiny', workload: { features: { requests: i } } })))
    expect(results.every(r => r.ranking[0].method === 'prefix-cache')).toBe(true)
    const after = svc.stats()
    expect(after.answered - before.answered).toBe(20)
    expect(after.requests - before.requests).toBe(20)
    await expect(pool.call({ model: 'tiny' })).rejects.toMatchObject({ code: 'E_REQ_INVALID' })
    expect((await pool.call<RecommendResponse>({ model: 'tiny', features: {} })).source).toBe('meta')
    await pool.close()
    await expect.poll(() => svc.stats().active).toBe(0)
  })

  it('times out a slow answer with E_REQ_TIMEOUT and hides internal errors', async () => {
    await expect(requestRecommendation(client, server.getMultiaddrs(), { ...task, family: 'slow' })).rejects.toMatchObject({ code: 'E_REQ_TIMEOUT' })
    await expect(requestRecommendation(client, server.getMultiaddrs(), { ...task, family: 'boom' })).rejects.toMatchObject({ code: 'E_INTERNAL', message: 'internal error' })
    expect(svc.stats().byCode.E_REQ_TIMEOUT).toBe(1)
  })
})

describe('per-peer stream limit and penalties', () => {
  it('answers E_BUSY beyond the concurrent limit and E_PEER_PENALIZED after too many bad requests', async () => {
    const server = await createLibp2p({ addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] }, transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()] })
    const rejections = new Counters()
    let release!: () => void
    const gate = new Promise<void>(resolve => { release = resolve })
    const svc = createRecommendService({
      libp2p: server,
      rejections,
      limits: { maxStreamsPerPeer: 2, maxPenalties: 3, timeoutMs: 10_000 },
      answer: async (req) => {
        if (req.family === 'wait') await gate
        return { ranking: [], evidence: { records: 0, authors: 0, snapshot: null }, coldStart: true, source: 'cold-start', objective: req.objective, taskClass: 'k' }
      }
    })
    await svc.start()
    const client = await createClientNode()
    try {
      const addr = server.getMultiaddrs()
      const waiting = [1, 2].map(async () => await requestRecommendation(client, addr, { model: 'm', family: 'wait', features: {} }))
      await expect.poll(() => svc.stats().active).toBe(2)
      await expect(requestRecommendation(client, addr, { model: 'm', features: {} })).rejects.toMatchObject({ code: 'E_BUSY' })
      release()
      await Promise.all(waiting)
      // BUSY is counted but not penalized; three invalid requests are
      for (let i = 0; i < 3; i++) await expect(requestRecommendation(client, addr, { model: 'm' })).rejects.toMatchObject({ code: 'E_REQ_INVALID' })
      // now refused even when valid
      await expect(requestRecommendation(client, addr, { model: 'm', features: {} })).rejects.toMatchObject({ code: 'E_PEER_PENALIZED' })
      expect(rejections.get('recommend:E_BUSY')).toBe(1)
      expect(rejections.get('recommend:E_PEER_PENALIZED')).toBe(1)
      // another peer is unaffected
      const other = await createClientNode()
      expect((await requestRecommendation(other, addr, { model: 'm', features: {} })).source).toBe('cold-start')
      await other.stop()
    } finally {
      await svc.stop()
      await client.stop()
      await server.stop()
    }
  })
})
