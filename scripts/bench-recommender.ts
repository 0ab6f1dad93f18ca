import '../src/util/polyfill.js'
import { cpus, loadavg } from 'node:os'
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { pathToFileURL } from 'node:url'
import { PerformanceObserver } from 'node:perf_hooks'

/**
 * The daemon's whole answer to an all-new recommend task, in process (issue #19 item 3): the
 * serving recommender (decision cache, `selectMethod`, safe-default gate, advice, the wire
 * answer) and the answer's JSON encoding, for bench:recommend's `unique` stream, on the snapshot
 * bench:recommend trains (synthetic history, histogram forest). No network: CPU and garbage
 * collection per answer without libp2p and without the other processes of a loaded box in the
 * latency. GC is counted with a PerformanceObserver (pauses of this process). `--against <dist/src
 * of another build>` runs that build in the same process, rounds alternating, for a before/after
 * in one run (each build has its own snapshot object and caches).
 *
 *   node dist/scripts/bench-recommender.js [--rounds 30] [--per-round 200] [--trees 50] [--against /path/dist/src] [--json]
 */
const { values: f } = parseArgs({ options: { rounds: { type: 'string' }, 'per-round': { type: 'string' }, trees: { type: 'string' }, against: { type: 'string' }, json: { type: 'boolean' } } })
const rounds = Number(f.rounds ?? 30)
const perRound = Number(f['per-round'] ?? 200)

interface Build { name: string, answer: (k: number) => Promise<number> }

async function build (name: string, root: string): Promise<Build> {
  const at = (m: string): string => pathToFileURL(resolve(root, m)).href
  const syn = await import(at('meta/synthetic.js'))
  const sel = await import(at('meta/selector.js'))
  const dec = await import(at('serving/decision.js'))
  const me = await import(at('engine/methods.js'))
  const rnd = await import(at('util/random.js'))
  const framing = await import(at('net/rpc/framing.js'))
  const model = await sel.train(syn.synthHistory({ machines: 3, models: 2, workloads: 8, repeats: 1, seed: 7 }), { backend: 'histogram', nTrees: Number(f.trees ?? 50) })
  const catalog = me.loadMethods() as Array<{ id: string, knobs: unknown }>
  const machines = syn.synthMachines(3, 7)
  const models = syn.synthModels(2, 7) as Array<{ id: string, name: string }>
  const wls = syn.synthWorkloads(8, 7) as Array<{ features: Record<string, number> }>
  const byKey = new Map(models.flatMap(m => [[m.id, m], [m.name, m]] as const))
  // a peer with no committee: the model index answers, nothing else
  const votes = { index: { model: (k: string) => byKey.get(k), evidence: () => ({ records: 0, authors: 0 }) }, ownEvidence: () => ({ records: 0, methods: 0 }), version: () => 0, committee: () => undefined, view: () => ({ classes: [], weights: [] }) }
  const decide = dec.createMethodDecider({ explorationRate: 0, pricePerHour: 0.1, rng: rnd.createRng(1), methodKnobs: Object.fromEntries(catalog.map(m => [m.id, me.knobRecord(m.knobs)])), meta: () => model, votes: () => votes })
  const rec = dec.createRecommender({ decide, catalogIds: () => catalog.map(m => m.id), meta: () => model, votes: () => votes, modelSpec: async () => { throw new Error('unused') }, tokenizerFor: () => undefined, hardwareForAdvice: () => machines[0] })
  return {
    name,
    async answer (k) {
      // bench:recommend's unique stream: a run-wide counter spread over three features on the 3 % grid
      const w = wls[k % 8].features
      const features = { ...w, promptTokensMean: (w.promptTokensMean ?? 100) * 1.035 ** (k % 100), outputTokensMean: (w.outputTokensMean ?? 16) * 1.035 ** (Math.floor(k / 100) % 100), totalPromptTokens: (w.totalPromptTokens ?? 100) * 1.035 ** (Math.floor(k / 10_000) % 100) }
      const a = await rec.recommend({ model: { id: models[k % 2].id }, features, objective: k % 4 === 0 ? 'latency' : 'throughput' })
      return (framing.encodeJson(a) as Uint8Array).length
    }
  }
}

const builds = [await build('this', resolve(import.meta.dirname, '..', 'src'))]
if (f.against != null) builds.push(await build('against', f.against))
const times = new Map<string, number[]>(builds.map(b => [b.name, []]))
const gcMs = new Map<string, number[]>(builds.map(b => [b.name, []]))
const gcN = new Map<string, number[]>(builds.map(b => [b.name, []]))
let gcAcc = { n: 0, ms: 0 }
new PerformanceObserver(l => { for (const e of l.getEntries()) { gcAcc.n++; gcAcc.ms += e.duration } }).observe({ entryTypes: ['gc'] })
const load0 = +loadavg()[0].toFixed(2)
let bytes = 0
// each build its own key range: no build answers a task the other one has cached
const next = new Map(builds.map((b, i) => [b.name, i * 1_000_000]))
for (let r = 0; r < rounds; r++) {
  const order = r % 2 === 0 ? builds : [...builds].reverse()
  for (const b of order) {
    await new Promise(resolve => setTimeout(resolve, 20))
    gcAcc = { n: 0, ms: 0 }
    const k0 = next.get(b.name) as number
    const t0 = performance.now()
    for (let i = 0; i < perRound; i++) bytes = await b.answer(k0 + i)
    const dt = performance.now() - t0
    // gc entries are delivered on a later turn
    await new Promise(resolve => setTimeout(resolve, 20))
    next.set(b.name, k0 + perRound)
    times.get(b.name)!.push(dt / perRound)
    gcMs.get(b.name)!.push(gcAcc.ms / perRound)
    gcN.get(b.name)!.push(gcAcc.n / perRound * 1000)
  }
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]
const mean = (xs: number[]): number => xs.reduce((a, x) => a + x, 0) / Math.max(1, xs.length)
// the first rounds warm the JIT
const warm = Math.min(4, rounds - 1)
const per = (m: Map<string, number[]>, fn: (xs: number[]) => number, d: number): Record<string, number> => Object.fromEntries(builds.map(b => [b.name, +fn(m.get(b.name)!.slice(warm)).toFixed(d)]))
const msPerAnswer = per(times, median, 4)
const out = {
  machine: `${cpus()[0]?.model ?? 'cpu'} x${cpus().length}`,
  date: new Date().toISOString(),
  loadAverage: [load0, +loadavg()[0].toFixed(2)],
  answers: rounds * perRound,
  answerBytes: bytes,
  msPerAnswer,
  gcMsPerAnswer: per(gcMs, mean, 4),
  gcPer1000Answers: per(gcN, mean, 1),
  ...(f.against != null ? { againstOverThis: +(msPerAnswer.against / msPerAnswer.this).toFixed(2) } : {})
}
process.stdout.write((f.json === true ? JSON.stringify(out, null, 2) : JSON.stringify(out)) + '\n')
