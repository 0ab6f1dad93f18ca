import '../src/util/polyfill.js'
import { fork } from 'node:child_process'
import { availableParallelism, loadavg } from 'node:os'
import { resolve as resolvePath } from 'node:path'
import { fileURLToPath } from 'node:url'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { appendLeafInPlace, createRecord, frontierRoot, leafHash, signLogHead, synthBodies, toWire, verifyWire, type Frontier, type LogHead, type SignedRecord } from '../src/records/index.js'
import { connect, startLoopbackPeer, type LoopbackPeer } from '../src/testbed/loopback.js'
import { mainThreadCpuUs } from './cpu-time.js'

/*
 * Catch-up benchmark: a server process holds N records (from several authors) in LevelDB; a
 * fresh client process connects and syncs them all over /swarmtune/sync/1.0.0 (every record
 * verified and stored exactly as gossip does) or, with --protocol 2, over /swarmtune/sync/2.0.0
 * (runs checked against their authors' signed log heads, docs/records.md). Reports records/s of
 * the whole catch-up and the one-core signature verify rate of the same client process, and the
 * client's CPU per record (`clientCpuUsPerRecord`: main thread and verify workers;
 * `clientMainCpuUsPerRecord`: main thread alone), which a loaded machine disturbs far less, and
 * the server process's (`serverCpuUsPerRecord`; `bothSidesCpuUsPerRecord` is the two together).
 *
 * Log heads: each author signs one every --head-every records (default 1024) and one at the end
 * of its log, as an author's node does when it serves; the server holds them (with --protocol 1
 * too, so both runs prepare the same store).
 *
 *   node dist/scripts/bench-sync.js [--records 100000] [--authors 100] [--page-size 256] [--workers auto|N] [--protocol 1|2|2u] [--head-every 1024] [--server-from DIR] [--json]
 *
 * --server-from DIR: the server process runs DIR/dist/scripts/bench-sync.js, another build (e.g.
 * a worktree of main's HEAD): this build's client against the other build's server, for wire
 * compatibility between releases.
 */
interface Args { records: number, authors: number, pageSize: number, json: boolean, workers: number | 'auto', protocols: number[], headEvery: number }

function parseArgs (argv: string[]): Args & { role?: string } {
  const get = (name: string, dflt: number): number => {
    const i = argv.indexOf(`--${name}`)
    return i >= 0 ? Number(argv[i + 1]) : dflt
  }
  const role = argv.includes('--serve') ? 'serve' : argv.includes('--fetch') ? 'fetch' : undefined
  const p = argv.indexOf('--protocol')
  // "1,2,1,2": fresh clients one after the other against the same server, alternating on a noisy machine
  // "2u": 2.0.0 without asking for packed frames (net.sync.pack false, as a client of the previous release)
  const protocols = p >= 0 ? String(argv[p + 1]).split(',').map(v => v === '2u' ? 2.5 : Number(v)) : [1]
  const w = argv.indexOf('--workers')
  const workers = w >= 0 && argv[w + 1] !== 'auto' ? Number(argv[w + 1]) : 'auto'
  return { records: get('records', 100_000), authors: get('authors', 100), pageSize: get('page-size', 256), json: argv.includes('--json'), workers, protocols, headEvery: get('head-every', 1024), role }
}

/** Server and client: one session may carry the whole set; sessions only when asked (syncWith). */
async function peer (pageSize: number, verifyWorkers: number | 'auto' = 0, maxVersion: 1 | 2 = 2, pack = true): Promise<LoopbackPeer> {
  return await startLoopbackPeer({
    sync: { pageSize, timeoutMs: 30_000, maxRecordsPerSession: 10_000_000, maxVersion, pack },
    verifyWorkers,
    maxRecords: 10_000_000,
    init: { syncOnConnect: false }
  })
}

async function makeRecords (total: number, authors: number, headEvery = 0): Promise<{ records: SignedRecord[], heads: LogHead[] }> {
  const keys = await Promise.all(Array.from({ length: authors }, async () => await generateKeyPair('Ed25519')))
  const ids = keys.map(k => peerIdFromPrivateKey(k).toString())
  const bodies = synthBodies(Math.min(total, 5000), 42)
  const out: SignedRecord[] = []
  const heads: LogHead[] = []
  const logs: Frontier[] = ids.map(() => ({ length: 0, peaks: [] }))
  const last = (a: number): number => Math.floor((total - 1 - a) / authors) + 1
  for (let i = 0; i < total; i++) {
    const a = i % authors
    const r = await createRecord(keys[a], ids[a], Math.floor(i / authors) + 1, bodies[i % bodies.length])
    out.push(r)
    if (headEvery <= 0) continue
    const f = logs[a]
    appendLeafInPlace(f, leafHash(toWire(r)))
    if (f.length % headEvery === 0 || f.length === last(a)) heads.push(await signLogHead(keys[a], ids[a], f.length, frontierRoot(f)))
  }
  return { records: out, heads }
}

const send = (msg: unknown): void => { process.send?.(msg) }

async function serve (args: Args): Promise<void> {
  // no client knows the address before 'ready': the node listens idle while the store fills
  const server = await peer(args.pageSize)
  const t0 = performance.now()
  const { records: recs, heads } = await makeRecords(args.records, args.authors, args.headEvery)
  for (let i = 0; i < recs.length; i += 1000) await server.store.putMany(recs.slice(i, i + 1000))
  for (const h of heads) await server.store.putLogHead?.(h)
  const prepMs = performance.now() - t0
  send({ type: 'ready', addr: server.addr, prepMs })
  process.on('message', (m: { type: string }) => {
    // the server's CPU so far: the orchestrator takes it before and after each client's catch-up
    if (m.type === 'cpu') { const c = process.cpuUsage(); send({ type: 'cpu', us: c.user + c.system }); return }
    if (m.type !== 'stop') return
    void (async () => {
      send({ type: 'stats', stats: server.net.stats() })
      await server.stop()
      process.exit(0)
    })()
  })
}


async function fetchAll (args: Args, addr: string, protocol: number): Promise<Record<string, number>> {
  // the client verifies on net.verifyWorkers threads (--workers, default one per core; 0 = inline)
  const client = await peer(args.pageSize, args.workers, protocol >= 2 ? 2 : 1, protocol === 2)
  const { net, store } = client
  // reference in the same run: how fast this process verifies signatures alone (the ceiling)
  const wires = (await makeRecords(2000, 10)).records.map(toWire)
  const verifyCpuUs: number[] = []
  const verifyRate = async (): Promise<number> => {
    const tv = performance.now()
    const cv = process.cpuUsage()
    for (const w of wires) await verifyWire(w)
    const c = process.cpuUsage(cv)
    verifyCpuUs.push((c.user + c.system) / wires.length)
    return wires.length / ((performance.now() - tv) / 1000)
  }
  const verifyBefore = await verifyRate()
  const conn = await connect(client, addr)
  const t0 = performance.now()
  const cpu0 = process.cpuUsage()
  const main0 = mainThreadCpuUs()
  let received = 0
  let inserted = 0
  let sessions = 0
  // one session carries up to maxRecordsPerSession; loop until nothing new arrives
  for (;;) {
    const res = await net.syncWith(conn.remotePeer)
    sessions++
    if (!res.ok) throw new Error(`sync failed: ${res.code ?? 'unknown'}`)
    received += res.received
    inserted += res.inserted
    if (res.inserted === 0) break
  }
  const ms = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  const main1 = mainThreadCpuUs()
  const perRecord = (us: number): number => Math.round(10 * us / Math.max(1, inserted)) / 10
  const cpuFigures = {
    clientCpuUsPerRecord: perRecord(cpu.user + cpu.system),
    ...(main0 != null && main1 != null ? { clientMainCpuUsPerRecord: perRecord(main1 - main0) } : {})
  }
  // the ceiling of a client with every core to itself: cores × (one verifyWire's CPU ÷ the client's CPU per record)
  const verifyCpu = (): number => verifyCpuUs.reduce((a, b) => a + b, 0) / verifyCpuUs.length
  // load drifts on a shared machine: the ceiling is the mean of the rates before and after
  const verifyAfter = await verifyRate()
  const verifyPerSecond = (verifyBefore + verifyAfter) / 2
  const counts = await store.counts()
  const st = net.stats()
  await client.stop()
  return {
    ms, received, inserted, sessions, stored: counts.records, recordsPerSecond: inserted / (ms / 1000), verifyPerSecond, verifyBefore, verifyAfter,
    ratioToVerify: inserted / (ms / 1000) / verifyPerSecond, runsVerified: st.syncRunsVerified ?? 0, runRecords: st.syncRunRecords ?? 0, runsFallback: st.syncRunsFallback ?? 0,
    poolBatches: st.verifyPoolBatches ?? 0, poolRecords: st.verifyPoolRecords ?? 0, ...cpuFigures,
    verifyCpuUsPerRecord: Math.round(10 * verifyCpu()) / 10,
    cpuRatioToVerify: Math.round(100 * availableParallelism() * verifyCpu() / cpuFigures.clientCpuUsPerRecord) / 100
  }
}

async function main (): Promise<void> {
  const args = parseArgs(process.argv.slice(2))
  if (args.protocols.length === 0 || args.protocols.some(v => v !== 1 && v !== 2 && v !== 2.5)) throw new Error('--protocol: 1 (/swarmtune/sync/1.0.0), 2 (/swarmtune/sync/2.0.0), 2u (2.0.0 without packed frames) or a list such as 1,2,1,2')
  if (args.role === 'serve') { await serve(args); return }
  const sf = process.argv.indexOf('--server-from')
  const self = sf >= 0 ? resolvePath(process.argv[sf + 1], 'dist/scripts/bench-sync.js') : fileURLToPath(import.meta.url)
  const child = fork(self, ['--serve', '--records', String(args.records), '--authors', String(args.authors), '--page-size', String(args.pageSize), '--head-every', String(args.headEvery)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const ready = await new Promise<{ addr: string, prepMs: number }>((resolve, reject) => {
    child.on('message', (m: { type: string, addr: string, prepMs: number }) => { if (m.type === 'ready') resolve(m) })
    child.on('exit', code => { reject(new Error(`server exited with ${code}`)) })
  })
  if (!args.json) process.stdout.write(`server holds ${args.records} records from ${args.authors} authors (prepared in ${(ready.prepMs / 1000).toFixed(1)} s)\n`)
  const serverCpu = async (): Promise<number> => await new Promise(resolve => {
    const on = (m: { type: string, us: number }): void => { if (m.type === 'cpu') { child.off('message', on); resolve(m.us) } }
    child.on('message', on)
    child.send({ type: 'cpu' })
  })
  const runs: Array<Record<string, number>> = []
  for (const protocol of args.protocols) {
    const s0 = await serverCpu()
    // packed: 1 when the 2.0.0 client asked for records several to a frame (net.sync.pack), 0 for "2u"
    const r: Record<string, number> = { protocol: Math.floor(protocol), ...(protocol >= 2 ? { packed: protocol === 2 ? 1 : 0 } : {}), loadavg1: Math.round(loadavg()[0] * 100) / 100, ...await fetchAll(args, ready.addr, protocol) }
    // the whole catch-up's CPU per record, both sides (they share this machine's cores): what
    // records/s the box could reach with every core busy on it is cores × 1e6 ÷ that
    r.serverCpuUsPerRecord = Math.round(10 * (await serverCpu() - s0) / Math.max(1, r.inserted)) / 10
    r.bothSidesCpuUsPerRecord = Math.round(10 * (r.serverCpuUsPerRecord + r.clientCpuUsPerRecord)) / 10
    runs.push(r)
    if (!args.json) {
      process.stdout.write(`/swarmtune/sync/${r.protocol}.0.0${r.packed === 0 ? ' (unpacked)' : ''}: caught up ${r.inserted} records in ${(r.ms / 1000).toFixed(2)} s: ${Math.round(r.recordsPerSecond)} records/s ` +
        `(${r.sessions} session(s), client store holds ${r.stored}, ${r.runRecords} in ${r.runsVerified} runs); signature verification alone in the same process: ` +
        `${Math.round(r.verifyPerSecond)}/s (before ${Math.round(r.verifyBefore)}, after ${Math.round(r.verifyAfter)}), so sync runs at ${r.ratioToVerify.toFixed(2)}x that rate (load ${r.loadavg1})\n`)
    }
    if (r.stored !== args.records) process.exitCode = 1
  }
  const serverStats = await new Promise<Record<string, number>>(resolve => {
    child.on('message', (m: { type: string, stats: Record<string, number> }) => { if (m.type === 'stats') resolve(m.stats) })
    child.send({ type: 'stop' })
  })
  const head = { records: args.records, authors: args.authors, pageSize: args.pageSize, headEvery: args.headEvery, workers: args.workers, serverRecordsOut: serverStats.syncRecordsOut }
  // one protocol: the flat shape of before (recordsPerSecond, verifyPerSecond); several: one entry each
  const out = runs.length === 1 ? { ...head, ...runs[0] } : { ...head, runs }
  if (args.json) process.stdout.write(JSON.stringify(out) + '\n')
}

main().catch(err => { process.stderr.write(`bench-sync: ${(err as Error).stack ?? String(err)}\n`); process.exit(1) })
