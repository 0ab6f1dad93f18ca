import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { Libp2p } from '@libp2p/interface'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { lpStream } from '@libp2p/utils'
import { apiGet } from '../../src/node/api-client.js'
import { loopbackAddr, spawnDaemon, type DaemonProcess } from '../../src/testbed/processes.js'
import { INFER_PROTOCOL } from '../../src/net/types.js'
import { createClientNode } from '../../src/net/rpc/client.js'
import { requestInference } from '../../src/net/infer.js'

/*
 * Issue #18 item 3 end to end: a daemon started through the CLI (real engine, embedded tiny
 * model, real LevelDB) and 8 fresh identities that each open 4 infer streams, send a length
 * prefix and stall. Before: the 32 stalled streams held every slot for the 120 s deadline and the
 * honest peer got E_BUSY. Now: strangers share 24 slots, the honest peer (net.priorityPeers) is
 * served while they are held, each stalled stream is refused with E_REQ_STALLED after 5 s and
 * charged to the peer guard, and a peer that stalls 8 streams is banned. Build first: `npx tsc -p .`.
 */
interface InferStats { active: number, activeStrangers: number, byCode: Record<string, number> }
interface Status { rejected: Record<string, number>, serving: { infer?: InferStats } }
interface TrustView { peers: Array<{ peer: string, banned: boolean, codes: Record<string, number> }> }

let root: string
let daemon: DaemonProcess
let honest: Libp2p
let addr: Multiaddr
const attackers: Libp2p[] = []

const status = async (): Promise<Status> => await apiGet<Status>(daemon.info.api, '/status')
const decoder = new TextDecoder()

/** An infer stream that sends a 128-byte length prefix and nothing else; resolves with the code the server answers. */
async function stalledStream (node: Libp2p): Promise<{ code: Promise<string> }> {
  const stream = await node.dialProtocol(addr, INFER_PROTOCOL)
  // the server may already have refused the stream (and closed it for writing)
  try { stream.send(Uint8Array.from([0x80, 0x01])) } catch {}
  const code = lpStream(stream).read({ signal: AbortSignal.timeout(30_000) })
    .then(b => String(JSON.parse(decoder.decode(b.subarray())).error?.code), (err: Error) => `closed:${err.name}`)
    // then reset it, so the connection's stream count (libp2p's own per-protocol cap) frees up for the next wave
    .finally(() => { stream.abort(new Error('attacker done')) })
  return { code }
}

async function waitStrangers (n: number): Promise<void> {
  await expect.poll(async () => (await status()).serving.infer?.activeStrangers, { timeout: 15_000, interval: 100 }).toBe(n)
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'swarmtune-infer-slots-'))
  const key = await generateKeyPair('Ed25519')
  const honestId = peerIdFromPrivateKey(key).toString()
  daemon = await spawnDaemon({
    dataDir: join(root, 'd'),
    port: 0,
    apiPort: 0,
    env: { SWARMTUNE__engine__defaultModel: 'tiny', SWARMTUNE__net__priorityPeers: JSON.stringify([honestId]) },
    timeoutMs: 60_000
  })
  addr = multiaddr(loopbackAddr(daemon.info))
  honest = await createClientNode({ privateKey: key })
  for (let i = 0; i < 8; i++) attackers.push(await createClientNode())
}, 90_000)

afterAll(async () => {
  for (const n of [honest, ...attackers]) await n?.stop()
  await daemon?.stop()
  if (root != null) rmSync(root, { recursive: true, force: true })
})

describe('stalled infer streams from 8 fresh identities', () => {
  it('the honest peer is served while strangers hold their share; stalled streams are refused and counted', async () => {
    // 8 identities × 4 stalled streams, opened together
    const streams = (await Promise.all(attackers.map(async a => await Promise.all([1, 2, 3, 4].map(async () => await stalledStream(a)))))).flat()
    await waitStrangers(24)
    // the attack is holding every slot a stranger may take: another fresh identity is refused
    const probe = await createClientNode()
    try {
      await expect(requestInference(probe, addr, { prompts: ['hi'], maxTokens: 1 }, { timeoutMs: 10_000 })).rejects.toMatchObject({ code: 'E_BUSY' })
    } finally {
      await probe.stop()
    }
    // the peer with standing is served meanwhile
    const during = await status()
    expect(during.serving.infer?.activeStrangers).toBe(24)
    const reply = await requestInference(honest, addr, { prompts: ['The swarm'], maxTokens: 4 }, { timeoutMs: 120_000 })
    expect(reply.outputs).toHaveLength(1)
    // every stalled stream got a coded answer: 24 stalled, 8 refused as busy
    const codes = await Promise.all(streams.map(async s => await s.code))
    expect(codes.filter(c => c === 'E_REQ_STALLED')).toHaveLength(24)
    expect(codes.filter(c => c === 'E_BUSY')).toHaveLength(8)
    const after = await status()
    expect(after.rejected['infer:E_REQ_STALLED']).toBe(24)
    expect(after.serving.infer?.active).toBe(0)
  }, 180_000)

  it('a peer that keeps stalling streams is banned and refused', async () => {
    const banned = async (peer: string): Promise<boolean> => (await apiGet<TrustView>(daemon.info.api, '/trust')).peers.find(p => p.peer === peer)?.banned === true
    const worst = attackers[0]
    const id = worst.peerId.toString()
    // waves of 4 stalled streams (1 penalty each, 8 = banned, half-life 60 s): bounded to 4 waves
    let waves = 0
    while (!(await banned(id)) && waves < 4) {
      const streams = await Promise.all([1, 2, 3, 4].map(async () => await stalledStream(worst)))
      // refused with E_REQ_STALLED, or hung up on at once by the stall that banned it
      for (const s of streams) expect(await s.code).toMatch(/^(E_REQ_STALLED|closed:.*)$/)
      waves++
      await expect.poll(async () => (await status()).serving.infer?.activeStrangers, { timeout: 5000 }).toBe(0)
    }
    expect(await banned(id)).toBe(true)
    expect((await apiGet<TrustView>(daemon.info.api, '/trust')).peers.find(p => p.peer === id)?.codes.E_REQ_STALLED).toBeGreaterThanOrEqual(8)
    // hung up on, and refused when it comes back
    await expect(requestInference(worst, addr, { prompts: ['hi'], maxTokens: 1 }, { timeoutMs: 10_000 })).rejects.toThrow()
    // the honest peer still is not
    expect((await requestInference(honest, addr, { prompts: ['The swarm'], maxTokens: 2 }, { timeoutMs: 120_000 })).outputs).toHaveLength(1)
  }, 120_000)
})
