import '../src/util/polyfill.js'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRecord, synthBodies } from '../src/records/index.js'
import { connect, startLoopbackPeer, type LoopbackPeer } from '../src/testbed/loopback.js'

/*
 * Partition benchmark (issue #7): N peers (one process, real LevelDB stores, real libp2p on
 * 127.0.0.1) in a ring, cut into two halves for D seconds while every peer keeps publishing one
 * record per second; then one link heals the cut. Reported: ms from the heal until every store
 * holds the same record set (same per-author heads), and the records each half missed.
 *
 *   node dist/scripts/attack-partition.js [--peers 10] [--seconds 60] [--json]
 */
function flag (name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? Number(process.argv[i + 1]) : dflt
}
const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

interface Peer extends LoopbackPeer { seq: number }

async function main (): Promise<void> {
  const n = flag('peers', 10)
  const seconds = flag('seconds', 60)
  const json = process.argv.includes('--json')
  const say = (s: string): void => { if (!json) process.stdout.write(s + '\n') }
  const root = mkdtempSync(join(tmpdir(), 'attack-partition-'))
  const peers: Peer[] = []
  try {
    for (let i = 0; i < n; i++) {
      // peer exchange off: it would re-dial across the cut by itself
      peers.push({ ...await startLoopbackPeer({ dataDir: join(root, `p${i}`), init: { limits: { targetPeers: 0 } } }), seq: 1 })
    }
    const half = Math.floor(n / 2)
    const sideOf = (i: number): number => (i < half ? 0 : 1)
    // a ring: i ↔ i+1; the links half-1 ↔ half and n-1 ↔ 0 cross the cut
    const link = async (i: number, j: number): Promise<void> => { await connect(peers[i], peers[j]) }
    for (let i = 0; i < n; i++) await link(i, (i + 1) % n)
    const publish = async (p: Peer): Promise<void> => {
      const r = await createRecord(p.key, p.author, p.seq, synthBodies(1, p.seq * 1000 + peers.indexOf(p))[0])
      p.seq++
      await p.store.put(r, { own: true })
      await p.net.publishRecord(r).catch(() => {})
    }
    await Promise.all(peers.map(publish))
    await sleep(2000)
    // the cut
    for (const [i, j] of [[half - 1, half], [n - 1, 0]]) await peers[i].net.libp2p.hangUp(peers[j].net.libp2p.peerId)
    say(`${n} peers cut into two halves of ${half} and ${n - half} for ${seconds} s; every peer publishes 1 record/s`)
    const t0 = Date.now()
    while (Date.now() - t0 < seconds * 1000) {
      await Promise.all(peers.map(publish))
      await sleep(1000)
    }
    const counts = await Promise.all(peers.map(async p => (await p.store.counts()).records))
    const total = peers.reduce((s, p) => s + p.seq - 1, 0)
    say(`before heal: stores hold ${Math.min(...counts)}..${Math.max(...counts)} of ${total} records`)
    const healAt = Date.now()
    await link(half - 1, half)
    let convergedMs = -1
    for (;;) {
      const heads = await Promise.all(peers.map(async p => JSON.stringify([...(await p.store.heads())].sort())))
      if (heads.every(h => h === heads[0]) && (await peers[0].store.counts()).records === total) { convergedMs = Date.now() - healAt; break }
      if (Date.now() - healAt > 120_000) break
      await sleep(50)
    }
    const result = { peers: n, partitionSeconds: seconds, records: total, missingBeforeHeal: counts.map(c => total - c), convergedMs, sides: [half, n - half], side: peers.map((_, i) => sideOf(i)) }
    if (json) process.stdout.write(JSON.stringify(result) + '\n')
    else say(convergedMs >= 0 ? `converged: every store holds the same ${total} records ${convergedMs} ms after the heal` : 'NOT converged within 120 s')
  } finally {
    for (const p of peers) { try { await p.stop() } catch {} }
    rmSync(root, { recursive: true, force: true })
  }
}

main().then(() => process.exit(0), err => { process.stderr.write(`${(err as Error).stack ?? String(err)}\n`); process.exit(1) })
