import '../src/util/polyfill.js'
import { mkdtempSync, rmSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { createDaemon } from '../src/node/daemon.js'
import { loadConfig } from '../src/node/config.js'
import { resolveModel } from '../src/engine/models.js'
import { getMethod } from '../src/engine/methods.js'
import type { EngineSession } from '../src/engine/types.js'
import { median } from '../src/util/stats.js'

/**
 * Serving overhead over a direct engine call (issue #6; goal < 5 %). One in-process daemon (all
 * services: meta, votes, serving) with the embedded tiny model. Each round runs the same batch
 * twice, interleaved: (1) `serving.serve()` — tokenize, workload features, selection (meta-model,
 * committee, class lookups), the engine run, the metrics, and the signed `source: serving`
 * record (signed, stored and gossiped off the response path, but on the same event loop, so its
 * cost lands in the next rounds); (2) `runBatch()` directly on a separate, equally warm session of
 * the method serving chose, in alternating order. Exploration is off so both run the same method. Reported: medians of
 * each, the overhead, and serving's own breakdown.
 *
 * Every round also runs a third arm, a second direct session of the same method (the control):
 * its difference from the first direct session is the noise floor of the comparison in the same
 * run (two identical paths should differ by ~0 %). The direct arms mark the node busy, as a served
 * batch does, so work the node defers until its engine is idle (the served records) does not land
 * in them. Means are reported next to the medians: deferred, batched work shows in the mean.
 *
 *   node dist/scripts/bench-serving.js [--rounds 30] [--prompts 4] [--max-tokens 16] [--model tiny] [--json]
 * (--control is still accepted: the control arm always runs now)
 *
 * --suite: the node's choices on the built-in workload suite. Benchmarks --methods on every
 * workload family (tiny scale, 1 repeat, `swarmtune bench` standalone), then, leaving each
 * workload out in turn, trains the meta-model (histogram forest) on the others and lets the
 * selector choose for the held-out one; reports the MEASURED throughput of that choice against the
 * baseline and against the best method in hindsight (the oracle).
 *
 *   node dist/scripts/bench-serving.js --suite [--methods a,b,...] [--json]
 */

async function suite (): Promise<void> {
  const { execFileSync } = await import('node:child_process')
  const { cliPath } = await import('../src/util/paths.js')
  const { createRecordStore } = await import('../src/store/record-store.js')
  const { train, selectMethod } = await import('../src/meta/selector.js')
  const { FAMILIES } = await import('../src/bench/workloads.js')
  const dir = mkdtempSync(join(tmpdir(), 'swarmtune-suite-'))
  const methods = f.methods ?? 'baseline,prefix-cache,chunked-prefill,batch-2,batch-4,flash-attn,weights-q8,batch-4+prefix-cache'
  try {
    execFileSync(process.execPath, [cliPath(), 'bench', '--data-dir', dir, '--model', f.model ?? 'tiny', '--methods', methods, '--workloads', FAMILIES.join(','), '--scale', 'tiny', '--repeats', '1', '--json'], { stdio: ['ignore', 'ignore', 'inherit'], maxBuffer: 64 * 2 ** 20 })
    const store = createRecordStore({ path: join(dir, 'store'), maxRecords: 1_000_000, ownAuthor: 'bench' })
    await store.start()
    const bodies = []
    for await (const r of store.all()) if (r.body.result.ok) bodies.push(r.body)
    await store.stop()
    const names = [...new Set(bodies.map(b => b.workload.name))].sort()
    const rows = []
    for (const w of names) {
      const held = bodies.filter(b => b.workload.name === w)
      const tps = new Map(held.map(b => [b.method.id, b.result.totalTokensPerSecond]))
      const base = tps.get('baseline')
      if (base == null) continue
      const oracle = [...tps.entries()].sort((a, b) => b[1] - a[1])[0]
      const model = await train(bodies.filter(b => b.workload.name !== w), { backend: 'histogram', nTrees: 50, seed: 1 })
      const t = held[0]
      const sel = selectMethod(model, { hardware: t.hardware, model: t.model, workload: { features: t.workload.features }, methods: [...tps.keys()] }, { objective: 'throughput', minCells: 1 })
      const chosen = tps.get(sel.choice) ?? base
      rows.push({ workload: w, choice: sel.choice, oracle: oracle[0], chosenTps: +chosen.toFixed(1), baselineTps: +base.toFixed(1), oracleTps: +oracle[1].toFixed(1), ofOracle: +(chosen / oracle[1]).toFixed(3), overBaseline: +(chosen / base).toFixed(3) })
    }
    const gm = (xs: number[]): number => Math.exp(xs.reduce((s, x) => s + Math.log(x), 0) / xs.length)
    const out = {
      machine: `${cpus()[0]?.model ?? 'cpu'} x${cpus().length}`,
      date: new Date().toISOString(),
      methods: methods.split(','),
      rows,
      geomean: { ofOracle: +gm(rows.map(r => r.ofOracle)).toFixed(3), overBaseline: +gm(rows.map(r => r.overBaseline)).toFixed(3), oracleOverBaseline: +gm(rows.map(r => r.oracleTps / r.baselineTps)).toFixed(3) }
    }
    process.stdout.write(JSON.stringify(out, null, 2) + '\n')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
const { values: f } = parseArgs({ options: { suite: { type: 'boolean' }, methods: { type: 'string' }, control: { type: 'boolean' }, rounds: { type: 'string' }, prompts: { type: 'string' }, 'max-tokens': { type: 'string' }, model: { type: 'string' }, json: { type: 'boolean' } } })
const rounds = Number(f.rounds ?? 30)
const nPrompts = Number(f.prompts ?? 4)
const maxTokens = Number(f['max-tokens'] ?? 16)
const modelName = f.model ?? 'tiny'

if (f.suite === true) {
  await suite()
  process.exit(0)
}

const root = mkdtempSync(join(tmpdir(), 'swarmtune-bench-serving-'))
const config = loadConfig({
  env: {},
  overrides: {
    dataDir: join(root, 'node'),
    net: { listen: ['/ip4/127.0.0.1/tcp/0'], localTestbed: true },
    api: { host: '127.0.0.1', port: 0 },
    engine: { defaultModel: modelName },
    meta: { explorationRate: 0 },
    vote: { intervalMs: 3_600_000 },
    // the measured node must not benchmark itself in the background (on by default)
    bench: { background: { enabled: false } }
  }
})
const daemon = createDaemon(config)
await daemon.start()
const log = (s: string): void => { if (f.json !== true) process.stderr.write(s + '\n') }
let direct: EngineSession | undefined
try {
  const serving = daemon.services.serving
  if (serving == null) throw new Error('the daemon runs no serving service')
  const system = 'You are a concise assistant for a peer-to-peer inference network. Answer briefly.'
  const prompts = Array.from({ length: nPrompts }, (_, i) => `${system}\nUser: question number ${i + 1} about the swarm?\nAssistant:`)
  // warm-up: loads the engine and the serving sessions
  const first = await serving.serve({ model: modelName, prompts, maxTokens })
  const method = first.method
  const engine = await serving.engine()
  direct = await engine.open(await resolveModel(config, modelName, config.dataDir), getMethod(method))
  const requests = prompts.map(prompt => ({ prompt, maxTokens }))
  await direct.runBatch(requests)
  for (let i = 0; i < 3; i++) { await serving.serve({ model: modelName, prompts, maxTokens }); await direct.runBatch(requests) }
  const load0 = +loadavg()[0].toFixed(2)
  const served: number[] = []
  const directMs: number[] = []
  const engineMs: number[] = []
  const selectMs: number[] = []
  const tokenizeMs: number[] = []
  const methods = new Set<string>()
  const control = await engine.open(await resolveModel(config, modelName, config.dataDir), getMethod(method))
  for (let i = 0; i < 3; i++) await control.runBatch(requests)
  const controlMs: number[] = []
  // (an older daemon without the shared tracker defers nothing: then marking is a no-op)
  const activity = (daemon.services as { activity?: { begin: () => () => void } }).activity ?? { begin: () => () => {} }
  // a direct run is inference too: deferred work waits for it like for a served batch
  const busy = async (s: EngineSession, into: number[]): Promise<void> => {
    const done = activity.begin()
    const t = performance.now()
    try { await s.runBatch(requests) } finally { done() }
    into.push(performance.now() - t)
  }
  const viaServing = async (): Promise<void> => {
    const t0 = performance.now()
    const res = await serving.serve({ model: modelName, prompts, maxTokens })
    served.push(performance.now() - t0)
    engineMs.push(res.timings.engineMs)
    selectMs.push(res.timings.selectMs)
    // (an older build reports no tokenizeMs)
    tokenizeMs.push((res.timings as { tokenizeMs?: number }).tokenizeMs ?? NaN)
    methods.add(res.method)
  }
  const arms = [viaServing, async () => { await busy(direct!, directMs) }, async () => { await busy(control, controlMs) }]
  // rotate the order, so no arm always runs right after another's leftovers
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < arms.length; i++) await arms[(r + i) % arms.length]()
  }
  const ms = median(served)
  const md = median(directMs)
  const mc = median(controlMs)
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length
  await control.close()
  const out = {
    machine: `${cpus()[0]?.model ?? 'cpu'} x${cpus().length}`,
    date: new Date().toISOString(),
    model: modelName,
    prompts: nPrompts,
    maxTokens,
    rounds,
    methods: [...methods],
    medianServeMs: +ms.toFixed(2),
    medianDirectMs: +md.toFixed(2),
    medianControlMs: +mc.toFixed(2),
    overheadPct: +((ms / md - 1) * 100).toFixed(2),
    /** the second direct session against the first: the noise floor of overheadPct, same run */
    controlPct: +((mc / md - 1) * 100).toFixed(2),
    meanOverheadPct: +((mean(served) / mean(directMs) - 1) * 100).toFixed(2),
    meanControlPct: +((mean(controlMs) / mean(directMs) - 1) * 100).toFixed(2),
    /** serving's own code (serve() outside its engine call) as a share of the direct batch */
    ownCodePct: +(median(served.map((s, i) => s - engineMs[i])) / md * 100).toFixed(2),
    recorded: serving.stats().recorded,
    loadAverage: [load0, +loadavg()[0].toFixed(2)],
    medianServeEngineMs: +median(engineMs).toFixed(2),
    medianSelectMs: +median(selectMs).toFixed(3),
    /** the prompts tokenized for the features (the engine reuses the tokens; null in builds that do not report it) */
    medianTokenizeMs: tokenizeMs.some(Number.isNaN) ? null : +median(tokenizeMs).toFixed(3),
    /** serve() minus its own engine time: what serving adds around the same engine call */
    medianNonEngineMs: +median(served.map((s, i) => s - engineMs[i])).toFixed(3)
  }
  if (f.json === true) process.stdout.write(JSON.stringify(out, null, 2) + '\n')
  else log(JSON.stringify(out, null, 2))
} finally {
  await direct?.close()
  await daemon.stop()
  rmSync(root, { recursive: true, force: true })
}
