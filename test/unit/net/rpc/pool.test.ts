import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import type { Libp2p } from 'libp2p'
import { lpStream } from '@libp2p/utils'
import { createClientNode } from '../../../../src/net/rpc/client.js'
import { encodeJson } from '../../../../src/net/rpc/framing.js'
import { RpcPool } from '../../../../src/net/rpc/pool.js'
import { startTestRpcServer, TEST_PROTOCOL, type TestResponse, type TestRpcServer } from '../../../helpers/rpc.js'

describe('rpc pool over libp2p on loopback', () => {
  let t: TestRpcServer
  let client: Libp2p

  beforeAll(async () => {
    t = await startTestRpcServer({ limits: { maxRequestBytes: 4096, timeoutMs: 500, maxPenalties: 1000, idleMs: 1000 } })
    client = await createClientNode()
  })
  afterAll(async () => {
    await client?.stop()
    await t?.stop()
  })

  it('answers several requests on one kept-open stream (pool), and recovers after an error response', async () => {
    const pool = new RpcPool(client, t.libp2p.getMultiaddrs(), TEST_PROTOCOL, { size: 2 })
    const before = t.svc.stats()
    const results = await Promise.all(Array.from({ length: 20 }, async (_, i) => await pool.call<TestResponse>({ text: String(i) })))
    expect(results.map(r => r.echo)).toEqual(Array.from({ length: 20 }, (_, i) => String(i)))
    const after = t.svc.stats()
    expect(after.answered - before.answered).toBe(20)
    expect(after.requests - before.requests).toBe(20)
    await expect(pool.call({})).rejects.toMatchObject({ code: 'E_REQ_INVALID' })
    expect((await pool.call<TestResponse>({ text: 'after' })).echo).toBe('after')
    await pool.close()
    await expect.poll(() => t.svc.stats().active).toBe(0)
  })

  it('gives a later request on a kept-open stream its own deadline, and closes an idle stream quietly', async () => {
    const stream = await client.dialProtocol(t.libp2p.getMultiaddrs(), TEST_PROTOCOL)
    const lp = lpStream(stream)
    const exchange = async (req: unknown): Promise<any> => {
      await lp.write(encodeJson(req))
      return JSON.parse(new TextDecoder().decode((await lp.read()).subarray()))
    }
    expect(await exchange({ text: 'a' })).toEqual({ echo: 'a' })
    // the second exchange waits past the first one's deadline: still answered
    await new Promise(resolve => setTimeout(resolve, 600))
    expect(await exchange({ text: 'b' })).toEqual({ echo: 'b' })
    expect((await exchange({ text: 'c', mode: 'slow' })).error.code).toBe('E_REQ_TIMEOUT')
    const idle = await client.dialProtocol(t.libp2p.getMultiaddrs(), TEST_PROTOCOL)
    const lpIdle = lpStream(idle)
    await lpIdle.write(encodeJson({ text: 'd' }))
    await lpIdle.read()
    const errors = t.svc.stats().errors
    await expect.poll(() => t.svc.stats().active, { timeout: 5000 }).toBe(0)
    expect(t.svc.stats().errors).toBe(errors)
    expect(t.rejections.get('test:E_STREAM_IDLE')).toBe(0)
  })
})
