import { createHash } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { createNetwork, RECORDS_TOPIC, type NetworkLimits, type SwarmNetworkNode } from '../net/index.js'
import { loadConfig, type SwarmtuneConfig } from '../node/config.js'
import { createMetricsRegistry } from '../node/metrics.js'
import { createRecord, synthBodies, toWire, type SignedRecord, type UnsignedBody } from '../records/index.js'
import { decodeWireUnverified, verifyWire } from '../records/sign.js'
import type { RecordStore } from '../store/types.js'
import { Counters } from '../util/counters.js'
import { SwarmtuneError } from '../util/errors.js'
import { createRng } from '../util/random.js'
import { percentile } from '../util/stats.js'
import { dilate, linkLatencyMs, type DilationPlan } from './dilation.js'
import { createMemoryStore } from './memory-store.js'

/**
 * An in-process swarm (issue #19 item 5): up to ~1,000 swarmtune network nodes in one Node
 * process over @libp2p/memory. Each node is the real one (createNetwork: the same libp2p
 * options, noise, yamux, gossipsub parameters and scoring, records validator, ingest with real
 * ed25519 verification inline, sync, peer exchange); only the wire (memory instead of TCP,
 * chosen by the `/memory/` addresses, see usesMemoryTransport) and the store (the in-memory
 * RecordStore: a LevelDB per node costs file handles and caches that 1,000 nodes cannot afford)
 * differ. @libp2p/memory's own `latency` delays every chunk in turn (a per-link throughput cap,
 * not a delay), so it stays 0; instead `latency` delays each gossipsub RPC a node receives by
 * its link's one-way latency (a fixed draw per link, order kept per link), which covers every
 * message of record propagation (records, IHAVE/IWANT, GRAFT/PRUNE) but not sync, identify or
 * the connection handshakes (docs/BENCHMARKS.md says what that leaves out).
 *
 * Time dilation (`dilation` D, src/testbed/dilation.ts): every timing of every node and of the
 * simulation is slowed by D, so the one CPU looks D times faster to the simulated world; every
 * time this class returns (propagation delays) is in simulated ms, the real ones divided by D.
 * `verifyMs` replaces the cost of a signature check by a timed model: each node verifies one
 * record at a time, each taking `verifyMs` simulated ms (the real ed25519 check still runs, so a
 * forged record is still refused).
 *
 * Measurement hooks (counting only, nothing changes what gossipsub does): every node's pubsub
 * `decodeRpc` counts RPC bytes in, `handleReceivedMessage` counts records-topic messages in
 * (first deliveries and duplicates; the sender of the first copy is the delivery's source, which
 * gives each delivery's hop count), and `gossipsub:message` counts first deliveries.
 */

export interface SimulationOptions {
  peers: number
  /** each node bootstraps to this many random earlier nodes (peer exchange adds more, up to limits.targetPeers) */
  bootstrapDegree?: number
  seed?: number
  /** nodes started at once */
  startBatch?: number
  limits?: Partial<NetworkLimits>
  /** export libp2p's and gossipsub's metrics on a registry per node, as a daemon does */
  metrics?: boolean
  /** a run-unique prefix of the /memory/ addresses (two swarms in one process must differ) */
  name?: string
  /** time dilation factor D ≥ 1 (default 1: real time) */
  dilation?: number
  /** turn off per-connection timers that play no part in propagation (src/testbed/dilation.ts) */
  quietTimers?: boolean
  /** one-way link latency, log-uniform over [minMs, maxMs] simulated ms per link (default none) */
  latency?: { minMs: number, maxMs: number }
  /** simulated ms per signature check, one at a time per node (default 0: the real check's own time) */
  verifyMs?: number
  /**
   * sync on connect for the nodes of start() (default true). Their stores are empty at start, so
   * the sessions fetch nothing and only cost CPU; nodes added later (the late joiner) always sync.
   */
  syncOnStart?: boolean
  log?: (line: string) => void
}

export interface SimPeer {
  net: SwarmNetworkNode
  store: RecordStore
  key: PrivateKey
  author: string
  rejections: Counters
  addr: string
  /** RPC bytes and RPCs in, records-topic messages in, first deliveries (all since start) */
  traffic: { bytesIn: number, rpcsIn: number, recordMsgsIn: number, firstDeliveries: number }
}

/** One publish's outcome across the swarm. */
export interface Propagation {
  id: string
  /** simulated ms from publish to each other peer storing it (peers that never did are `missing`) */
  delays: number[]
  missing: number
  /** hop count of each delivery (1 = straight from the publisher) */
  hops: number[]
}

interface Pending { t0: number, publisher: string, msgHex: string, stored: Map<string, number>, source: Map<string, string> }

type Hookable = Record<string, (...args: any[]) => any>

export class SimulationError extends SwarmtuneError {}

const now = (): number => performance.timeOrigin + performance.now()
const msgHex = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex')

/**
 * The timed verification cost model of one node: the real check (so forgeries still fail), then
 * the verdict waits for the node's one verifier to be free for `costMs` real ms.
 */
export function timedVerifier (costMs: number): { verify: (wire: Uint8Array, now?: number) => Promise<SignedRecord>, check: (wire: Uint8Array, now?: number) => Promise<SignedRecord> } {
  let busyUntil = 0
  return {
    verify: async (wire, at) => {
      const record = await verifyWire(wire, at)
      const done = busyUntil = Math.max(performance.now(), busyUntil) + costMs
      await new Promise(resolve => setTimeout(resolve, done - performance.now()))
      return record
    },
    check: async (wire, at) => decodeWireUnverified(wire, at)
  }
}

export class Swarm {
  readonly peers: SimPeer[] = []
  /** the dilated timings every node runs with */
  readonly plan: DilationPlan
  private readonly pending = new Map<string, Pending>()
  private readonly byMsg = new Map<string, Pending>()
  private readonly rng: () => number
  private readonly seqs = new Map<string, number>()
  private readonly bodies: UnsignedBody[]
  private started = 0
  private starting = false

  constructor (private readonly o: SimulationOptions) {
    this.rng = createRng(o.seed ?? 1)
    this.bodies = synthBodies(500, o.seed ?? 1)
    this.plan = dilate({ factor: o.dilation ?? 1, quietTimers: o.quietTimers })
  }

  /** the dilation factor D */
  get dilation (): number { return this.plan.factor }

  /** wait `simulatedMs` of simulated time */
  async sleep (simulatedMs: number): Promise<void> {
    await new Promise(resolve => setTimeout(resolve, simulatedMs * this.plan.factor))
  }

  private config (addr: string, bootstrap: string[]): SwarmtuneConfig {
    return loadConfig({
      env: {},
      overrides: {
        dataDir: '/nonexistent-simulation',
        bench: { background: { enabled: false } },
        trust: { gossipPerPeerPerSecond: this.plan.trust.gossipPerPeerPerSecond },
        // verification inline (one process hosts every node), periodic sync off (sync runs on connect)
        net: { listen: [addr], bootstrap, localTestbed: true, denyPeers: [], sync: { intervalMs: this.plan.sync.intervalMs, timeoutMs: this.plan.sync.timeoutMs }, verifyWorkers: 0 }
      }
    })
  }

  /** Start one more node, bootstrapped to `degree` random running nodes. */
  async addPeer (degree = this.o.bootstrapDegree ?? 4): Promise<SimPeer> {
    const key = await generateKeyPair('Ed25519')
    const author = peerIdFromPrivateKey(key).toString()
    const addr = `/memory/${this.o.name ?? 'sim'}-${this.started++}`
    const boot = new Set<string>()
    const live = this.peers.length
    while (boot.size < Math.min(degree, live)) {
      const p = this.peers[Math.floor(this.rng() * live)]
      boot.add(`${p.addr}/p2p/${p.author}`)
    }
    const store = createMemoryStore()
    await store.start()
    const rejections = new Counters()
    const traffic = { bytesIn: 0, rpcsIn: 0, recordMsgsIn: 0, firstDeliveries: 0 }
    const net = createNetwork({
      config: this.config(addr, [...boot]),
      privateKey: key,
      store,
      rejections,
      onRecord: (r) => { this.onStored(author, r) }
    }, {
      syncOnConnect: !this.starting || this.o.syncOnStart !== false,
      limits: { ...this.plan.limits, ...this.o.limits },
      timing: this.plan.timing,
      ...((this.o.verifyMs ?? 0) > 0 ? { verifier: timedVerifier((this.o.verifyMs ?? 0) * this.plan.factor) } : {}),
      ...(this.o.metrics === true ? { metrics: createMetricsRegistry() } : {})
    })
    await net.start()
    this.hook(net, author, traffic)
    this.delayLinks(net, author)
    const peer: SimPeer = { net, store, key, author, rejections, addr, traffic }
    this.peers.push(peer)
    return peer
  }

  /** Count traffic and first-delivery sources on a started node (wrappers call the originals). */
  private hook (net: SwarmNetworkNode, author: string, t: SimPeer['traffic']): void {
    const ps = net.libp2p.services.pubsub as unknown as Hookable
    const decode = ps.decodeRpc.bind(ps)
    ps.decodeRpc = (bytes: Uint8Array) => { t.bytesIn += bytes.length; t.rpcsIn++; return decode(bytes) }
    const handle = ps.handleReceivedMessage.bind(ps)
    ps.handleReceivedMessage = async (from: { toString: () => string }, msg: { topic: string, data?: Uint8Array }) => {
      if (msg.topic === RECORDS_TOPIC) {
        t.recordMsgsIn++
        // the first copy received is the one validated (later copies are duplicates): its sender is the delivery's source
        const p = this.byMsg.size > 0 && msg.data != null ? this.byMsg.get(msgHex(msg.data)) : undefined
        if (p != null && !p.source.has(author)) p.source.set(author, from.toString())
      }
      return await handle(from, msg)
    }
    net.libp2p.services.pubsub.addEventListener('gossipsub:message', (evt) => {
      if (evt.detail.msg.topic === RECORDS_TOPIC) t.firstDeliveries++
    })
  }

  /**
   * Link latency: each gossipsub RPC this node receives is handled its link's latency later
   * (real ms = simulated × D). One latency per link and timers of equal delay fire in order, so
   * RPCs on a link keep their order.
   */
  private delayLinks (net: SwarmNetworkNode, author: string): void {
    const lat = this.o.latency
    if (lat == null || lat.maxMs <= 0) return
    const ps = net.libp2p.services.pubsub as unknown as Hookable
    const handle = ps.handleReceivedRpc.bind(ps)
    const seed = this.o.seed ?? 1
    const perLink = new Map<string, number>()
    ps.handleReceivedRpc = async (from: { toString: () => string }, rpc: unknown) => {
      const peer = from.toString()
      let ms = perLink.get(peer)
      if (ms == null) perLink.set(peer, ms = linkLatencyMs(author, peer, seed, lat.minMs, lat.maxMs) * this.plan.factor)
      await new Promise(resolve => setTimeout(resolve, ms))
      return await handle(from, rpc)
    }
  }

  /** Start `peers` nodes, `startBatch` at a time. */
  async start (): Promise<void> {
    const batch = this.o.startBatch ?? 10
    this.starting = true
    // the first few alone, so later ones have somewhere to bootstrap
    while (this.peers.length < Math.min(this.o.peers, batch)) await this.addPeer()
    while (this.peers.length < this.o.peers) {
      const n = Math.min(batch, this.o.peers - this.peers.length)
      await Promise.all(Array.from({ length: n }, async () => await this.addPeer()))
      if (this.peers.length % 100 === 0) this.o.log?.(`  ${this.peers.length}/${this.o.peers} nodes started`)
    }
    this.starting = false
  }

  /** Records-topic mesh sizes of every node. */
  meshSizes (): number[] {
    return this.peers.map(p => (p.net.libp2p.services.pubsub as unknown as { getMeshPeers: (t: string) => string[] }).getMeshPeers(RECORDS_TOPIC).length)
  }

  /** A new signed record of `peer`, stored as its own (not yet published). */
  async ownRecord (peer: SimPeer): Promise<SignedRecord> {
    const seq = (this.seqs.get(peer.author) ?? 0) + 1
    this.seqs.set(peer.author, seq)
    const rec = await createRecord(peer.key, peer.author, seq, this.bodies[(seq * 7 + this.peers.indexOf(peer)) % this.bodies.length])
    await peer.store.put(rec, { own: true })
    return rec
  }

  /** Publish a new record from `peer` and wait until every other node stored it (or `timeoutMs` simulated ms). */
  async propagate (peer: SimPeer, timeoutMs = 30_000): Promise<Propagation> {
    const d = this.plan.factor
    const rec = await this.ownRecord(peer)
    const p: Pending = { t0: 0, publisher: peer.author, msgHex: msgHex(toWire(rec)), stored: new Map(), source: new Map() }
    this.pending.set(rec.id, p)
    this.byMsg.set(p.msgHex, p)
    p.t0 = now()
    await peer.net.publishRecord(rec)
    const want = this.peers.length - 1
    const deadline = Date.now() + timeoutMs * d
    while (p.stored.size < want && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 5))
    this.pending.delete(rec.id)
    this.byMsg.delete(p.msgHex)
    return { id: rec.id, delays: [...p.stored.values()].map(t => (t - p.t0) / d), missing: want - p.stored.size, hops: this.hops(p) }
  }

  private onStored (author: string, r: SignedRecord): void {
    const p = this.pending.get(r.id)
    if (p != null && !p.stored.has(author)) p.stored.set(author, now())
  }

  /** Depth of each receiver in the first-delivery tree rooted at the publisher. */
  private hops (p: Pending): number[] {
    const depth = new Map<string, number>([[p.publisher, 0]])
    const of = (peer: string, guard: number): number => {
      const known = depth.get(peer)
      if (known != null) return known
      const src = p.source.get(peer)
      // delivered by sync, or its source not traced: count it as one hop beyond nothing known
      const d = src == null || guard > this.peers.length ? 1 : of(src, guard + 1) + 1
      depth.set(peer, d)
      return d
    }
    return [...p.stored.keys()].map(a => of(a, 0))
  }

  /** Sum of every node's traffic counters. */
  traffic (): SimPeer['traffic'] {
    const t = { bytesIn: 0, rpcsIn: 0, recordMsgsIn: 0, firstDeliveries: 0 }
    for (const p of this.peers) { t.bytesIn += p.traffic.bytesIn; t.rpcsIn += p.traffic.rpcsIn; t.recordMsgsIn += p.traffic.recordMsgsIn; t.firstDeliveries += p.traffic.firstDeliveries }
    return t
  }

  async stop (): Promise<void> {
    const all = this.peers.splice(0)
    for (let i = 0; i < all.length; i += 50) {
      await Promise.all(all.slice(i, i + 50).map(async p => { await p.net.stop(); await p.store.stop() }))
    }
  }
}

/** Nearest-rank percentile, 0 for no samples. */
export function pct (xs: number[], p: number): number {
  return xs.length === 0 ? 0 : percentile(xs, p, 'nearest-rank')
}

export async function startSwarm (o: SimulationOptions): Promise<Swarm> {
  if (!Number.isInteger(o.peers) || o.peers < 2) throw new SimulationError('E_SIM_PEERS', `a swarm needs at least 2 peers (got ${o.peers})`)
  const swarm = new Swarm(o)
  try {
    await swarm.start()
  } catch (err) {
    await swarm.stop()
    throw err
  }
  return swarm
}
