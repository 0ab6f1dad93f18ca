import '../src/util/polyfill.js'
import { loadavg } from 'node:os'
import { parseArgs } from 'node:util'
import { pct, startSwarm, type Swarm } from '../src/testbed/simulation.js'

/*
 * In-process swarm benchmark (issue #19 item 5): N real swarmtune network nodes in this one
 * process over @libp2p/memory (src/testbed/simulation.ts: real gossipsub, records validator,
 * ed25519 verification, sync; in-memory stores; no added link latency). For each N: start the
 * nodes (each bootstraps to 4 random earlier ones, peer exchange adds more), wait for the
 * meshes, measure memory per node and idle traffic, publish `--rounds` records one at a time
 * from random nodes and time until every node stored each, then start one fresh node and time
 * its catch-up by sync.
 *
 *   npm run bench:sim -- [--peers 100,300,1000] [--rounds 20] [--seed 1] [--metrics off|on|off,on] [--json]
 *
 * Times are what one process on this machine takes to run all N nodes' work (one core for the
 * whole swarm), so they grow with N; cpuMsPerPeerPerRecord is the per-node cost behind them.
 */
const { values: f } = parseArgs({ options: { peers: { type: 'string' }, rounds: { type: 'string' }, seed: { type: 'string' }, metrics: { type: 'string' }, json: { type: 'boolean' } } })
// --metrics off,on: each size once per mode (the cost of libp2p's and gossipsub's metrics per node)
const modes = (f.metrics ?? 'off').split(',')
if (modes.some(m => m !== 'on' && m !== 'off')) throw new Error(`--metrics takes on/off values (got ${f.metrics})`)
const sizes = (f.peers ?? '100,300,1000').split(',').map(Number)
const rounds = Number(f.rounds ?? 20)
const seed = Number(f.seed ?? 1)
const json = f.json === true
const say = (s: string): void => { if (!json) process.stdout.write(s + '\n') }
const gc = (): void => { (globalThis as { gc?: () => void }).gc?.() }
let runs = 0
const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

async function waitMeshes (swarm: Swarm, want: number, timeoutMs: number): Promise<{ ok: boolean, min: number, max: number, seconds: number }> {
  const t0 = Date.now()
  for (;;) {
    const m = swarm.meshSizes()
    const min = Math.min(...m)
    if (min >= want || Date.now() - t0 > timeoutMs) return { ok: min >= want, min, max: Math.max(...m), seconds: (Date.now() - t0) / 1000 }
    await sleep(250)
  }
}

async function catchUp (swarm: Swarm, records: number): Promise<number> {
  const t0 = Date.now()
  const fresh = await swarm.addPeer()
  while ((await fresh.store.counts()).records < records && Date.now() - t0 < 120_000) await sleep(20)
  if ((await fresh.store.counts()).records < records) return NaN
  return (Date.now() - t0) / 1000
}

// Long by design: one measurement, step by step, each step's figures named where they are taken
async function run (n: number, metrics: string): Promise<Record<string, number | string>> {
  gc()
  const base = process.memoryUsage()
  const t0 = Date.now()
  const swarm = await startSwarm({ peers: n, seed, name: `sim${n}-${seed}-${metrics}-${runs++}`, metrics: metrics === 'on', log: say })
  const startSeconds = (Date.now() - t0) / 1000
  say(`${n} nodes started in ${startSeconds.toFixed(1)} s (load ${loadavg()[0].toFixed(2)})`)
  try {
    const mesh = await waitMeshes(swarm, 3, 30_000)
    say(`  meshes ${mesh.ok ? ">= 3" : "NOT all >= 3"} after ${mesh.seconds.toFixed(1)} s more (mesh ${mesh.min}-${mesh.max})`)
    await sleep(2000)
    gc()
    const mem = process.memoryUsage()
    const idle0 = swarm.traffic()
    const idleStart = Date.now()
    const idleCpu0 = process.cpuUsage()
    await sleep(5000)
    const idleCpu = process.cpuUsage(idleCpu0)
    const idle1 = swarm.traffic()
    const idleSeconds = (Date.now() - idleStart) / 1000
    // heartbeats, connection keep-alives: what N idle nodes cost per second
    const idleCpuMsPerSecond = (idleCpu.user + idleCpu.system) / 1000 / idleSeconds
    const before = swarm.traffic()
    const cpu0 = process.cpuUsage()
    const w0 = Date.now()
    const allStored: number[] = []
    const each: number[] = []
    const hops: number[] = []
    let missing = 0
    for (let r = 0; r < rounds; r++) {
      const pub = swarm.peers[Math.floor(((r * 7919 + seed) % n))]
      const res = await swarm.propagate(pub)
      missing += res.missing
      each.push(...res.delays)
      hops.push(...res.hops)
      if (res.missing === 0) allStored.push(Math.max(...res.delays))
      say(`  round ${r + 1}/${rounds}: ${res.missing === 0 ? `all stored in ${Math.max(...res.delays).toFixed(0)} ms` : `${res.missing} missing`}, hops max ${Math.max(...res.hops)}`)
      await sleep(200)
    }
    const cpu = process.cpuUsage(cpu0)
    const wallSeconds = (Date.now() - w0) / 1000
    const after = swarm.traffic()
    const first = after.firstDeliveries - before.firstDeliveries
    const recordMsgs = after.recordMsgsIn - before.recordMsgsIn
    const catchUpSeconds = await catchUp(swarm, rounds)
    say(`  a fresh node caught up on ${rounds} records in ${catchUpSeconds.toFixed(2)} s`)
    return {
      peers: n,
      metrics,
      rounds,
      deliveryRatio: 1 - missing / (rounds * (n - 1)),
      p50Ms: pct(allStored, 50),
      p99Ms: pct(allStored, 99),
      deliveryP50Ms: pct(each, 50),
      deliveryP99Ms: pct(each, 99),
      missing,
      hopsP50: pct(hops, 50),
      hopsP99: pct(hops, 99),
      hopsMax: hops.length === 0 ? 0 : Math.max(...hops),
      duplicatesPerRecord: first === 0 ? 0 : (recordMsgs - first) / first,
      bytesPerPeerPerRecord: Math.round((after.bytesIn - before.bytesIn) / n / rounds),
      idleBytesPerPeerPerSecond: Math.round((idle1.bytesIn - idle0.bytesIn) / n / idleSeconds),
      rpcsPerPeerPerRecord: (after.rpcsIn - before.rpcsIn) / n / rounds,
      // the rounds' wall time includes the 200 ms pauses, during which heartbeats still run:
      // cpuMsPerPeerPerRecord is all of it, netCpu... takes off the idle rate measured before
      cpuMsPerPeerPerRecord: (cpu.user + cpu.system) / 1000 / n / rounds,
      netCpuMsPerPeerPerRecord: Math.max(0, (cpu.user + cpu.system) / 1000 - idleCpuMsPerSecond * wallSeconds) / n / rounds,
      idleCpuMsPerPeerPerSecond: idleCpuMsPerSecond / n,
      cpuShareDuringRounds: (cpu.user + cpu.system) / 1e6 / wallSeconds,
      catchUpSeconds,
      heapMiBPerPeer: (mem.heapUsed - base.heapUsed) / 2 ** 20 / n,
      rssMiBPerPeer: (mem.rss - base.rss) / 2 ** 20 / n,
      startSeconds,
      meshMin: mesh.min,
      meshMax: mesh.max,
      loadAvg1: loadavg()[0]
    }
  } finally {
    await swarm.stop()
  }
}

async function main (): Promise<void> {
  const results = []
  for (const n of sizes) for (const mode of modes) {
    const r = await run(n, mode) as Record<string, number>
    results.push(r)
    say(`peers=${n}, metrics ${mode}: delivery ${(r.deliveryRatio * 100).toFixed(2)} %, all stored p50 ${r.p50Ms.toFixed(0)} ms p99 ${r.p99Ms.toFixed(0)} ms, hops p99 ${r.hopsP99}, ` +
      `duplicates/record ${r.duplicatesPerRecord.toFixed(2)}, ${r.bytesPerPeerPerRecord} B/peer/record (idle ${r.idleBytesPerPeerPerSecond} B/peer/s), ` +
      `cpu ${r.cpuMsPerPeerPerRecord.toFixed(2)} ms/peer/record (${r.netCpuMsPerPeerPerRecord.toFixed(2)} over idle ${r.idleCpuMsPerPeerPerSecond.toFixed(3)} ms/peer/s), heap ${r.heapMiBPerPeer.toFixed(2)} MiB/peer (rss ${r.rssMiBPerPeer.toFixed(2)}), catch-up ${r.catchUpSeconds.toFixed(2)} s`)
    gc()
    await sleep(1000)
  }
  if (json) process.stdout.write(JSON.stringify(results) + '\n')
  process.exit(0)
}

main().catch(err => { process.stderr.write(`bench-sim: ${(err as Error).stack ?? String(err)}\n`); process.exit(1) })
