import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { loadConfig, type SwarmtuneConfig } from '../../src/node/config.js'
import { createRecord, synthBodies, type SignedRecord } from '../../src/records/index.js'
import { createNetwork, RECORDS_TOPIC, type NetworkInit, type SwarmNetworkNode } from '../../src/net/index.js'
import type { RecordStore } from '../../src/store/types.js'
import { Counters } from '../../src/util/counters.js'
import { waitFor } from '../../src/util/wait.js'
import { createMemoryStore } from './memory-store.js'
import { createRecordStore } from '../../src/store/record-store.js'

/** Helpers for network tests and benchmarks: real libp2p nodes on 127.0.0.1, ephemeral ports. */
export interface TestNode {
  net: SwarmNetworkNode
  store: RecordStore
  rejections: Counters
  key: PrivateKey
  author: string
  /** records handed to onRecord */
  received: SignedRecord[]
  addr: string
  stop: () => Promise<void>
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

export function testConfig (over: { bootstrap?: string[], sync?: Partial<SwarmtuneConfig['net']['sync']>, denyPeers?: string[] } = {}): SwarmtuneConfig {
  return loadConfig({
    env: {},
    overrides: {
      dataDir: tempDir(),
      net: {
        listen: ['/ip4/127.0.0.1/tcp/0'],
        bootstrap: over.bootstrap ?? [],
        localTestbed: true,
        denyPeers: over.denyPeers ?? [],
        // periodic sync is off in tests unless asked for: sessions run on connect and syncNow()
        sync: { intervalMs: 3_600_000, pageSize: 64, timeoutMs: 3000, maxRecordsPerSession: 200_000, ...over.sync }
      }
    }
  })
}

export type StoreFactory = (author: string) => Promise<RecordStore>

export const memoryStores: StoreFactory = async () => createMemoryStore()

/** The real LevelDB store in a temp dir (the default: tests use the real components). */
export const levelStores: StoreFactory = async (author) =>
  createRecordStore({ path: join(tempDir('swarmtune-store-'), 'store'), maxRecords: 1_000_000, ownAuthor: author })

export async function startNode (opts: { bootstrap?: string[], sync?: Partial<SwarmtuneConfig['net']['sync']>, init?: NetworkInit, store?: StoreFactory, denyPeers?: string[] } = {}): Promise<TestNode> {
  const key = await generateKeyPair('Ed25519')
  const author = peerIdFromPrivateKey(key).toString()
  const config = testConfig(opts)
  const store = await (opts.store ?? levelStores)(author)
  await store.start()
  const rejections = new Counters()
  const received: SignedRecord[] = []
  const net = createNetwork({ config, privateKey: key, store, rejections, onRecord: r => { received.push(r) } }, opts.init)
  await net.start()
  const addr = net.addresses().find(a => a.includes('/ip4/127.0.0.1/'))!
  return {
    net, store, rejections, key, author, received, addr,
    stop: async () => { await net.stop(); await store.stop() }
  }
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

/**
 * Wait until each node has at least `n` mesh peers on the records topic. A record published
 * before the mesh forms can miss a peer (not in the mesh when forwarded, grafted before the next
 * IHAVE): sync repairs that later, but gossip tests must not depend on it.
 */
export async function waitForMesh (nodes: TestNode[], n: number | ((x: TestNode) => number) = 1): Promise<void> {
  const want = typeof n === 'number' ? () => n : n
  await waitFor('gossipsub mesh', () => nodes.every(x => meshPeers(x) >= want(x)))
}

export function meshPeers (x: TestNode): number {
  const ps = x.net.libp2p.services.pubsub as unknown as { getMeshPeers: (t: string) => string[] }
  return ps.getMeshPeers(RECORDS_TOPIC).length
}
