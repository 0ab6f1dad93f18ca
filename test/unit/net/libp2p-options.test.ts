import { describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { Registry } from 'prom-client'
import { createSwarmLibp2p, usesMemoryTransport } from '../../../src/net/libp2p.js'
import { resolveLimits } from '../../../src/net/limits.js'
import { loopbackConfig } from '../../../src/testbed/loopback.js'

describe('libp2p node options', () => {
  it('picks the memory transport only for /memory/ addresses', () => {
    expect(usesMemoryTransport({ listen: ['/memory/sim-1'], bootstrap: [] })).toBe(true)
    expect(usesMemoryTransport({ listen: [], bootstrap: ['/memory/sim-0/p2p/12D3KooWabc'] })).toBe(true)
    expect(usesMemoryTransport({ listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: ['/ip4/10.0.0.1/tcp/4101/p2p/12D3KooWabc'] })).toBe(false)
  })

  it('net.metrics: false keeps libp2p and gossipsub metrics off the given registry', async () => {
    const families = async (metrics: boolean): Promise<string[]> => {
      const config = loopbackConfig({ dataDir: '/nonexistent' })
      const registry = new Registry()
      const node = await createSwarmLibp2p({ config: { net: { ...config.net, metrics } }, privateKey: await generateKeyPair('Ed25519'), limits: resolveLimits(), metrics: registry })
      await node.start()
      const names = (await registry.getMetricsAsJSON()).map(m => m.name)
      await node.stop()
      return names
    }
    const on = await families(true)
    expect(on.some(n => n.startsWith('gossipsub_'))).toBe(true)
    expect(on.some(n => n.startsWith('libp2p_'))).toBe(true)
    expect(await families(false)).toEqual([])
  }, 30_000)
})
