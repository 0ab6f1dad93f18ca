import '../src/util/polyfill.js'
import { createLlamaEngine } from '../src/engine/llama-engine.js'
import { loadMethods, selectMethods } from '../src/engine/methods.js'
import { resolveModel } from '../src/engine/models.js'
import type { InferenceRequest } from '../src/engine/types.js'
import { errorCode, errorMessage } from '../src/util/errors.js'
import { median as statsMedian } from '../src/util/stats.js'

/**
 * Quick engine check, not the benchmark runner (that is `swarmtune bench`): output tokens/s of
 * each method on one small fixed workload, with the greedy-token check against the baseline.
 *   node dist/scripts/engine-methods.js [--model tiny|small] [--methods a,b] [--requests 4]
 *     [--max-tokens 32] [--workload chat|code] [--rounds 1] [--data-dir D] [--gpu auto|cpu|cuda] [--timeout-ms 60000]
 */
const args = process.argv.slice(2)
const flag = (name: string, dflt: string): string => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt
}
const modelName = flag('model', 'tiny')
const nReq = Number(flag('requests', '4'))
const maxTokens = Number(flag('max-tokens', '32'))
const workload = flag('workload', 'chat')
const timeoutMs = Number(flag('timeout-ms', '60000'))
const gpu = flag('gpu', 'cpu') as 'auto' | 'cpu' | 'cuda' | 'vulkan' | 'metal'
const methods = args.includes('--methods') ? selectMethods(flag('methods', '').split(',')) : loadMethods()

const SYSTEM = 'You are a helpful assistant for the river city museum. Answer each question about the document in one ' +
  'short sentence, and say so when the document does not tell. The document: the river runs from the mountain to the sea; ' +
  'the city was built near the river mouth a thousand years ago; the old school, the market and the port are near the water. '
const QUESTIONS = ['What is the river?', 'Where is the city?', 'Tell me about the mountain.', 'When was the city built?',
  'What is near the water?', 'Please summarize the document.', 'Is there a school?', 'Where does the river end?']
const CODE = 'function add(a, b) {\n  return a + b\n}\n\nfunction mul(a, b) {\n  return a * b\n}\n'
const requests: InferenceRequest[] = Array.from({ length: nReq }, (_, i) => workload === 'code'
  ? { prompt: `Rewrite this code with const arrow functions:\n${CODE}// version ${i}\n`, maxTokens }
  : { prompt: SYSTEM + QUESTIONS[i % QUESTIONS.length], maxTokens })

const model = await resolveModel({ engine: { models: [] } }, modelName, flag('data-dir', '.data'))
const engine = await createLlamaEngine({ gpu, threads: 1 })
process.stdout.write(`# ${modelName} · ${workload} · ${nReq} requests × ${maxTokens} tokens · ${engine.backend} ${engine.gpus.map(g => g.name).join(', ')} · ${engine.info.version}\n`)
process.stdout.write('| method | out tok/s | vs baseline | wall ms | TTFT p50 ms | drafts accepted | same tokens as baseline |\n|---|---|---|---|---|---|---|\n')
const rounds = Number(flag('rounds', '1'))
// Rounds interleave the methods (baseline, a, b, ..., baseline, a, b, ...) so load drifts on a
// shared machine hit every method alike; the table shows medians over rounds.
interface Cell { rates: number[], walls: number[], ttfts: number[], drafted: number, accepted: number, tokens?: string, note?: string }
const cells = new Map<string, Cell>()
// an empty sample shows as NaN in the table, not as 0
const median = (xs: number[]): number => statsMedian(xs, NaN)
for (let round = 0; round < rounds; round++) {
  for (const m of methods) {
    const cell = cells.get(m.id) ?? { rates: [], walls: [], ttfts: [], drafted: 0, accepted: 0 }
    cells.set(m.id, cell)
    if (cell.note != null) continue
    const sup = engine.supports(model, m)
    if (!sup.ok) { cell.note = `skipped: ${sup.reason}`; continue }
    try {
      const s = await engine.open(model, m)
      try {
        await s.runBatch(requests.slice(0, 1), { signal: AbortSignal.timeout(timeoutMs) }) // warm-up
        await s.reset?.()
        const r = await s.runBatch(requests, { signal: AbortSignal.timeout(timeoutMs) })
        const out = r.requests.reduce((a, x) => a + x.outputTokens, 0)
        cell.rates.push(out / r.wallMs * 1000)
        cell.walls.push(r.wallMs)
        cell.ttfts.push(median(r.requests.map(x => x.ttftMs)))
        cell.drafted += r.requests.reduce((a, x) => a + (x.draftedTokens ?? 0), 0)
        cell.accepted += r.requests.reduce((a, x) => a + (x.acceptedDraftTokens ?? 0), 0)
        cell.tokens = JSON.stringify(r.requests.map(x => x.tokens))
      } finally {
        await s.close()
      }
    } catch (err) {
      cell.note = `failed: ${errorCode(err)} ${errorMessage(err).slice(0, 80)}`
    }
  }
  process.stderr.write(`round ${round + 1}/${rounds} done\n`)
}
const base = cells.get('baseline')
for (const m of methods) {
  const c = cells.get(m.id) as Cell
  if (c.note != null && c.rates.length === 0) { process.stdout.write(`| ${m.id} | ${c.note} | | | | | |\n`); continue }
  const rate = median(c.rates)
  const vs = base != null && base.rates.length > 0 ? `${(rate / median(base.rates)).toFixed(2)}x` : ''
  const same = base?.tokens == null ? '' : c.tokens === base.tokens ? 'yes' : m.lossless ? 'NO (diverged)' : 'no (lossy)'
  process.stdout.write(`| ${m.id} | ${rate.toFixed(1)} | ${vs} | ${median(c.walls).toFixed(0)} | ${median(c.ttfts).toFixed(0)} | ${m.knobs.speculative > 0 ? `${c.accepted}/${c.drafted}` : ''} | ${same} |\n`)
}
await engine.close()
