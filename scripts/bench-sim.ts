import '../src/util/polyfill.js'
import { loadavg } from 'node:os'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { checkDilation, suggestDilation } from '../src/testbed/dilation.js'
import { pct, startSwarm, type Swarm } from '../src/testbed/simulation.js'

/*
 * In-process swarm benchmark (issue #19 item 5): N real swarmtune network nodes in this one
 * process over @libp2p/memory (src/testbed/simulation.ts: real gossipsub, records validator,
 * ed25519 verification, sync; in-memory stores; optional link latency and verification cost
 * model; optional time dilation, src/testbed/dilation.ts). For each N: start the
 * nodes (each bootstraps to 4 random earlier ones, peer exchange adds more), wait for the
 * meshes, measure memory per node and idle traffic, publish `--rounds` records one at a time
 * from random nodes and time until every node stored each, then start one fresh node and time
 * its catch-up by sync.
 *
 *   npm run bench:sim -- [--peers 100,300,1000] [--rounds 20] [--seed 1] [--metrics off|on|off,on]
 *     [--dilation 1|4|1,4] [--latency 20-200] [--verify-ms 0.2] [--quiet-timers] [--no-start-sync]
 *     [--warmup 1] [--timeout 30] [--mesh-wait 30] [--json]
 *
 * --dilation D slows every clock of the simulated world by D (each listed value is one run per
 * size, in the order given: `--dilation 1,4` validates the model side by side). Every time printed
 * (p50Ms, p99Ms, catchUpSeconds, ...) is simulated, the real one divided by D; CPU figures are
 * real CPU. Without dilation the times are what one process on this machine takes to run all N
 * nodes' work, so they grow with N once the process runs out of CPU; idleCoreShare says how
 * much of a core the idle swarm alone needed (near or above what the process gets: raise D).
 */
const { values: f } = parseArgs({
  options: {
    peers: { type: 'string' },
    rounds: { type: 'string' },
    seed: { type: 'string' },
    metrics: { type: 'string' },
    dilation: { type: 'string' },
    latency: { type: 'string' },
    'verify-ms': { type: 'string' },
    'quiet-timers': { type: 'boolean' },
    'no-start-sync': { type: 'boolean' },
    warmup: { type: 'string' },
    timeout: { type: 'string' },
    'mesh-wait': { type: 'string' },
    json: { type: 'boolean' }
  }
})
// --metrics off,on: each size once per mode (the cost of libp2p's and gossipsub's metrics per node)
const modes = (f.metrics ?? 'off').split(',')
if (modes.some(m => m !== 'on' && m !== 'off')) throw new Error(`--metrics takes on/off values (got ${f.metrics})`)
const sizes = (f.peers ?? '100,300,1000').split(',').map(Number)
const dilations = (f.dilation ?? '1').split(',').map(Number).map(checkDilation)
const [latMin, latMax] = (f.latency ?? '0').split('-').map(Number)
const latency = latMax == null ? (latMin === 0 ? undefined : { minMs: latMin, maxMs: latMin }) : { minMs: latMin, maxMs: latMax }
if (latency != null && !(latency.minMs > 0 && latency.maxMs >= latency.minMs)) throw new Error(`--latency takes MIN-MAX simulated ms, e.g. 20-200 (got ${f.latency})`)
const verifyMs = Number(f['verify-ms'] ?? 0)
if (!(verifyMs >= 0)) throw new Error(`--verify-ms takes simulated ms ≥ 0 (got ${f['verify-ms']})`)
const quietTimers = f['quiet-timers'] === true
// the initial nodes' stores are empty: their sync-on-connect sessions fetch nothing (the late joiner still syncs)
const syncOnStart = f['no-start-sync'] !== true
// unmeasured publishes before the rounds (the first record through a fresh swarm also pays for JIT and late grafts)
const warmup = Number(f.warmup ?? 0)
// a round's time limit, simulated seconds
const timeoutSeconds = Number(f.timeout ?? 30)
// the longest wait for every mesh to reach 3 peers, simulated seconds (and at most 5 real minutes)
const meshWaitSeconds = Number(f['mesh-wait'] ?? 30)
const rounds = Number(f.rounds ?? 20)
const seed = Number(f.seed ?? 1)
const json = f.json === true
// progress goes to stderr under --json, so stdout is the JSON alone
const say = (s: string): void => { (json ? process.stderr : process.stdout).write(s + '\n') }
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

/** simulated seconds until a fresh node holds `records` records (NaN past 120 simulated s) */
async function catchUp (swarm: Swarm, records: number): Promise<number> {
  const t0 = Date.now()
  const fresh = await swarm.addPeer()
  while ((await fresh.store.counts()).records < records && Date.now() - t0 < 120_000 * swarm.dilation) await sleep(20)
  if ((await fresh.store.counts()).records < records) return NaN
  return (Date.now() - t0) / 1000 / swarm.dilation
}

// Long by design: one measurement, step by step, each step's figures named where they are taken
async function run (n: number, metrics: string, dilation: number): Promise<Record<string, number | string | boolean>> {
  gc()
  const base = process.memoryUsage()
  const t0 = Date.now()
  const swarm = await startSwarm({ peers: n, seed, name: `sim${n}-${seed}-${metrics}-${runs++}`, metrics: metrics === 'on', log: say, dilation, latency, verifyMs, quietTimers, syncOnStart })
  const d = swarm.dilation
  const startSeconds = (Date.now() - t0) / 1000
  say(`${n} nodes started in ${startSeconds.toFixed(1)} s (load ${loadavg()[0].toFixed(2)})`)
  try {
    // meshes form over heartbeats: --mesh-wait simulated s, but at most 5 real minutes
    const mesh = await waitMeshes(swarm, 3, Math.min(meshWaitSeconds * 1000 * d, 300_000))
    say(`  meshes ${mesh.ok ? ">= 3" : "NOT all >= 3"} after ${mesh.seconds.toFixed(1)} s more (mesh ${mesh.min}-${mesh.max})`)
    await swarm.sleep(2000)
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
    // per simulated second: a simulated second lasts d real ones
    const idleCpuMsPerPeerPerSimSecond = idleCpuMsPerSecond * d / n
    for (let w = 0; w < warmup; w++) {
      const res = await swarm.propagate(swarm.peers[(w * 31 + 1) % n], timeoutSeconds * 1000)
      say(`  warm-up ${w + 1}/${warmup} (not counted): ${res.missing === 0 ? `all stored in ${Math.max(...res.delays).toFixed(0)} ms` : `${res.missing} missing`}`)
      await swarm.sleep(200)
    }
    const before = swarm.traffic()
    // how late timers fire while records move: the lag, in simulated ms, is the error dilation leaves
    const lag = monitorEventLoopDelay({ resolution: 5 })
    lag.enable()
    const cpu0 = process.cpuUsage()
    const w0 = Date.now()
    const allStored: number[] = []
    const each: number[] = []
    const hops: number[] = []
    let missing = 0
    for (let r = 0; r < rounds; r++) {
      const pub = swarm.peers[Math.floor(((r * 7919 + seed) % n))]
      const res = await swarm.propagate(pub, timeoutSeconds * 1000)
      missing += res.missing
      each.push(...res.delays)
      hops.push(...res.hops)
      if (res.missing === 0) allStored.push(Math.max(...res.delays))
      say(`  round ${r + 1}/${rounds}: ${res.missing === 0 ? `all stored in ${Math.max(...res.delays).toFixed(0)} ms` : `${res.missing} missing`}, hops max ${Math.max(...res.hops)}`)
      await swarm.sleep(200)
    }
    const cpu = process.cpuUsage(cpu0)
    lag.disable()
    const wallSeconds = (Date.now() - w0) / 1000
    const after = swarm.traffic()
    const first = after.firstDeliveries - before.firstDeliveries
    const recordMsgs = after.recordMsgsIn - before.recordMsgsIn
    // the rounds' figures before the catch-up, so a run stopped during it still leaves them
    say(`  rounds: delivery ${(1 - missing / (rounds * (n - 1))).toFixed(4)}, all stored p50 ${pct(allStored, 50).toFixed(0)} p99 ${pct(allStored, 99).toFixed(0)} ms, hops p99 ${pct(hops, 99)}, ` +
      `duplicates/record ${(first === 0 ? 0 : (recordMsgs - first) / first).toFixed(2)}, ${Math.round((after.bytesIn - before.bytesIn) / n / rounds)} B/peer/record, ` +
      `loop lag p99 ${(Math.max(0, lag.percentile(99) / 1e6 - 5) / d).toFixed(1)} simulated ms, cpu ${((cpu.user + cpu.system) / 1000 / n / rounds).toFixed(2)} ms/peer/record`)
    const catchUpSeconds = await catchUp(swarm, rounds)
    say(`  a fresh node caught up on ${rounds} records in ${catchUpSeconds.toFixed(2)} s`)
    return {
      peers: n,
      dilation: d,
      latencyMs: latency == null ? '0' : `${latency.minMs}-${latency.maxMs}`,
      verifyMs,
      quietTimers,
      syncOnStart,
      warmup,
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
      idleBytesPerPeerPerSecond: Math.round((idle1.bytesIn - idle0.bytesIn) / n / idleSeconds * d),
      rpcsPerPeerPerRecord: (after.rpcsIn - before.rpcsIn) / n / rounds,
      // the rounds' wall time includes the 200 ms pauses, during which heartbeats still run:
      // cpuMsPerPeerPerRecord is all of it, netCpu... takes off the idle rate measured before
      cpuMsPerPeerPerRecord: (cpu.user + cpu.system) / 1000 / n / rounds,
      netCpuMsPerPeerPerRecord: Math.max(0, (cpu.user + cpu.system) / 1000 - idleCpuMsPerSecond * wallSeconds) / n / rounds,
      // real CPU per node per real second, and per simulated second (the cost of the simulated world)
      idleCpuMsPerPeerPerSecond: idleCpuMsPerSecond / n,
      idleCpuMsPerPeerPerSimSecond,
      // share of one core the idle swarm needed at this D, and the D that keeps it at 0.2 of a core
      idleCoreShare: idleCpuMsPerSecond / 1000,
      suggestedDilation: suggestDilation(idleCpuMsPerPeerPerSimSecond, n),
      cpuShareDuringRounds: (cpu.user + cpu.system) / 1e6 / wallSeconds,
      // event-loop delay during the rounds (beyond the 5 ms sampling), real ms ÷ D
      loopLagP50SimMs: Math.max(0, lag.percentile(50) / 1e6 - 5) / d,
      loopLagP99SimMs: Math.max(0, lag.percentile(99) / 1e6 - 5) / d,
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
  for (const n of sizes) for (const mode of modes) for (const dil of dilations) {
    const r = await run(n, mode, dil) as Record<string, number>
    results.push(r)
    say(`peers=${n}, D=${dil}, metrics ${mode}: delivery ${(r.deliveryRatio * 100).toFixed(2)} %, all stored p50 ${r.p50Ms.toFixed(0)} ms p99 ${r.p99Ms.toFixed(0)} ms, hops p99 ${r.hopsP99}, ` +
      `duplicates/record ${r.duplicatesPerRecord.toFixed(2)}, ${r.bytesPerPeerPerRecord} B/peer/record (idle ${r.idleBytesPerPeerPerSecond} B/peer/s), ` +
      `cpu ${r.cpuMsPerPeerPerRecord.toFixed(2)} ms/peer/record (${r.netCpuMsPerPeerPerRecord.toFixed(2)} over idle ${r.idleCpuMsPerPeerPerSecond.toFixed(3)} ms/peer/s), heap ${r.heapMiBPerPeer.toFixed(2)} MiB/peer (rss ${r.rssMiBPerPeer.toFixed(2)}), catch-up ${r.catchUpSeconds.toFixed(2)} s, loop lag p99 ${r.loopLagP99SimMs.toFixed(1)} simulated ms, ` +
      `idle ${r.idleCpuMsPerPeerPerSimSecond.toFixed(3)} CPU-ms/peer/simulated s = ${r.idleCoreShare.toFixed(2)} core at D=${dil} (suggested D ${r.suggestedDilation}), load ${r.loadAvg1.toFixed(2)}`)
    gc()
    await sleep(1000)
  }
  if (json) process.stdout.write(JSON.stringify(results) + '\n')
  process.exit(0)
}

main().catch(err => { process.stderr.write(`bench-sim: ${(err as Error).stack ?? String(err)}\n`); process.exit(1) })
