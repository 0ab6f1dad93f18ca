import '../src/util/polyfill.js'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { multiaddr } from '@multiformats/multiaddr'
import { apiGet, apiPost } from '../src/node/api-client.js'
import { loopbackAddr, spawnDaemon } from '../src/testbed/processes.js'
import { waitFor } from '../src/util/wait.js'
import { requestRecommendation, type RecommendResponse } from '../src/net/recommend.js'
import { createClientNode } from '../src/net/rpc/client.js'
import { RpcPool } from '../src/net/rpc/pool.js'
import { RECOMMEND_PROTOCOL } from '../src/net/types.js'
import { synthHistory, synthModels, synthWorkloads } from '../src/meta/synthetic.js'
import { errorCode } from '../src/util/errors.js'

/**
 * recommend latency and throughput over libp2p on loopback (issue #6; goal p99 < 10 ms at
 * 500 requests/s). One daemon as a separate process, trained on a synthetic history (so the
 * forest really predicts); one client node sending requests OPEN-LOOP at a fixed rate, each on
 * one connection, at most --concurrency (default 32, the server's per-peer stream limit) in
 * flight; the rest wait in the client. --mode pool (default) keeps that many streams open and
 * sends one request at a time on each (RpcPool); --mode oneshot opens a stream per request (what
 * the CLI does). Latency is measured from each request's
 * SCHEDULED send time (no coordinated omission). Two phases per rate: `unique` (every request a
 * task ≥ 3 % away from the others in some feature, so the decision cache misses and the forest
 * runs) and `repeat` (16 tasks cycling: the cached path).
 *
 *   node dist/scripts/bench-recommend.js [--rates 100,250,500] [--seconds 10] [--cold-unique] [--cold-streams] [--backend histogram|ml-random-forest] (default histogram, the daemon's default) [--json]
 */
const { values: f } = parseArgs({
  options: { rates: { type: 'string' }, seconds: { type: 'string' }, json: { type: 'boolean' }, trees: { type: 'string' }, backend: { type: 'string' }, concurrency: { type: 'string' }, mode: { type: 'string' }, 'cold-unique': { type: 'boolean' }, 'cold-streams': { type: 'boolean' } }
})
const rates = (f.rates ?? '100,250,500').split(',').map(Number)
const seconds = Number(f.seconds ?? 10)

/** The daemon's CPU seconds so far (Linux /proc; null elsewhere): CPU per request is a figure the
 * other processes on a shared box do not distort the way they distort latency. */
function cpuSeconds (pid: number | undefined): number | null {
  try {
    const f = readFileSync(`/proc/${pid ?? 0}/stat`, 'utf8').split(') ')[1].split(' ')
    // after the command name: state is field 3, utime 14 and stime 15 (1-based) in clock ticks
    return (Number(f[11]) + Number(f[12])) / 100
  } catch {
    return null
  }
}

/** The daemon's read and write syscalls so far (Linux /proc/<pid>/io; null elsewhere): how many
 * socket writes and reads an exchange costs does not depend on the machine's load. */
function syscalls (pid: number | undefined): { r: number, w: number } | null {
  try {
    const io = readFileSync(`/proc/${pid ?? 0}/io`, 'utf8')
    const r = /syscr:\s*(\d+)/.exec(io)
    const w = /syscw:\s*(\d+)/.exec(io)
    return r == null || w == null ? null : { r: Number(r[1]), w: Number(w[1]) }
  } catch {
    return null
  }
}

function loadAverage (): number {
  return +loadavg()[0].toFixed(2)
}

function pct (xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor(p / 100 * s.length))]
}

const root = mkdtempSync(join(tmpdir(), 'swarmtune-bench-rec-'))
const history = synthHistory({ machines: 3, models: 2, workloads: 8, repeats: 1, seed: 7 })
// one retrain, right after the import (none during the measurement)
const d = await spawnDaemon({ dataDir: join(root, 'a'), port: 0, apiPort: 0, env: { SWARMTUNE__meta__trees: f.trees ?? '50', SWARMTUNE__meta__retrainEveryRecords: String(history.length), SWARMTUNE__meta__firstTrainRecords: '0', SWARMTUNE__vote__intervalMs: '3600000', SWARMTUNE__meta__backend: f.backend ?? 'histogram' }, timeoutMs: 60_000 })
const log = (s: string): void => { if (f.json !== true) process.stderr.write(s + '\n') }
try {
  await apiPost(d.info.api, '/import', JSON.stringify(history))
  log(`imported ${history.length} synthetic records; training…`)
  await waitFor('the meta-model snapshot', async () => (await apiGet<{ snapshot: unknown }>(d.info.api, '/status')).snapshot != null, 300_000, 500)
  const models = synthModels(2, 7)
  const workloads = synthWorkloads(8, 7)
  const client = await createClientNode()
  const addr = multiaddr(loopbackAddr(d.info))
  const mode = f.mode ?? 'pool'
  const pool = new RpcPool(client, addr, RECOMMEND_PROTOCOL, { size: Number(f.concurrency ?? 32), timeoutMs: 5000 })
  const ask = async (req: Record<string, unknown>): Promise<RecommendResponse> =>
    mode === 'pool' ? await pool.call<RecommendResponse>(req) : await requestRecommendation(client, addr, req, { timeoutMs: 5000 })
  // warm up the connection and the daemon's JIT on both paths: repeated tasks, and new tasks (the
  // unique phase's path: features, forest prediction, no memo hit). Warming only the first left
  // the new-task path's compilation in the unique phase's first ~0.4 s, which alone made its p99
  // (docs/BENCHMARKS.md, "Recommend tail on a quiet machine"); `--cold-unique` keeps that.
  for (let i = 0; i < 200; i++) await ask({ model: models[i % 2].id, workload: { features: workloads[i % 8].features } })
  let uniqueCounter = 0
  const uniqueFeatures = (w: { features: Record<string, number> }): Record<string, number> => {
    // a run-wide counter spread over three features on the 3 % grid: never repeated in a run
    const k = uniqueCounter++
    return { ...w.features, promptTokensMean: (w.features.promptTokensMean ?? 100) * 1.035 ** (k % 100), outputTokensMean: (w.features.outputTokensMean ?? 16) * 1.035 ** (Math.floor(k / 100) % 100), totalPromptTokens: (w.features.totalPromptTokens ?? 100) * 1.035 ** (Math.floor(k / 10_000) % 100) }
  }
  if (f['cold-unique'] !== true) {
    for (let i = 0; i < 400; i++) await ask({ model: models[i % 2].id, workload: { features: uniqueFeatures(workloads[i % 8]) }, objective: i % 4 === 0 ? 'latency' : 'throughput' })
  }
  // open every stream of the pool before measuring (`--cold-streams` skips it): the sequential
  // warm-up above uses one, so the measured phase's first burst dialed up to --concurrency new
  // streams (protocol negotiation on both sides: a ~30 ms busy stretch in the daemon's profile at
  // the unique phase's start); a client at 500 req/s has its streams open in steady state
  if (mode === 'pool' && f['cold-streams'] !== true) {
    const size = Number(f.concurrency ?? 32)
    for (let round = 0; round < 3; round++) {
      await Promise.all(Array.from({ length: size }, async (_, i) => await ask({ model: models[i % 2].id, workload: { features: workloads[i % 8].features } })))
    }
  }
  const results: unknown[] = []
  for (const rate of rates) {
    for (const phase of ['unique', 'repeat'] as const) {
      const n = Math.round(rate * seconds)
      const lat: number[] = []
      // requests scheduled after the phase's first second: the steady state without the ramp's transient
      const steady: number[] = []
      // the answer's size on the wire (JSON bytes): encryption, framing and writes grow with it
      let answerBytes = 0
      const errors: Record<string, number> = {}
      const t0 = performance.now() + 20
      const cpu0 = cpuSeconds(d.proc.pid)
      const io0 = syscalls(d.proc.pid)
      const load0 = loadAverage()
      let sent = 0
      const inflight: Array<Promise<void>> = []
      const maxInflight = Number(f.concurrency ?? 32)
      let active = 0
      const waiting: Array<() => void> = []
      const slot = async (): Promise<void> => {
        if (active < maxInflight) { active++; return }
        await new Promise<void>(resolve => waiting.push(resolve))
      }
      const release = (): void => { const next = waiting.shift(); if (next != null) next(); else active-- }
      while (sent < n) {
        const now = performance.now()
        while (sent < n && t0 + sent * 1000 / rate <= now) {
          const i = sent++
          const scheduled = t0 + i * 1000 / rate
          const w = workloads[i % 8]
          const features = phase === 'unique' ? uniqueFeatures(w) : w.features
          inflight.push(slot().then(async () => await ask({ model: models[i % 2].id, workload: { features }, objective: i % 4 === 0 ? 'latency' : 'throughput' }))
            .then(a => { answerBytes += JSON.stringify(a).length; const ms = performance.now() - scheduled; lat.push(ms); if (i >= rate) steady.push(ms) }, err => { const c = errorCode(err); errors[c] = (errors[c] ?? 0) + 1 })
            .finally(release))
        }
        await new Promise(resolve => setTimeout(resolve, 1))
      }
      await Promise.all(inflight)
      const elapsed = (performance.now() - t0) / 1000
      const cpu1 = cpuSeconds(d.proc.pid)
      const io1 = syscalls(d.proc.pid)
      const perReq = (a: number | undefined, b: number | undefined): number | null => a == null || b == null ? null : +((b - a) / Math.max(1, lat.length)).toFixed(2)
      // the daemon's CPU per answered request: what the answer costs, whatever the load
      const daemonCpuMsPerRequest = cpu0 == null || cpu1 == null ? null : +((cpu1 - cpu0) * 1000 / Math.max(1, lat.length)).toFixed(3)
      const row = { mode, rate, phase, startedAtMs: Math.round(performance.timeOrigin + t0), requests: n, ok: lat.length, errors, achievedPerSec: Math.round(lat.length / elapsed), p50Ms: +pct(lat, 50).toFixed(2), p99Ms: +pct(lat, 99).toFixed(2), p99AfterFirstSecondMs: +pct(steady, 99).toFixed(2), maxMs: +Math.max(...lat).toFixed(2), meanAnswerBytes: Math.round(answerBytes / Math.max(1, lat.length)), daemonCpuMsPerRequest, daemonWritesPerRequest: perReq(io0?.w, io1?.w), daemonReadsPerRequest: perReq(io0?.r, io1?.r), loadAverage: [load0, loadAverage()] }
      results.push(row)
      log(`${String(rate).padStart(4)} req/s ${phase.padEnd(6)}  ok ${row.ok}/${n}  p50 ${row.p50Ms} ms  p99 ${row.p99Ms} ms  max ${row.maxMs} ms  daemon CPU ${daemonCpuMsPerRequest ?? '?'} ms/req  answer ${row.meanAnswerBytes} B  writes ${row.daemonWritesPerRequest ?? '?'}/req  reads ${row.daemonReadsPerRequest ?? '?'}/req  load ${row.loadAverage.join('-')}  errors ${JSON.stringify(errors)}`)
    }
  }
  await pool.close()
  await client.stop()
  const out = { mode, machine: `${cpus()[0]?.model ?? 'cpu'} x${cpus().length}`, date: new Date().toISOString(), backend: f.backend ?? 'histogram', trees: Number(f.trees ?? 50), historyRecords: history.length, results }
  if (f.json === true) process.stdout.write(JSON.stringify(out, null, 2) + '\n')
} finally {
  await d.stop()
  rmSync(root, { recursive: true, force: true })
}
