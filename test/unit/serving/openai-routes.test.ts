import { describe, it, expect, afterEach } from 'vitest'
import { createApi } from '../../../src/node/api.js'
import { registerOpenAiRoutes } from '../../../src/serving/openai.js'
import { ServingError, type ServeRequest, type ServeResult } from '../../../src/serving/types.js'
import type { ControlApi } from '../../../src/contracts/api.js'

/* The OpenAI routes over a real control API on 127.0.0.1 with a stand-in serve function. */
let api: ControlApi | undefined
afterEach(async () => { await api?.stop(); api = undefined })

async function serveWith (serve: (req: ServeRequest) => Promise<ServeResult>): Promise<string> {
  api = createApi({ host: '127.0.0.1', port: 0 })
  registerOpenAiRoutes(api, { serve, defaultModel: 'tiny', knownModels: () => ['tiny'], models: { aliases: { 'gpt-4o': 'tiny' } }, created: 1700000000 })
  await api.start()
  // as the daemon does once every service has registered its routes
  api.ready?.()
  return api.url()
}
const chat = JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], max_tokens: 4, stream: true })

describe('OpenAI routes under load (issue #18)', () => {
  it('lists and retrieves models; an unknown model, an unknown /v1 path and a wrong method answer in OpenAI\'s error shape', async () => {
    const url = await serveWith(async () => { throw new Error('not called') })
    const list = await (await fetch(`${url}/v1/models`)).json()
    expect(list).toEqual({ object: 'list', data: [
      { id: 'tiny', object: 'model', created: 1700000000, owned_by: 'swarmtune' },
      { id: 'gpt-4o', object: 'model', created: 1700000000, owned_by: 'swarmtune', swarmtune: { alias_of: 'tiny' } }
    ] })
    expect(await (await fetch(`${url}/v1/models/tiny`)).json()).toMatchObject({ id: 'tiny', object: 'model' })
    const missing = await fetch(`${url}/v1/models/gpt-5`)
    expect(missing.status).toBe(404)
    expect(await missing.json()).toEqual({ error: { message: 'The model `gpt-5` does not exist or you do not have access to it.', type: 'invalid_request_error', param: 'model', code: 'model_not_found' } })
    const chatUnknown = await fetch(`${url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ model: 'gpt-5', messages: [{ role: 'user', content: 'x' }] }), headers: { 'content-type': 'application/json' } })
    expect(chatUnknown.status).toBe(404)
    expect((await chatUnknown.json()).error.code).toBe('model_not_found')
    const noRoute = await fetch(`${url}/v1/embeddings`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } })
    expect(noRoute.status).toBe(404)
    expect((await noRoute.json()).error).toMatchObject({ type: 'invalid_request_error', code: 'E_NOT_FOUND', param: null })
    const wrongMethod = await fetch(`${url}/v1/models`, { method: 'DELETE' })
    expect(wrongMethod.status).toBe(405)
    expect((await wrongMethod.json()).error.type).toBe('invalid_request_error')
  })

  it('a full serving queue is 429 with Retry-After', async () => {
    const url = await serveWith(async () => { throw new ServingError('E_OVERLOADED', '64 batches already queued: try later') })
    const res = await fetch(`${url}/v1/chat/completions`, { method: 'POST', body: chat, headers: { 'content-type': 'application/json' } })
    expect(res.status).toBe(429)
    expect(res.headers.get('retry-after')).toBe('1')
    expect((await res.json()).error).toMatchObject({ code: 'E_OVERLOADED', type: 'rate_limit_error' })
  })

  it('a client that disconnects aborts its batch', async () => {
    let aborted!: () => void
    const wasAborted = new Promise<void>(resolve => { aborted = resolve })
    let started!: () => void
    const serving = new Promise<void>(resolve => { started = resolve })
    const url = await serveWith(async req => await new Promise((_resolve, reject) => {
      started()
      req.signal?.addEventListener('abort', () => { aborted(); reject(req.signal?.reason) })
      // never answers on its own: only the abort ends it (bounded by the test timeout)
    }))
    const ac = new AbortController()
    const done = fetch(`${url}/v1/chat/completions`, { method: 'POST', body: chat, headers: { 'content-type': 'application/json' }, signal: ac.signal }).catch(() => 'gone')
    await serving
    ac.abort()
    expect(await done).toBe('gone')
    await wasAborted
  }, 10_000)
})
