import type { ServerResponse } from 'node:http'
import { randomBytes } from 'node:crypto'
import { renderChat } from '../engine/chat.js'
import { REQUEST_LIMITS } from '../net/recommend.js'
import { ApiError, type ControlApi, type ErrorInfo } from '../contracts/api.js'
import { ServingError, type OpenAiModelsConfig, type ServeFn, type ServeResult } from './types.js'

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
 * word boundaries). `model` names a configured or embedded model or an alias of one (config
 * `openai.aliases`); another name is 404 `model_not_found` as OpenAI answers it, unless
 * `openai.defaultForUnknown` names the model that answers it; a missing name runs the default
 * model. The response's `model` says which one ran. `GET /v1/models` and `/v1/models/{id}` list
 * the names (aliases included), and every error under `/v1/` has OpenAI's shape
 * `{ error: { message, type, param, code } }`.
 */
export interface OpenAiInit {
  serve: ServeFn
  defaultModel: string
  /** names the node can run (default: any name is passed on to serve) */
  knownModels?: () => string[]
  models?: OpenAiModelsConfig
  /** `created` of the listed models (unix seconds; default now) */
  created?: number
}

/** An error of the OpenAI routes that names the request field at fault (OpenAI's `param`). */
export class OpenAiError extends ApiError {
  readonly param: string | null
  constructor (status: number, code: string, message: string, param: string | null = null) {
    super(status, code, message)
    this.param = param
  }
}

// our codes that OpenAI has a name for; others keep ours, so clients can still tell them apart
const OPENAI_CODES: Record<string, string> = { E_UNKNOWN_MODEL: 'model_not_found', E_UNSUPPORTED_VALUE: 'unsupported_value' }

function errorType (status: number): string {
  if (status === 401) return 'authentication_error'
  if (status === 403) return 'permission_error'
  if (status === 429) return 'rate_limit_error'
  return status >= 500 ? 'server_error' : 'invalid_request_error'
}

/** OpenAI's error body (what its clients parse into APIError.code/type/param). */
export function openAiErrorBody (e: ErrorInfo): unknown {
  const param = e.err instanceof OpenAiError ? e.err.param : null
  return { error: { message: e.message, type: errorType(e.status), param, code: OPENAI_CODES[e.code] ?? e.code } }
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
  // OpenAI's answer to a value a model does not support
  if (body.n !== undefined && body.n !== null && body.n !== 1) throw new OpenAiError(400, 'E_UNSUPPORTED_VALUE', `Unsupported value: 'n' does not support ${JSON.stringify(body.n)} with this model. Supported values are: 1.`, 'n')
  if (body.stream !== undefined && typeof body.stream !== 'boolean') bad('stream must be true or false')
}

function modelNotFound (name: string): OpenAiError {
  return new OpenAiError(404, 'E_UNKNOWN_MODEL', `The model \`${name}\` does not exist or you do not have access to it.`, 'model')
}

/** The model that runs for a request's `model` (alias, known name, default-for-unknown) or 404. */
export function resolveModelName (m: unknown, init: Pick<OpenAiInit, 'defaultModel' | 'knownModels' | 'models'>): string {
  if (m == null || m === '') return init.defaultModel
  if (typeof m !== 'string') bad('model must be a string')
  const known = init.knownModels?.()
  if (known == null || known.includes(m)) return m
  const alias = init.models?.aliases?.[m]
  if (alias != null && known.includes(alias)) return alias
  const fallback = init.models?.defaultForUnknown
  if (fallback != null && known.includes(fallback)) return fallback
  throw modelNotFound(m)
}

/** The ids `GET /v1/models` lists: the models, then the aliases whose target exists. */
export function listedModels (init: Pick<OpenAiInit, 'knownModels' | 'models' | 'defaultModel'>): string[] {
  const known = init.knownModels?.() ?? [init.defaultModel]
  const aliases = Object.entries(init.models?.aliases ?? {}).filter(([a, t]) => known.includes(t) && !known.includes(a)).map(([a]) => a)
  return [...known, ...aliases]
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

function registerModelRoutes (api: ControlApi, init: OpenAiInit): void {
  const created = init.created ?? Math.floor(Date.now() / 1000)
  const entry = (id: string): Record<string, unknown> => {
    const target = init.models?.aliases?.[id]
    return { id, object: 'model', created, owned_by: 'swarmtune', ...(target != null && id !== target ? { swarmtune: { alias_of: target } } : {}) }
  }
  api.route('GET', '/v1/models', () => ({ json: { object: 'list', data: listedModels(init).map(entry) } }))
  api.route('GET', '/v1/models/*', (req) => {
    let id: string
    try { id = decodeURIComponent(req.path.slice('/v1/models/'.length)) } catch { bad('the model id is not valid percent-encoding') }
    if (!listedModels(init).includes(id)) throw modelNotFound(id)
    return { json: entry(id) }
  })
}

export function registerOpenAiRoutes (api: ControlApi, init: OpenAiInit): void {
  api.errorShape('/v1/', openAiErrorBody)
  registerModelRoutes(api, init)
  api.route('POST', '/v1/completions', async (req, res) => {
    const body = parseCompletionBody(await req.json())
    const model = resolveModelName(body.model, init)
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
    const model = resolveModelName(body.model, init)
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
