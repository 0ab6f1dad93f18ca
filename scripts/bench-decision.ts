import '../src/util/polyfill.js'
import { cpus, loadavg } from 'node:os'
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { pathToFileURL } from 'node:url'

/**
 * The in-process cost of an uncached recommend decision (issue #19 item 3): `selectMethod` over
 * every catalog method for a stream of all-new tasks (the bench:recommend `unique` stream), on a
 * histogram forest trained on the synthetic history bench:recommend uses. No network, no daemon:
 * what the forest and the selector cost per answer. `--against <dist/src of another build>` runs
 * that build's selector in the same process, rounds alternating, for a before/after in one run.
 *
 *   node dist/scripts/bench-decision.js [--rounds 40] [--per-round 100] [--trees 50] [--against /path/dist/src] [--json]
 */
const { values: f } = parseArgs({ options: { rounds: { type: 'string' }, 'per-round': { type: 'string' }, trees: { type: 'string' }, against: { type: 'string' }, json: { type: 'boolean' } } })
const rounds = Number(f.rounds ?? 40)
const perRound = Number(f['per-round'] ?? 100)

interface Build { name: string, decide: (k: number) => void, memo: () => unknown }

async function build (name: string, root: string): Promise<Build> {
  const at = (m: string): string => pathToFileURL(resolve(root, m)).href
  const syn = await import(at('meta/synthetic.js'))
  const sel = await import(at('meta/selector.js'))
  const adv = await import(at('vote/advisor.js'))
  const me = await import(at('engine/methods.js'))
  const model = await sel.train(syn.synthHistory({ machines: 3, models: 2, workloads: 8, repeats: 1, seed: 7 }), { backend: 'histogram', nTrees: Number(f.trees ?? 50) })
  const catalog = me.loadMethods() as Array<{ id: string, knobs: unknown }>
  const knobs = Object.fromEntries(catalog.map(x => [x.id, me.knobRecord(x.knobs)]))
  const ids = catalog.map(x => x.id)
  const hw0 = syn.synthMachines(3, 7)[0]
  const hardware = adv.hardwareTask({ ...hw0, gpus: hw0.gpus ?? [] })
  const models = syn.synthModels(2, 7)
  const wls = syn.synthWorkloads(8, 7) as Array<{ features: Record<string, number> }>
  return {
    name,
    decide (k) {
      // bench:recommend's unique stream: every task ≥ 3.5 % away from the others in some feature
      const w = wls[k % 8].features
      const features = { ...w, promptTokensMean: (w.promptTokensMean ?? 100) * 1.035 ** (k % 100), outputTokensMean: (w.outputTokensMean ?? 16) * 1.035 ** (Math.floor(k / 100) % 100) }
      sel.selectMethod(model, { hardware, model: models[k % 2], workload: { features }, methods: ids, methodKnobs: knobs }, { objective: 'throughput' })
    },
    memo: () => model.forests.wallMs?.memoStats?.() ?? null
  }
}

const builds = [await build('this', resolve(import.meta.dirname, '..', 'src'))]
if (f.against != null) builds.push(await build('against', f.against))
const times = new Map<string, number[]>(builds.map(b => [b.name, []]))
const load0 = +loadavg()[0].toFixed(2)
let k = 0
for (let r = 0; r < rounds; r++) {
  const order = r % 2 === 0 ? builds : [...builds].reverse()
  for (const b of order) {
    const t0 = performance.now()
    for (let i = 0; i < perRound; i++) b.decide(k + i)
    times.get(b.name)!.push((performance.now() - t0) / perRound)
  }
  k += perRound
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]
// the first rounds warm the JIT
const warm = Math.min(4, rounds - 1)
const msPerDecision = Object.fromEntries(builds.map(b => [b.name, +median(times.get(b.name)!.slice(warm)).toFixed(4)]))
const out = {
  machine: `${cpus()[0]?.model ?? 'cpu'} x${cpus().length}`,
  date: new Date().toISOString(),
  loadAverage: [load0, +loadavg()[0].toFixed(2)],
  decisions: rounds * perRound,
  msPerDecision,
  ...(f.against != null ? { againstOverThis: +(msPerDecision.against / msPerDecision.this).toFixed(2) } : {}),
  memo: builds[0].memo()
}
process.stdout.write((f.json === true ? JSON.stringify(out, null, 2) : JSON.stringify(out)) + '\n')
