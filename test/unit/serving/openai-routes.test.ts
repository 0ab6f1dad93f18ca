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
  registerOpenAiRoutes(api, { serve, defaultModel: 'tiny', knownModels: () => ['tiny'] })
  await api.start()
  return api.url()
}
const chat = JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], max_tokens: 4, stream: true })

describe('OpenAI routes under load (issue #18)', () => {
  it('a full serving queue is 429 with Retry-After', async () => {
    const url = await serveWith(async () => { throw new ServingError('E_OVERLOADED', '64 batches already queued: try later') })
    const res = await fetch(`${url}/v1/chat/completions`, { method: 'POST', body: chat, headers: { 'content-type': 'application/json' } })
    expect(res.status).toBe(429)
    expect(res.headers.get('retry-after')).toBe('1')
    expect((await res.json()).error.code).toBe('E_OVERLOADED')
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
