import { readFileSync } from 'node:fs'
import { multiaddr } from '@multiformats/multiaddr'
import { parseFlags, intFlag, printJson } from '../args.js'
import { createClientNode } from '../../net/rpc/client.js'
import { parseInferRequest, requestInference, type InferRequest } from '../../net/infer.js'
import { renderChat } from '../../engine/chat.js'
import { SwarmtuneError, errorMessage } from '../../util/errors.js'

const HELP = `usage: swarmtune infer --peer MULTIADDR (--prompt TEXT | --file FILE.jsonl) [--model NAME] [--max-tokens N]
                       [--objective throughput|latency|cost] [--json] [--timeout MS]
Runs a batch of prompts on a peer over /swarmtune/infer/1.0.0; the peer picks the method, runs it
and answers with the outputs, the method and the realized metrics. Dials with a throwaway identity.
FILE.jsonl: one prompt per line: a JSON string, { "prompt": "...", "max_tokens": N }, or
{ "messages": [{ "role", "content" }, ...], "max_tokens": N } (chat, rendered as the bench does).
Bad lines are reported with their number and skipped. The batch runs with the largest max_tokens.
`

/** Pure: JSONL prompt lines → prompts and caps, with per-line errors. */
export function parsePromptLines (text: string, defaultMaxTokens: number): { prompts: string[], caps: number[], errors: Array<{ line: number, message: string }> } {
  const prompts: string[] = []
  const caps: number[] = []
  const errors: Array<{ line: number, message: string }> = []
  text.split(/\r?\n/).forEach((raw, i) => {
    if (raw.trim() === '') return
    const line = i + 1
    let v: unknown
    try { v = JSON.parse(raw) } catch (err) { errors.push({ line, message: `not JSON: ${errorMessage(err)}` }); return }
    if (typeof v === 'string') { prompts.push(v); caps.push(defaultMaxTokens); return }
    if (v == null || typeof v !== 'object' || Array.isArray(v)) { errors.push({ line, message: 'must be a string or an object with "prompt" or "messages"' }); return }
    const o = v as Record<string, unknown>
    const cap = o.max_tokens ?? o.maxTokens ?? defaultMaxTokens
    if (typeof cap !== 'number' || !Number.isInteger(cap) || cap < 1) { errors.push({ line, message: 'max_tokens must be a positive integer' }); return }
    if (typeof o.prompt === 'string') { prompts.push(o.prompt); caps.push(cap); return }
    if (Array.isArray(o.messages) && o.messages.length > 0 && o.messages.every(m => m != null && typeof m === 'object' && typeof (m as { role?: unknown }).role === 'string' && typeof (m as { content?: unknown }).content === 'string')) {
      prompts.push(renderChat(o.messages as Array<{ role: string, content: string }>)); caps.push(cap); return
    }
    errors.push({ line, message: 'needs "prompt" (a string) or "messages" ([{ role, content }])' })
  })
  return { prompts, caps, errors }
}

export async function run (argv: string[]): Promise<number> {
  const { values: f } = parseFlags(argv, {
    peer: { type: 'string' },
    prompt: { type: 'string', multiple: true },
    file: { type: 'string' },
    model: { type: 'string' },
    'max-tokens': { type: 'string' },
    objective: { type: 'string' },
    json: { type: 'boolean' },
    timeout: { type: 'string' },
    help: { type: 'boolean', short: 'h' }
  })
  if (f.help === true) { process.stdout.write(HELP); return 0 }
  if (f.peer == null) throw new SwarmtuneError('E_USAGE', '--peer MULTIADDR is required (see --help)')
  if ((f.prompt == null) === (f.file == null)) throw new SwarmtuneError('E_USAGE', 'give either --prompt TEXT or --file FILE.jsonl')
  let addr
  try { addr = multiaddr(f.peer) } catch (err) { throw new SwarmtuneError('E_USAGE', `--peer is not a multiaddr: ${errorMessage(err)}`) }
  const maxTokens = intFlag(f['max-tokens'], 'max-tokens', 32)
  let prompts: string[]
  let caps: number[] = []
  if (f.file != null) {
    let text: string
    try { text = readFileSync(f.file, 'utf8') } catch (err) { throw new SwarmtuneError('E_PROMPTS_FILE', `cannot read ${f.file}: ${errorMessage(err)}`) }
    const parsed = parsePromptLines(text, maxTokens)
    for (const e of parsed.errors) process.stderr.write(`${f.file}:${e.line}: ${e.message} (skipped)\n`)
    prompts = parsed.prompts
    caps = parsed.caps
    if (prompts.length === 0) throw new SwarmtuneError('E_PROMPTS_FILE', `${f.file} holds no valid prompt`)
  } else {
    prompts = f.prompt as string[]
  }
  // the protocol takes one output cap per batch: the largest asked for
  const req: InferRequest = parseInferRequest({
    prompts,
    maxTokens: caps.length > 0 ? Math.max(...caps) : maxTokens,
    ...(f.model != null ? { model: f.model } : {}),
    ...(f.objective != null ? { objective: f.objective } : {})
  })
  const node = await createClientNode()
  try {
    const res = await requestInference(node, addr, req, { timeoutMs: f.timeout != null ? Number(f.timeout) : 300_000 })
    if (f.json === true) { printJson(res); return 0 }
    const m = res.metrics
    const lines = [
      `model ${res.model}, method ${res.method} (${res.source}${res.explored ? ', exploring' : ''})`,
      `wall ${m.wallMs.toFixed(1)} ms, ${m.outputTokensPerSecond.toFixed(1)} output tok/s, TTFT p50 ${m.ttftMsP50.toFixed(1)} ms`,
      ''
    ]
    res.outputs.forEach((o, i) => {
      lines.push(`[${i + 1}] ${o.text}`)
    })
    process.stdout.write(lines.join('\n') + '\n')
    return 0
  } finally {
    await node.stop()
  }
}
