import type { Connection, PeerId, Stream } from '@libp2p/interface'
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import type { Counters } from '../util/counters.js'
import type { Logger } from '../util/log.js'
import type { SwarmLibp2p } from './libp2p.js'
import { PEERS_PROTOCOL } from './types.js'

/*
 * Peer exchange, /swarmtune/peers/1.0.0: a newcomer that only knows a bootstrap peer asks it
 * for other peers' listen addresses and dials a few, so the swarm becomes a well-connected
 * graph instead of a star around the bootstrap peer (gossipsub needs several mesh peers per node
 * to deliver in one or two hops). The client writes nothing; the server answers one frame,
 * JSON ["/ip4/.../tcp/.../p2p/12D3...", ...], and closes.
 */
export const MAX_PEERS_FRAME = 16 * 1024
export const MAX_PEERS_ANSWER = 32

/** Pure: validate an untrusted answer; keeps only well-formed multiaddrs that name a peer. */
export function parsePeersAnswer (bytes: Uint8Array, self: string): string[] {
  let v: unknown
  try { v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) } catch { return [] }
  if (!Array.isArray(v)) return []
  const out: string[] = []
  for (const a of v.slice(0, MAX_PEERS_ANSWER)) {
    if (typeof a !== 'string' || a.length > 256) continue
    try {
      const p2p = multiaddr(a).getComponents().filter(c => c.name === 'p2p').pop()?.value
      if (p2p != null && p2p !== self) out.push(a)
    } catch {}
  }
  return out
}

export interface PeerExchangeOptions {
  /** dial discovered peers until this many are connected */
  targetPeers: number
  timeoutMs: number
}

export class PeerExchange {
  private readonly asking = new Set<string>()
  private running = false

  constructor (private readonly node: SwarmLibp2p, private readonly opts: PeerExchangeOptions, private readonly stats: Counters, private readonly log: Logger) {}

  async start (): Promise<void> {
    this.running = true
    await this.node.handle(PEERS_PROTOCOL, async (stream, conn) => { await this.answer(stream, conn) }, { maxInboundStreams: 2, maxOutboundStreams: 2, force: true })
  }

  stop (): void { this.running = false }

  /** Listen addresses of our other peers, as learned by identify. */
  private async known (exclude: PeerId): Promise<string[]> {
    const out: string[] = []
    const peers = this.node.getPeers().filter(p => !p.equals(exclude))
    // a random subset, so newcomers spread over the swarm instead of all picking the same peers
    for (let i = peers.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [peers[i], peers[j]] = [peers[j], peers[i]]
    }
    for (const p of peers) {
      if (out.length >= MAX_PEERS_ANSWER) break
      try {
        const info = await this.node.peerStore.get(p)
        const addr = info.addresses.map(a => a.multiaddr).find(ma => ma.toString().includes('/tcp/'))
        if (addr != null) out.push(addr.toString().includes('/p2p/') ? addr.toString() : `${addr.toString()}/p2p/${p.toString()}`)
      } catch {}
    }
    return out
  }

  private async answer (stream: Stream, conn: Connection): Promise<void> {
    try {
      const lp = lpStream(stream, { maxDataLength: 16 })
      const list = await this.known(conn.remotePeer)
      await lp.write(new TextEncoder().encode(JSON.stringify(list)), { signal: AbortSignal.timeout(this.opts.timeoutMs) })
      await stream.close({ signal: AbortSignal.timeout(this.opts.timeoutMs) })
      this.stats.inc('peersServed')
    } catch (err) {
      stream.abort(err as Error)
    }
  }

  /** Ask `peer` for others and dial some of them, while we have fewer than targetPeers. */
  async discoverVia (peer: PeerId): Promise<number> {
    const key = peer.toString()
    if (!this.running || this.asking.has(key) || this.node.getPeers().length >= this.opts.targetPeers) return 0
    this.asking.add(key)
    try {
      const conn = this.node.getConnections(peer).find(c => c.status === 'open')
      if (conn == null) return 0
      const signal = AbortSignal.timeout(this.opts.timeoutMs)
      const stream = await conn.newStream(PEERS_PROTOCOL, { signal })
      const lp = lpStream(stream, { maxDataLength: MAX_PEERS_FRAME })
      const addrs = parsePeersAnswer((await lp.read({ signal })).subarray(), this.node.peerId.toString())
      await stream.close({ signal }).catch(() => {})
      const connected = new Set(this.node.getPeers().map(p => p.toString()))
      const fresh = addrs.filter(a => !connected.has(multiaddr(a).getComponents().filter(c => c.name === 'p2p').pop()!.value!))
      const room = Math.max(0, this.opts.targetPeers - connected.size)
      let dialed = 0
      await Promise.all(fresh.slice(0, room).map(async a => {
        try { await this.node.dial(multiaddr(a), { signal: AbortSignal.timeout(this.opts.timeoutMs) }); dialed++ } catch (err) {
          this.log('peer exchange dial %s failed: %s', a, (err as Error).message)
        }
      }))
      this.stats.inc('peersDiscovered', dialed)
      return dialed
    } catch (err) {
      this.log('peer exchange with %s failed: %s', key, (err as Error).message)
      return 0
    } finally {
      this.asking.delete(key)
    }
  }
}
