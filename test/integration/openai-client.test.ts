import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import OpenAI from 'openai'
import { spawnDaemon, type DaemonProcess } from '../../src/testbed/processes.js'
import { cliPath } from '../../src/util/paths.js'

/*
 * Issue #20 item 2: the official `openai` npm client against a daemon started through the CLI
 * (real engine with the embedded tiny model, real LevelDB, libp2p on 127.0.0.1). Build first.
 */
let root: string
let daemon: DaemonProcess | undefined
let client: OpenAI

beforeAll(async () => {
  if (!existsSync(cliPath())) throw new Error(`${cliPath()} is missing: run \`npx tsc -p .\` first`)
  root = mkdtempSync(join(tmpdir(), 'swarmtune-openai-'))
  daemon = await spawnDaemon({
    dataDir: join(root, 'node'),
    port: 0,
    apiPort: 0,
    env: { SWARMTUNE__engine__defaultModel: 'tiny', SWARMTUNE__openai__aliases: JSON.stringify({ 'gpt-4o-mini': 'tiny' }) },
    timeoutMs: 60_000
  })
  // no retries: a refused request must show up as the error it is
  client = new OpenAI({ baseURL: `${daemon.info.api}/v1`, apiKey: 'unused-on-loopback', maxRetries: 0, timeout: 120_000 })
})

afterAll(async () => {
  await daemon?.stop()
  if (root != null) rmSync(root, { recursive: true, force: true })
})

describe('the OpenAI routes through the official client', () => {
  it('lists and retrieves the models, aliases included', async () => {
    const ids: string[] = []
    for await (const m of client.models.list()) ids.push(m.id)
    expect(ids).toContain('tiny')
    expect(ids).toContain('gpt-4o-mini')
    const m = await client.models.retrieve('tiny')
    expect(m).toMatchObject({ id: 'tiny', object: 'model', owned_by: 'swarmtune' })
  })

  it('answers chat completions, plain and streamed, through an alias', async () => {
    const plain = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hello.' }], max_tokens: 4 })
    expect(plain.object).toBe('chat.completion')
    expect(plain.model).toBe('tiny')
    expect(plain.choices[0].message.role).toBe('assistant')
    expect(plain.usage?.completion_tokens).toBeGreaterThan(0)
    expect(['stop', 'length']).toContain(plain.choices[0].finish_reason)

    const stream = await client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'Say hello.' }], max_tokens: 4, stream: true })
    let text = ''
    let finish: string | null = null
    for await (const chunk of stream) {
      for (const c of chunk.choices) {
        text += c.delta.content ?? ''
        finish = c.finish_reason ?? finish
      }
    }
    // greedy decoding: the streamed text is the plain answer, piece by piece
    expect(text).toBe(plain.choices[0].message.content)
    expect(finish).toBe(plain.choices[0].finish_reason)
  })

  it('answers text completions, plain and streamed', async () => {
    const plain = await client.completions.create({ model: 'tiny', prompt: 'Once upon a time', max_tokens: 4 })
    expect(plain.object).toBe('text_completion')
    expect(plain.choices).toHaveLength(1)
    const stream = await client.completions.create({ model: 'tiny', prompt: 'Once upon a time', max_tokens: 4, stream: true })
    let text = ''
    for await (const chunk of stream) text += chunk.choices.map(c => c.text).join('')
    expect(text).toBe(plain.choices[0].text)
  })

  it('refuses an unknown model and n = 2 in OpenAI\'s error shape', async () => {
    const unknown = await client.chat.completions.create({ model: 'gpt-5', messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e)
    expect(unknown).toBeInstanceOf(OpenAI.NotFoundError)
    expect(unknown).toMatchObject({ status: 404, code: 'model_not_found', type: 'invalid_request_error', param: 'model' })
    const missing = await client.models.retrieve('gpt-5').catch((e: unknown) => e)
    expect(missing).toMatchObject({ status: 404, code: 'model_not_found' })
    const two = await client.completions.create({ model: 'tiny', prompt: 'x', n: 2 }).catch((e: unknown) => e)
    expect(two).toBeInstanceOf(OpenAI.BadRequestError)
    expect(two).toMatchObject({ status: 400, code: 'unsupported_value', param: 'n' })
  })
})
