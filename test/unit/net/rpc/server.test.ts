import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import type { Libp2p } from 'libp2p'
import { lpStream } from '@libp2p/utils'
import { createClientNode, rpcCall } from '../../../../src/net/rpc/client.js'
import { summarizeMs } from '../../../../src/net/rpc/server.js'
import { startTestRpcServer, TEST_PROTOCOL, type TestResponse, type TestRpcServer } from '../../../helpers/rpc.js'

describe('rpc server over libp2p on loopback', () => {
  let t: TestRpcServer
  let client: Libp2p
  const call = async (req: Record<string, unknown>): Promise<TestResponse> => await rpcCall<TestResponse>(client, t.libp2p.getMultiaddrs(), TEST_PROTOCOL, req)

  beforeAll(async () => {
    t = await startTestRpcServer({ limits: { maxRequestBytes: 4096, timeoutMs: 500, maxPenalties: 1000 } })
    client = await createClientNode()
  })
  afterAll(async () => {
    await client?.stop()
    await t?.stop()
  })

  it('answers a valid request', async () => {
    expect(await call({ text: 'hi' })).toEqual({ echo: 'hi' })
    expect(t.answered.at(-1)).toEqual({ text: 'hi' })
  })

  it('answers invalid, oversize, garbage and truncated input with coded errors and counts them', async () => {
    t.answered.length = 0
    await expect(call({})).rejects.toMatchObject({ code: 'E_REQ_INVALID' })
    await expect(call({ text: 'y'.repeat(5000) })).rejects.toMatchObject({ code: 'E_REQ_OVERSIZE' })
    // a valid length prefix followed by bytes that are not JSON
    const stream = await client.dialProtocol(t.libp2p.getMultiaddrs(), TEST_PROTOCOL)
    const lp = lpStream(stream)
    await lp.write(Uint8Array.from([0xff, 0xfe, 0x00, 0x01, 0x02]))
    const reply = JSON.parse(new TextDecoder().decode((await lp.read()).subarray()))
    expect(reply.error.code).toBe('E_REQ_MALFORMED')
    // raw garbage whose "length prefix" is huge
    const s2 = await client.dialProtocol(t.libp2p.getMultiaddrs(), TEST_PROTOCOL)
    s2.send(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3]))
    const lp2 = lpStream(s2)
    expect(JSON.parse(new TextDecoder().decode((await lp2.read()).subarray())).error.code).toBe('E_REQ_OVERSIZE')
    // half a request, then close
    const s3 = await client.dialProtocol(t.libp2p.getMultiaddrs(), TEST_PROTOCOL)
    s3.send(Uint8Array.from([100, 1, 2]))
    await s3.close()
    await expect.poll(() => t.rejections.get('test:E_REQ_TRUNCATED'), { timeout: 5000 }).toBe(1)
    expect(t.answered).toHaveLength(0)
    expect(t.rejections.get('test:E_REQ_INVALID')).toBe(1)
    expect(t.rejections.get('test:E_REQ_OVERSIZE')).toBe(2)
    expect(t.rejections.get('test:E_REQ_MALFORMED')).toBe(1)
    expect(t.violations).toEqual(expect.arrayContaining(['E_REQ_INVALID', 'E_REQ_OVERSIZE', 'E_REQ_MALFORMED', 'E_REQ_TRUNCATED']))
    // and still answers
    expect(await call({ text: 'again' })).toEqual({ echo: 'again' })
  })

  it('times out a slow answer with E_REQ_TIMEOUT and hides internal errors', async () => {
    await expect(call({ text: 'x', mode: 'slow' })).rejects.toMatchObject({ code: 'E_REQ_TIMEOUT' })
    await expect(call({ text: 'x', mode: 'boom' })).rejects.toMatchObject({ code: 'E_INTERNAL', message: 'internal error' })
    expect(t.svc.stats().byCode.E_REQ_TIMEOUT).toBe(1)
  })
})

describe('per-peer stream limit and penalties', () => {
  it('answers E_BUSY beyond the concurrent limit and E_PEER_PENALIZED after too many bad requests', async () => {
    let release!: () => void
    const gate = new Promise<void>(resolve => { release = resolve })
    const t = await startTestRpcServer({
      limits: { maxStreamsPerPeer: 2, maxPenalties: 3, timeoutMs: 10_000 },
      answer: async (req) => {
        if (req.mode === 'wait') await gate
        return { echo: req.text }
      }
    })
    const client = await createClientNode()
    const call = async (node: Libp2p, req: Record<string, unknown>): Promise<TestResponse> => await rpcCall<TestResponse>(node, t.libp2p.getMultiaddrs(), TEST_PROTOCOL, req)
    try {
      const waiting = [1, 2].map(async () => await call(client, { text: 'w', mode: 'wait' }))
      await expect.poll(() => t.svc.stats().active).toBe(2)
      await expect(call(client, { text: 'x' })).rejects.toMatchObject({ code: 'E_BUSY' })
      release()
      await Promise.all(waiting)
      // BUSY is counted but not penalized; three invalid requests are
      for (let i = 0; i < 3; i++) await expect(call(client, {})).rejects.toMatchObject({ code: 'E_REQ_INVALID' })
      // now refused even when valid
      await expect(call(client, { text: 'x' })).rejects.toMatchObject({ code: 'E_PEER_PENALIZED' })
      expect(t.rejections.get('test:E_BUSY')).toBe(1)
      expect(t.rejections.get('test:E_PEER_PENALIZED')).toBe(1)
      // another peer is unaffected
      const other = await createClientNode()
      expect(await call(other, { text: 'ok' })).toEqual({ echo: 'ok' })
      await other.stop()
    } finally {
      await client.stop()
      await t.stop()
    }
  })
})

describe('stalled streams and slots kept for peers with standing (issue #18)', () => {
  const readError = async (lp: ReturnType<typeof lpStream>): Promise<string> => JSON.parse(new TextDecoder().decode((await lp.read()).subarray())).error.code

  it('refuses a stream whose first request stalls after firstFrameMs, then still answers slowly computed requests', async () => {
    const t = await startTestRpcServer({ limits: { firstFrameMs: 300, timeoutMs: 10_000, maxPenalties: 1000 } })
    const client = await createClientNode()
    try {
      const stream = await client.dialProtocol(t.libp2p.getMultiaddrs(), TEST_PROTOCOL)
      // a length prefix of 100 bytes, then nothing
      stream.send(Uint8Array.from([100]))
      expect(await readError(lpStream(stream))).toBe('E_REQ_STALLED')
      expect(t.rejections.get('test:E_REQ_STALLED')).toBe(1)
      expect(t.violations).toContain('E_REQ_STALLED')
      // the answer has timeoutMs of its own: a 1.5 s answer is not cut at firstFrameMs
      expect(await rpcCall<TestResponse>(client, t.libp2p.getMultiaddrs(), TEST_PROTOCOL, { text: 's', mode: 'slow' })).toEqual({ echo: 's' })
    } finally {
      await client.stop()
      await t.stop()
    }
  })

  it('strangers share maxStreamsTotal - reservedStreams; a peer with standing is still served', async () => {
    const vip = await createClientNode()
    const strangers = await Promise.all([1, 2].map(async () => await createClientNode()))
    const t = await startTestRpcServer({ limits: { maxStreamsTotal: 4, reservedStreams: 2, maxStreamsPerPeer: 4, firstFrameMs: 30_000, timeoutMs: 30_000 }, standing: peer => peer === vip.peerId.toString() })
    try {
      // stranger 1 holds the strangers' two slots with stalled streams
      const held = await Promise.all([1, 2].map(async () => {
        const s = await strangers[0].dialProtocol(t.libp2p.getMultiaddrs(), TEST_PROTOCOL)
        s.send(Uint8Array.from([100]))
        return s
      }))
      await expect.poll(() => t.svc.stats().activeStrangers).toBe(2)
      // another fresh identity is refused although two slots are free
      await expect(rpcCall(strangers[1], t.libp2p.getMultiaddrs(), TEST_PROTOCOL, { text: 'x' })).rejects.toMatchObject({ code: 'E_BUSY' })
      // the peer with standing gets a reserved slot
      expect(await rpcCall<TestResponse>(vip, t.libp2p.getMultiaddrs(), TEST_PROTOCOL, { text: 'vip' })).toEqual({ echo: 'vip' })
      for (const s of held) s.abort(new Error('done'))
    } finally {
      for (const n of [vip, ...strangers]) await n.stop()
      await t.stop()
    }
  })
})

describe('summarizeMs', () => {
  it('nearest-rank percentiles', () => {
    expect(summarizeMs([])).toEqual({ n: 0, p50: 0, p99: 0, max: 0 })
    const xs = Array.from({ length: 100 }, (_, i) => i + 1)
    expect(summarizeMs(xs)).toEqual({ n: 100, p50: 50, p99: 99, max: 100 })
  })
})
