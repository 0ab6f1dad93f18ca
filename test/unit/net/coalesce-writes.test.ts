import { describe, it, expect, afterEach } from 'vitest'
import { createServer, connect, type Server, type Socket } from 'node:net'
import { once } from 'node:events'
import { coalesceSocketWrites } from '../../../src/net/coalesce-writes.js'

/**
 * coalesce-writes.ts on real loopback sockets: what is written in one loop turn reaches the
 * kernel in one vectored write, the bytes arrive whole and in order, and a chunk at or over the
 * high-water mark is not held back.
 */

interface Pair { client: Socket, received: () => Buffer, server: Server }

const open: Pair[] = []

async function pair (): Promise<Pair> {
  const chunks: Buffer[] = []
  const server = createServer(s => { s.on('data', b => chunks.push(b)) })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as { port: number }).port
  const client = connect(port, '127.0.0.1')
  await once(client, 'connect')
  client.setNoDelay(true)
  const p = { client, server, received: () => Buffer.concat(chunks) }
  open.push(p)
  return p
}

/** Counts the socket's calls down to libuv: one per write, or one per corked batch. */
function countKernelWrites (s: Socket): { single: number, vectored: number } {
  const n = { single: 0, vectored: 0 }
  const internal = s as unknown as { _write: (...a: unknown[]) => void, _writev: (...a: unknown[]) => void }
  const w = internal._write.bind(s)
  const wv = internal._writev.bind(s)
  internal._write = (...a) => { n.single++; w(...a) }
  internal._writev = (...a) => { n.vectored++; wv(...a) }
  return n
}

const turn = async (): Promise<void> => { await new Promise(resolve => setImmediate(resolve)) }

afterEach(async () => {
  for (const p of open.splice(0)) {
    p.client.destroy()
    await new Promise(resolve => p.server.close(resolve))
  }
})

describe('coalesceSocketWrites', () => {
  it('sends what one turn writes in one vectored write, in order', async () => {
    const { client, received } = await pair()
    coalesceSocketWrites(client)
    const n = countKernelWrites(client)
    const parts = Array.from({ length: 6 }, (_, i) => Buffer.alloc(100 + i, 65 + i))
    for (const p of parts) expect(client.write(p)).toBe(true)
    expect(n.single + n.vectored).toBe(0)
    await turn()
    expect(n).toEqual({ single: 0, vectored: 1 })
    // the next turn is a new batch
    client.write(Buffer.from('x'))
    client.write(Buffer.from('y'))
    await turn()
    expect(n.vectored).toBe(2)
    const want = Buffer.concat([...parts, Buffer.from('xy')])
    for (let i = 0; i < 100 && received().length < want.length; i++) await new Promise(resolve => setTimeout(resolve, 10))
    expect(received().equals(want)).toBe(true)
  })

  it('does not hold back a chunk at the high-water mark, nor let the corked bytes reach it', async () => {
    const { client, received } = await pair()
    coalesceSocketWrites(client)
    const n = countKernelWrites(client)
    const mark = client.writableHighWaterMark
    const small = Buffer.alloc(mark / 4, 1)
    client.write(small)
    client.write(small)
    client.write(small)
    // the fourth quarter would fill the buffer: the three go out first
    client.write(small)
    expect(n.vectored).toBe(1)
    expect(client.writableLength).toBeLessThan(mark)
    const big = Buffer.alloc(mark * 2, 2)
    client.write(big)
    // the big chunk went straight down (after flushing the quarter held before it)
    expect(n.single + n.vectored).toBe(3)
    await turn()
    const want = Buffer.concat([small, small, small, small, big])
    for (let i = 0; i < 200 && received().length < want.length; i++) await new Promise(resolve => setTimeout(resolve, 10))
    expect(received().equals(want)).toBe(true)
  })

  it('a socket destroyed with writes held neither throws nor leaves a timer that does', async () => {
    const { client } = await pair()
    coalesceSocketWrites(client)
    client.write(Buffer.from('held'))
    client.destroy()
    await turn()
    expect(client.destroyed).toBe(true)
  })
})
