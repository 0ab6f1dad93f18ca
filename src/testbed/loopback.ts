import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { Connection, PrivateKey } from '@libp2p/interface'
import { createNetwork, RECORDS_TOPIC, type NetConfig, type NetworkComponents, type NetworkInit, type SwarmNetworkNode } from '../net/index.js'
import { loadConfig, type SwarmtuneConfig } from '../node/config.js'
import { createRecordStore } from '../store/record-store.js'
import type { RecordStore } from '../store/types.js'
import { Counters } from '../util/counters.js'
import { waitFor } from '../util/wait.js'

/**
 * Swarm peers inside this process on 127.0.0.1, for the network tests, the network benchmarks
 * and the attack scripts: a real network node (gossip + sync) with its own key and record store
 * on an ephemeral port. Daemons as separate CLI processes are in processes.ts.
 */

export interface LoopbackConfigOptions {
  dataDir: string
  bootstrap?: string[]
  denyPeers?: string[]
  /** over the loopback default: periodic sync off (sessions run on connect and syncNow()) */
  sync?: Partial<NetConfig['sync']>
  /** verification threads (default 0, inline: many loopback peers share one process) */
  verifyWorkers?: number | 'auto'
}

/** Config of a peer on loopback: ephemeral port, local-testbed limits, no periodic sync. */
export function loopbackConfig (o: LoopbackConfigOptions): SwarmtuneConfig {
  const sync: Record<string, number | boolean> = { intervalMs: 3_600_000 }
  // unset keys are left out: loadConfig's overrides are JSON, where undefined has no place
  for (const [k, v] of Object.entries(o.sync ?? {})) if (v != null) sync[k] = v
  return loadConfig({
    env: {},
    overrides: {
      dataDir: o.dataDir,
      // loopback peers measure and evaluate nothing in the background (tests and benchmarks stay quiet)
      bench: { background: { enabled: false } },
      meta: { evalIntervalMs: 0 },
      net: { listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: o.bootstrap ?? [], localTestbed: true, denyPeers: o.denyPeers ?? [], sync, verifyWorkers: o.verifyWorkers ?? 0 }
    }
  })
}

export interface LoopbackPeerOptions extends Partial<LoopbackConfigOptions> {
  /** default: a fresh temp dir, removed by stop() (a given one is left to its owner) */
  dataDir?: string
  /** default: LevelDB in <dataDir>/store */
  store?: (author: string, dataDir: string) => Promise<RecordStore>
  /** capacity of the default store */
  maxRecords?: number
  /** called for every record newly stored from the network */
  onRecord?: NetworkComponents['onRecord']
  init?: NetworkInit
}

export interface LoopbackPeer {
  net: SwarmNetworkNode
  store: RecordStore
  key: PrivateKey
  /** the peer id, which is also the author id of its own records */
  author: string
  rejections: Counters
  config: SwarmtuneConfig
  /** the 127.0.0.1 multiaddr others dial */
  addr: string
  /** stop the network, then the store (and remove the data dir if it was made here) */
  stop: () => Promise<void>
}

export async function startLoopbackPeer (o: LoopbackPeerOptions = {}): Promise<LoopbackPeer> {
  const ownDir = o.dataDir == null
  const dataDir = o.dataDir ?? mkdtempSync(join(tmpdir(), 'swarmtune-loopback-'))
  const removeDir = (): void => { if (ownDir) rmSync(dataDir, { recursive: true, force: true }) }
  const key = await generateKeyPair('Ed25519')
  const author = peerIdFromPrivateKey(key).toString()
  const config = loopbackConfig({ ...o, dataDir })
  const store = o.store != null
    ? await o.store(author, dataDir)
    : createRecordStore({ path: join(dataDir, 'store'), maxRecords: o.maxRecords ?? 1_000_000, ownAuthor: author })
  await store.start()
  const rejections = new Counters()
  const net = createNetwork({ config, privateKey: key, store, rejections, onRecord: o.onRecord }, o.init)
  try {
    await net.start()
  } catch (err) {
    await store.stop()
    removeDir()
    throw err
  }
  const addrs = net.addresses()
  return {
    net, store, key, author, rejections, config,
    addr: addrs.find(a => a.startsWith('/ip4/127.0.0.1/')) ?? addrs[0],
    stop: async () => { await net.stop(); await store.stop(); removeDir() }
  }
}

/** Dial `to` (a peer or its multiaddr) from `from`. */
export async function connect (from: Pick<LoopbackPeer, 'net'>, to: Pick<LoopbackPeer, 'addr'> | string): Promise<Connection> {
  return await from.net.libp2p.dial(multiaddr(typeof to === 'string' ? to : to.addr))
}

/** Mesh peers on the records topic. */
export function meshPeers (p: Pick<LoopbackPeer, 'net'>): number {
  // the implementation has getMeshPeers; the GossipSub interface does not declare it
  const ps = p.net.libp2p.services.pubsub as unknown as { getMeshPeers: (topic: string) => string[] }
  return ps.getMeshPeers(RECORDS_TOPIC).length
}

/**
 * Wait until each peer has at least `n` mesh peers on the records topic. A record published
 * before the mesh forms can miss a peer (not in the mesh when forwarded, grafted before the next
 * IHAVE): sync repairs that later, but gossip measurements must not depend on it.
 */
export async function waitForMesh<P extends Pick<LoopbackPeer, 'net'>> (peers: P[], n: number | ((p: P) => number) = 1, timeoutMs = 30_000): Promise<void> {
  const want = typeof n === 'number' ? () => n : n
  await waitFor('gossipsub mesh', () => peers.every(p => meshPeers(p) >= want(p)), timeoutMs, 25)
}
