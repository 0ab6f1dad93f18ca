import type { ServerResponse } from 'node:http'
import { randomBytes } from 'node:crypto'
import { renderChat } from '../engine/chat.js'
import { REQUEST_LIMITS } from '../net/recommend.js'
import { ApiError, type ControlApi } from '../contracts/api.js'
import { ServingError, type ServeFn, type ServeResult } from './types.js'

/**
 * OpenAI-compatible routes on the control API, so existing clients work against a node:
 * `POST /v1/completions` and `POST /v1/chat/completions`, with `stream: true` answered as
 * server-sent events (`data: {chunk}` lines, then `data: [DONE]`).
 *
 * Each request is one served batch (a `prompt` array is a batch of several prompts): the node
 * picks the method, runs it and records it like every other served batch. Every response
 * carries a `swarmtune` field `{ method, source, explored, taskClass, metrics }`.
 *
 * Differences from OpenAI, by design of the engine: decoding is greedy (temperature, top_p and
 * seed are accepted and ignored), `n` must be 1, there are no logprobs, and the engine has no
 * per-token callback, so a streamed answer's chunks are sent when the batch completes (split at
 * word boundaries). `model` names a configured or embedded model; an unknown or missing name
 * runs the node's default model, and the response's `model` says which one ran.
 */
export interface OpenAiInit {
  serve: ServeFn
  defaultModel: string
  /** names the node can run (others fall back to the default model) */
  knownModels?: () => string[]
}

const DEFAULT_MAX_TOKENS = 16
const MAX_TOKENS_CAP = 4096

function bad (message: string, code = 'E_REQ_INVALID'): never {
  throw new ApiError(400, code, message)
}

function isObj (v: unknown): v is Record<string, unknown> {
  return v != null && typeof v === 'object' && !Array.isArray(v)
}

function maxTokensOf (body: Record<string, unknown>): number {
  const raw = body.max_completion_tokens ?? body.max_tokens
  if (raw == null) return DEFAULT_MAX_TOKENS
  if (typeof raw !== 'number' || !Number.isInteger(raw) || raw < 1 || raw > MAX_TOKENS_CAP) bad(`max_tokens must be an integer in [1, ${MAX_TOKENS_CAP}]`)
  return raw
}

function commonChecks (body: Record<string, unknown>): void {
  if (body.n !== undefined && body.n !== 1) bad('only n = 1 is supported')
  if (body.stream !== undefined && typeof body.stream !== 'boolean') bad('stream must be true or false')
}

function modelOf (body: Record<string, unknown>, init: OpenAiInit): string {
  const m = body.model
  if (typeof m !== 'string' || m === '') return init.defaultModel
  const known = init.knownModels?.()
  return known == null || known.includes(m) ? m : init.defaultModel
}

/** Text of a chat message's content: a string or an array of `{ type: 'text', text }` parts. */
export function contentText (content: unknown): string {
  if (typeof content === 'string') return content
  if (Array.isArray(content)) {
    return content.map(p => {
      if (!isObj(p) || p.type !== 'text' || typeof p.text !== 'string') bad('only text content parts are supported')
      return p.text
    }).join('')
  }
  if (content == null) return ''
  bad('message content must be a string or text parts')
}

export function parseCompletionBody (body: unknown): { prompts: string[], maxTokens: number, stream: boolean, model: unknown } {
  if (!isObj(body)) bad('body must be a JSON object', 'E_REQ_MALFORMED')
  commonChecks(body)
  const p = body.prompt
  const prompts = typeof p === 'string' ? [p] : Array.isArray(p) && p.length > 0 && p.every(x => typeof x === 'string') ? p as string[] : bad('prompt must be a string or an array of strings')
  if (prompts.length > REQUEST_LIMITS.maxPrompts) bad(`at most ${REQUEST_LIMITS.maxPrompts} prompts`)
  return { prompts, maxTokens: maxTokensOf(body), stream: body.stream === true, model: body.model }
}

export function parseChatBody (body: unknown): { prompt: string, maxTokens: number, stream: boolean, model: unknown } {
  if (!isObj(body)) bad('body must be a JSON object', 'E_REQ_MALFORMED')
  commonChecks(body)
  const msgs = body.messages
  if (!Array.isArray(msgs) || msgs.length === 0 || msgs.length > 1024) bad('messages must be a non-empty array')
  const messages = msgs.map((m, i) => {
    if (!isObj(m) || typeof m.role !== 'string') bad(`messages[${i}] needs a role`)
    return { role: m.role, content: contentText(m.content) }
  })
  return { prompt: renderChat(messages), maxTokens: maxTokensOf(body), stream: body.stream === true, model: body.model }
}

function finishReason (outputTokens: number, maxTokens: number): 'length' | 'stop' {
  return outputTokens >= maxTokens ? 'length' : 'stop'
}

function extension (r: ServeResult): Record<string, unknown> {
  return { method: r.method, source: r.source, explored: r.explored, taskClass: r.taskClass, metrics: r.metrics }
}

function usage (r: ServeResult): Record<string, number> {
  const prompt = r.outputs.reduce((s, o) => s + o.promptTokens, 0)
  const completion = r.outputs.reduce((s, o) => s + o.outputTokens, 0)
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion }
}

/** Split generated text into stream pieces at word boundaries (whitespace kept with the word before it). */
export function streamPieces (text: string): string[] {
  return text.match(/\S*\s*/g)?.filter(p => p !== '') ?? []
}

function sse (res: ServerResponse, events: unknown[]): void {
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' })
  for (const e of events) res.write(`data: ${JSON.stringify(e)}\n\n`)
  res.end('data: [DONE]\n\n')
}

/** Aborted when the client goes away before its answer is written: a queued or running batch stops. */
function clientGone (res: ServerResponse): AbortSignal {
  const ac = new AbortController()
  res.once('close', () => { if (!res.writableFinished) ac.abort(new ServingError('E_CLIENT_GONE', 'the client disconnected')) })
  return ac.signal
}

const newId = (prefix: string): string => `${prefix}-${randomBytes(12).toString('hex')}`

export function registerOpenAiRoutes (api: ControlApi, init: OpenAiInit): void {
  api.route('POST', '/v1/completions', async (req, res) => {
    const body = parseCompletionBody(await req.json())
    const model = modelOf({ model: body.model }, init)
    const r = await init.serve({ model, prompts: body.prompts, maxTokens: body.maxTokens, signal: clientGone(res) })
    const id = newId('cmpl')
    const created = Math.floor(Date.now() / 1000)
    if (!body.stream) {
      return {
        json: {
          id,
          object: 'text_completion',
          created,
          model: r.model,
          choices: r.outputs.map((o, index) => ({ text: o.text, index, logprobs: null, finish_reason: finishReason(o.outputTokens, body.maxTokens) })),
          usage: usage(r),
          swarmtune: extension(r)
        }
      }
    }
    const chunk = (index: number, text: string, finish: string | null, extra: Record<string, unknown> = {}): unknown =>
      ({ id, object: 'text_completion', created, model: r.model, choices: [{ text, index, logprobs: null, finish_reason: finish }], ...extra })
    const events: unknown[] = []
    r.outputs.forEach((o, index) => {
      for (const piece of streamPieces(o.text)) events.push(chunk(index, piece, null))
      events.push(chunk(index, '', finishReason(o.outputTokens, body.maxTokens)))
    })
    events.push({ id, object: 'text_completion', created, model: r.model, choices: [], usage: usage(r), swarmtune: extension(r) })
    sse(res, events)
    return undefined
  })

  api.route('POST', '/v1/chat/completions', async (req, res) => {
    const body = parseChatBody(await req.json())
    const model = modelOf({ model: body.model }, init)
    const r = await init.serve({ model, prompts: [body.prompt], maxTokens: body.maxTokens, signal: clientGone(res) })
    const o = r.outputs[0]
    const id = newId('chatcmpl')
    const created = Math.floor(Date.now() / 1000)
    const finish = finishReason(o.outputTokens, body.maxTokens)
    if (!body.stream) {
      return {
        json: {
          id,
          object: 'chat.completion',
          created,
          model: r.model,
          choices: [{ index: 0, message: { role: 'assistant', content: o.text }, logprobs: null, finish_reason: finish }],
          usage: usage(r),
          swarmtune: extension(r)
        }
      }
    }
    const chunk = (delta: Record<string, unknown>, fin: string | null): unknown =>
      ({ id, object: 'chat.completion.chunk', created, model: r.model, choices: [{ index: 0, delta, logprobs: null, finish_reason: fin }] })
    const events: unknown[] = [chunk({ role: 'assistant', content: '' }, null)]
    for (const piece of streamPieces(o.text)) events.push(chunk({ content: piece }, null))
    events.push(chunk({}, finish))
    events.push({ id, object: 'chat.completion.chunk', created, model: r.model, choices: [], usage: usage(r), swarmtune: extension(r) })
    sse(res, events)
    return undefined
  })
}
