import { afterEach } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { SwarmtuneConfig } from '../../src/node/config.js'
import { createRecord, synthBodies, type SignedRecord } from '../../src/records/index.js'
import type { NetworkInit } from '../../src/net/index.js'
import { createSwarmLibp2p, type SwarmLibp2p } from '../../src/net/libp2p.js'
import { resolveLimits } from '../../src/net/limits.js'
import type { RecordStore } from '../../src/store/types.js'
import { loopbackConfig, startLoopbackPeer, type LoopbackPeer } from '../../src/testbed/loopback.js'
import { waitFor } from '../../src/util/wait.js'
import { createMemoryStore } from './memory-store.js'

export { connect, meshPeers, waitForMesh } from '../../src/testbed/loopback.js'

/** Network tests' peers: loopback peers (src/testbed/loopback.ts) that record what onRecord saw. */
export interface TestNode extends LoopbackPeer {
  /** records handed to onRecord */
  received: SignedRecord[]
}

const tmpDirs: string[] = []

export function tempDir (prefix = 'swarmtune-net-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix))
  tmpDirs.push(d)
  return d
}

export function cleanupTempDirs (): void {
  for (const d of tmpDirs.splice(0)) rmSync(d, { recursive: true, force: true })
}

type SyncConfig = Partial<SwarmtuneConfig['net']['sync']>
// small sessions and a short timeout so the sync tests reach their limits quickly
const TEST_SYNC = { pageSize: 64, timeoutMs: 3000, maxRecordsPerSession: 200_000 }

export function testConfig (over: { bootstrap?: string[], sync?: SyncConfig, denyPeers?: string[] } = {}): SwarmtuneConfig {
  return loopbackConfig({ ...over, dataDir: tempDir(), sync: { ...TEST_SYNC, ...over.sync } })
}

export type StoreFactory = (author: string) => Promise<RecordStore>

export const memoryStores: StoreFactory = async () => createMemoryStore()

/** A started peer; its store is the real LevelDB one unless `store` says otherwise. */
export async function startNode (opts: { bootstrap?: string[], sync?: SyncConfig, init?: NetworkInit, store?: StoreFactory, denyPeers?: string[], verifyWorkers?: number } = {}): Promise<TestNode> {
  const received: SignedRecord[] = []
  const peer = await startLoopbackPeer({ ...opts, dataDir: tempDir(), sync: { ...TEST_SYNC, ...opts.sync }, onRecord: r => { received.push(r) } })
  return { ...peer, received }
}

/** Sign `count` synthetic records as `author` (seqs from `firstSeq`) and store them as own. */
export async function ownRecords (node: Pick<TestNode, 'key' | 'author' | 'store'>, count: number, firstSeq = 1, seed = 1): Promise<SignedRecord[]> {
  const out: SignedRecord[] = []
  const bodies = synthBodies(count, seed)
  for (let i = 0; i < count; i++) {
    const r = await createRecord(node.key, node.author, firstSeq + i, bodies[i])
    await node.store.put(r, { own: true })
    out.push(r)
  }
  return out
}

/** Wait until every node has `n` peers subscribed to the records topic (mesh ready to gossip). */
export async function waitForTopicPeers (nodes: TestNode[], n = 1): Promise<void> {
  await waitFor('topic subscriptions', () => nodes.every(x => x.net.stats().gossipTopicPeers >= n))
}

export type RawPeer = SwarmLibp2p & { author: string, key: Awaited<ReturnType<typeof generateKeyPair>> }

/**
 * The peers of one test file, stopped after each test: our nodes (`node`) and raw libp2p nodes
 * built from the same stack without our validator or sync service (`rawPeer`), which publish and
 * speak the sync protocol however a hostile peer likes.
 */
export function testPeers (defaults: Parameters<typeof startNode>[0] = {}): { node: typeof startNode, rawPeer: () => Promise<RawPeer> } {
  const nodes: TestNode[] = []
  const raws: SwarmLibp2p[] = []
  afterEach(async () => {
    await Promise.all(raws.splice(0).map(async r => { await r.stop() }))
    await Promise.all(nodes.splice(0).map(async n => { await n.stop() }))
    cleanupTempDirs()
  })
  return {
    async node (opts = {}) {
      const n = await startNode({ ...defaults, ...opts })
      nodes.push(n)
      return n
    },
    async rawPeer () {
      const key = await generateKeyPair('Ed25519')
      const p = await createSwarmLibp2p({ config: testConfig(), privateKey: key, limits: resolveLimits() })
      await p.start()
      raws.push(p)
      return Object.assign(p, { author: peerIdFromPrivateKey(key).toString(), key })
    }
  }
}
