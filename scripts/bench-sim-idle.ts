import '../src/util/polyfill.js'
import { loadavg } from 'node:os'
import { parseArgs } from 'node:util'
import { startSwarm } from '../src/testbed/simulation.js'

/*
 * Idle cost of a settled in-process swarm (issue #19 item 5): start N nodes at dilation D (quiet
 * timers, no start-up sync, link latency 20-200 ms), wait `--wait` real seconds for the swarm to
 * settle, then measure the process's CPU over `--windows` windows of 10 real seconds with no
 * record moving. Prints CPU ms per node per real second and per simulated second (× D), the
 * figure that picks D for a larger swarm (docs/BENCHMARKS.md).
 *
 *   node --expose-gc dist/scripts/bench-sim-idle.js --peers 30 --dilation 4 --wait 60 [--windows 3] [--json]
 */
const { values: f } = parseArgs({ options: { peers: { type: 'string' }, dilation: { type: 'string' }, wait: { type: 'string' }, windows: { type: 'string' }, json: { type: 'boolean' } } })
const n = Number(f.peers ?? 30)
const d = Number(f.dilation ?? 4)
const waitSeconds = Number(f.wait ?? 60)
const windows = Number(f.windows ?? 3)

async function main (): Promise<void> {
  const swarm = await startSwarm({ peers: n, seed: 1, name: `idle-${n}-${d}`, dilation: d, quietTimers: true, syncOnStart: false, latency: { minMs: 20, maxMs: 200 } })
  try {
    await new Promise(resolve => setTimeout(resolve, waitSeconds * 1000))
    const perRealSecond: number[] = []
    for (let i = 0; i < windows; i++) {
      const c0 = process.cpuUsage()
      const t0 = Date.now()
      await new Promise(resolve => setTimeout(resolve, 10_000))
      const c = process.cpuUsage(c0)
      perRealSecond.push((c.user + c.system) / 1000 / ((Date.now() - t0) / 1000) / n)
    }
    const out = {
      peers: n,
      dilation: d,
      settledSimSeconds: waitSeconds / d,
      idleCpuMsPerPeerPerRealSecond: perRealSecond,
      idleCpuMsPerPeerPerSimSecond: perRealSecond.map(x => x * d),
      loadAvg1: loadavg()[0]
    }
    process.stdout.write((f.json === true ? JSON.stringify(out) : `peers=${n} D=${d}, ${out.settledSimSeconds.toFixed(1)} simulated s after start: idle ${out.idleCpuMsPerPeerPerSimSecond.map(x => x.toFixed(2)).join(', ')} CPU-ms per node per simulated s (load ${out.loadAvg1.toFixed(2)})`) + '\n')
  } finally {
    await swarm.stop()
  }
  process.exit(0)
}

main().catch(err => { process.stderr.write(`bench-sim-idle: ${(err as Error).stack ?? String(err)}\n`); process.exit(1) })
