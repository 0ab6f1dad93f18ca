import { describe, it, expect, afterAll } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnDaemon, type DaemonProcess } from '../../src/testbed/processes.js'

/*
 * Issue #18: long prompts against a daemon started through the CLI, real engine (the generated
 * tiny model, 2048-token context). One over the context is refused with E_CONTEXT_OVERFLOW after
 * tokenizing in slices (src/serving/tokenize.ts); one over 256 Ki characters before any
 * tokenizing. How long the loop is held is a figure of `npm run bench:hardening`, not asserted here.
 */
const root = mkdtempSync(join(tmpdir(), 'swarmtune-prompts-'))
let d: DaemonProcess | undefined
afterAll(async () => {
  await d?.stop()
  rmSync(root, { recursive: true, force: true })
})

async function complete (api: string, prompt: string): Promise<{ status: number, body: any }> {
  const r = await fetch(`${api}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'tiny', prompt, max_tokens: 2 }) })
  return { status: r.status, body: await r.json() }
}

const text = (chars: number): string => 'the quick brown fox jumps over a lazy dog '.repeat(Math.ceil(chars / 42)).slice(0, chars)

describe('prompt bounds (issue #18)', () => {
  it('serves a short prompt, refuses one over the context and one over 256 Ki characters with their codes', async () => {
    d = await spawnDaemon({ dataDir: join(root, 'node'), port: 0, apiPort: 0, env: { SWARMTUNE__engine__defaultModel: 'tiny' } })
    const ok = await complete(d.info.api, 'hello there')
    expect(ok.status).toBe(200)
    const over = await complete(d.info.api, text(200_000))
    expect(over.status).toBe(400)
    expect(JSON.stringify(over.body)).toContain('E_CONTEXT_OVERFLOW')
    const huge = await complete(d.info.api, text(256 * 1024 + 1))
    expect(huge.status).toBe(400)
    expect(JSON.stringify(huge.body)).toContain('E_PROMPT_TOO_LONG')
    // still serving afterwards
    expect((await complete(d.info.api, 'and again')).status).toBe(200)
  }, 180_000)
})
