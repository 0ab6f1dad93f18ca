import '../src/util/polyfill.js'
import { fork, type ChildProcess } from 'node:child_process'
import { loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import { createRecord, synthBodies } from '../src/records/index.js'
import { createMetricsRegistry } from '../src/node/metrics.js'
import { meshPeers, startLoopbackPeer } from '../src/testbed/loopback.js'
import { percentile } from '../src/util/stats.js'

/*
 * Propagation benchmark: N peers, each a separate Node process with its own LevelDB store and
 * libp2p node on 127.0.0.1, all bootstrapped to peer 0 only (peer exchange builds the rest of
 * the graph). Each round one peer signs, stores and publishes a record; every other peer reports
 * the wall-clock moment the record was stored (gossip validator → store.put). Reported: latency
 * from publish to "stored on all peers", p50 / p99 over the rounds, and per-delivery percentiles.
 *
 * `--metrics off,on` runs each size once per mode, in that order (issue #19: the cost of
 * libp2p's and gossipsub's metrics, which a daemon always exports; loopback peers have none
 * unless asked, so the default `off` is the figure measured before).
 *
 *   node dist/scripts/bench-propagation.js [--peers 10,30] [--rounds 50] [--metrics off|on|off,on,...] [--json]
 */
const now = (): number => performance.timeOrigin + performance.now()

interface WorkerMsg { type: string, [k: string]: unknown }

async function worker (): Promise<void> {
  const send = (m: WorkerMsg): void => { process.send?.(m) }
  const bootstrap = process.env.BENCH_BOOTSTRAP != null && process.env.BENCH_BOOTSTRAP !== '' ? [process.env.BENCH_BOOTSTRAP] : []
  const peer = await startLoopbackPeer({
    bootstrap,
    onRecord: (r, via) => { send({ type: 'stored', id: r.id, t: now(), via }) },
    // as a daemon does (src/node/daemon.ts): one registry per node, libp2p and gossipsub metrics on it
    init: { limits: { bootstrapIntervalMs: 1000 }, ...(process.env.BENCH_METRICS === 'on' ? { metrics: createMetricsRegistry() } : {}) }
  })
  const { net, store, key, author } = peer
  // never outlive the orchestrator
  process.on('disconnect', () => { process.exit(0) })
  const bodies = synthBodies(200, 7)
  let seq = 0
  process.on('message', (m: WorkerMsg) => {
    void (async () => {
      if (m.type === 'status') {
        const ps = net.libp2p.services.pubsub as unknown as { getScore: (p: string) => number }
        const scores = net.libp2p.getPeers().map(p => ps.getScore(p.toString()))
        send({ type: 'status', peers: net.peerCount(), mesh: meshPeers(peer), minScore: Math.min(0, ...scores) })
      } else if (m.type === 'publish') {
        const rec = await createRecord(key, author, ++seq, bodies[seq % bodies.length])
        await store.put(rec, { own: true })
        const t0 = now()
        await net.publishRecord(rec)
        send({ type: 'published', id: rec.id, t0 })
      } else if (m.type === 'stop') {
        await peer.stop()
        process.exit(0)
      }
    })().catch(err => { send({ type: 'error', message: String(err) }) })
  })
  send({ type: 'ready', addr: peer.addr })
}

class Peer {
  readonly child: ChildProcess
  private waiters: Array<(m: WorkerMsg) => boolean> = []
  onStored?: (m: WorkerMsg) => void
  constructor (script: string, bootstrap: string, metrics: string) {
    this.child = fork(script, ['--worker'], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], env: { ...process.env, BENCH_BOOTSTRAP: bootstrap, BENCH_METRICS: metrics } })
    this.child.on('message', (m: WorkerMsg) => {
      if (m.type === 'stored') { this.onStored?.(m); return }
      if (m.type === 'error') process.stderr.write(`worker ${this.child.pid}: ${String(m.message)}\n`)
      this.waiters = this.waiters.filter(w => !w(m))
    })
    this.child.on('exit', (code, signal) => {
      if (this.stopping) return
      process.stderr.write(`worker ${this.child.pid} exited early (code ${code}, signal ${signal})\n`)
      process.exit(1)
    })
  }

  stopping = false

  async next (type: string): Promise<WorkerMsg> {
    return await new Promise(resolve => { this.waiters.push(m => { if (m.type !== type) return false; resolve(m); return true }) })
  }

  async ask (msg: WorkerMsg, reply: string): Promise<WorkerMsg> {
    const p = this.next(reply)
    this.child.send(msg)
    return await p
  }
}

const pct = (xs: number[], p: number): number => percentile(xs, p, 'nearest-rank')

async function run (n: number, rounds: number, metrics: string, log: (s: string) => void): Promise<Record<string, number | string>> {
  const script = fileURLToPath(import.meta.url)
  const t0 = Date.now()
  const first = new Peer(script, '', metrics)
  const boot = (await first.next('ready')).addr as string
  const peers = [first]
  // start the rest a few at a time: 2 shared cores, and libp2p start-up is CPU-heavy
  for (let i = 1; i < n; i += 5) {
    const batch = Array.from({ length: Math.min(5, n - i) }, () => new Peer(script, boot, metrics))
    await Promise.all(batch.map(async p => await p.next('ready')))
    peers.push(...batch)
  }
  const want = Math.min(4, n - 1)
  const started = Date.now()
  log(`${n} peers started (${((started - t0) / 1000).toFixed(1)} s), waiting for meshes`)
  for (;;) {
    const st = await Promise.all(peers.map(async p => await p.ask({ type: 'status' }, 'status')))
    if (st.every(s => (s.mesh as number) >= want)) break
    if (Date.now() - started > 600_000) throw new Error(`mesh did not form: ${JSON.stringify(st)}`)
    await new Promise(resolve => setTimeout(resolve, 500))
  }
  log(`${n} peers up, every mesh has >= ${want} peers (${((Date.now() - t0) / 1000).toFixed(1)} s)`)
  const stored = new Map<string, Array<{ t: number, via: string }>>()
  for (const p of peers) p.onStored = m => { const l = stored.get(m.id as string) ?? []; l.push({ t: m.t as number, via: m.via as string }); stored.set(m.id as string, l) }
  const all: number[] = []
  const each: number[] = []
  let missing = 0
  let viaSync = 0
  for (let r = 0; r < rounds; r++) {
    const pub = peers[r % n]
    const res = await pub.ask({ type: 'publish' }, 'published')
    const id = res.id as string
    const start = res.t0 as number
    const deadline = Date.now() + 10_000
    while ((stored.get(id)?.length ?? 0) < n - 1 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 5))
    const got = stored.get(id) ?? []
    missing += n - 1 - got.length
    viaSync += got.filter(g => g.via !== 'gossip').length
    for (const g of got) each.push(g.t - start)
    if (got.length === n - 1) all.push(Math.max(...got.map(g => g.t - start)))
    if ((r + 1) % 10 === 0) log(`  round ${r + 1}/${rounds}: last all-stored ${got.length === n - 1 ? `${all[all.length - 1].toFixed(0)} ms` : `incomplete (${got.length}/${n - 1})`}, missing so far ${missing}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  const end = await Promise.all(peers.map(async p => await p.ask({ type: 'status' }, 'status')))
  const meshSizes = end.map(x => x.mesh as number)
  const minScore = Math.min(...end.map(x => x.minScore as number))
  await Promise.all(peers.map(async p => {
    p.stopping = true
    const exited = new Promise(resolve => p.child.once('exit', resolve))
    p.child.send({ type: 'stop' })
    await exited
  }))
  return {
    peers: n,
    rounds,
    metrics,
    allStoredP50Ms: pct(all, 50),
    allStoredP99Ms: pct(all, 99),
    allStoredMaxMs: Math.max(...all),
    deliveryP50Ms: pct(each, 50),
    deliveryP99Ms: pct(each, 99),
    missingDeliveries: missing,
    deliveredViaSync: viaSync,
    meshMin: Math.min(...meshSizes),
    meshMax: Math.max(...meshSizes),
    lowestPeerScore: minScore,
    loadAvg1: loadavg()[0]
  }
}

async function main (): Promise<void> {
  const argv = process.argv.slice(2)
  if (argv.includes('--worker')) { await worker(); return }
  const arg = (name: string, dflt: string): string => { const i = argv.indexOf(`--${name}`); return i >= 0 ? argv[i + 1] : dflt }
  const sizes = arg('peers', '10,30').split(',').map(Number)
  const rounds = Number(arg('rounds', '50'))
  const modes = arg('metrics', 'off').split(',')
  if (modes.some(m => m !== 'on' && m !== 'off')) throw new Error(`--metrics takes on/off values (got ${modes.join(',')})`)
  const json = argv.includes('--json')
  const log = (s: string): void => { if (!json) process.stdout.write(s + '\n') }
  const results = []
  for (const n of sizes) for (const mode of modes) {
    const r = await run(n, rounds, mode, log) as Record<string, number>
    results.push(r)
    log(`peers=${n}, metrics ${mode}, load ${loadavg()[0].toFixed(2)}: publish → stored on all p50 ${r.allStoredP50Ms.toFixed(1)} ms, p99 ${r.allStoredP99Ms.toFixed(1)} ms ` +
      `(per delivery p50 ${r.deliveryP50Ms.toFixed(1)} ms, p99 ${r.deliveryP99Ms.toFixed(1)} ms; missing ${r.missingDeliveries}, via sync ${r.deliveredViaSync}; ` +
      `mesh ${r.meshMin}-${r.meshMax} at the end, lowest peer score ${r.lowestPeerScore.toFixed(1)})`)
  }
  if (json) process.stdout.write(JSON.stringify(results) + '\n')
}

main().catch(err => { process.stderr.write(`bench-propagation: ${(err as Error).stack ?? String(err)}\n`); process.exit(1) })
process.on('uncaughtException', err => { process.stderr.write(`bench-propagation ${process.argv.includes('--worker') ? 'worker' : ''}: ${err.stack ?? String(err)}\n`); process.exit(1) })
