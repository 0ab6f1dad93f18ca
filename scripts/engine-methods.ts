import '../src/util/polyfill.js'
import { createLlamaEngine } from '../src/engine/llama-engine.js'
import { loadMethods, selectMethods } from '../src/engine/methods.js'
import { resolveModel } from '../src/engine/models.js'
import type { InferenceRequest } from '../src/engine/types.js'
import { errorCode, errorMessage } from '../src/util/errors.js'

/**
 * Quick engine check, not the benchmark runner (that is `swarmtune bench`): output tokens/s of
 * each method on one small fixed workload, with the greedy-token check against the baseline.
 *   node dist/scripts/engine-methods.js [--model tiny|small] [--methods a,b] [--requests 4]
 *     [--max-tokens 32] [--workload chat|code] [--data-dir D] [--gpu auto|cpu|cuda] [--timeout-ms 60000]
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
let baseTokens: string | undefined
let baseRate: number | undefined
for (const m of methods) {
  const sup = engine.supports(model, m)
  if (!sup.ok) { process.stdout.write(`| ${m.id} | skipped: ${sup.reason} | | | | | |\n`); continue }
  try {
    const s = await engine.open(model, m)
    try {
      await s.runBatch(requests.slice(0, 1), { signal: AbortSignal.timeout(timeoutMs) }) // warm-up
      const r = await s.runBatch(requests, { signal: AbortSignal.timeout(timeoutMs) })
      const out = r.requests.reduce((a, x) => a + x.outputTokens, 0)
      const rate = out / r.wallMs * 1000
      const toks = JSON.stringify(r.requests.map(x => x.tokens))
      if (m.id === 'baseline') { baseTokens = toks; baseRate = rate }
      const ttft = r.requests.map(x => x.ttftMs).sort((a, b) => a - b)[Math.floor(r.requests.length / 2)]
      const drafted = r.requests.reduce((a, x) => a + (x.draftedTokens ?? 0), 0)
      const acc = r.requests.reduce((a, x) => a + (x.acceptedDraftTokens ?? 0), 0)
      process.stdout.write(`| ${m.id} | ${rate.toFixed(1)} | ${baseRate != null ? (rate / baseRate).toFixed(2) + 'x' : ''} | ${r.wallMs.toFixed(0)} | ${ttft.toFixed(0)} | ${m.knobs.speculative > 0 ? `${acc}/${drafted}` : ''} | ${baseTokens == null ? '' : toks === baseTokens ? 'yes' : m.lossless ? 'NO (diverged)' : 'no (lossy)'} |\n`)
    } finally {
      await s.close()
    }
  } catch (err) {
    process.stdout.write(`| ${m.id} | failed: ${errorCode(err)} ${errorMessage(err).slice(0, 80)} | | | | | |\n`)
  }
}
await engine.close()
