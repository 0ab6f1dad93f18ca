import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import OpenAI from 'openai'
import { apiGet } from '../../src/node/api-client.js'
import { loopbackAddr, spawnDaemon, type DaemonProcess } from '../../src/testbed/processes.js'
import { cliPath } from '../../src/util/paths.js'
import { waitFor } from '../../src/util/wait.js'

/*
 * Issue #20 item 6: a fresh daemon (no model files yet: the default `small` model is generated on
 * first start) answers its very first recommend and OpenAI request — with an answer, or with a
 * clear E_STARTING while the model is prepared — never with a timeout. Real CLI, engine, LevelDB.
 */
const exec = promisify(execFile)
let root: string
let daemon: DaemonProcess | undefined

async function recommend (peer: string, task: string): Promise<{ code: number, stdout: string, stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [cliPath(), 'recommend', '--peer', peer, '--task', task, '--json'], { timeout: 60_000 })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code?: number, stdout?: string, stderr?: string }
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }
  }
}

beforeAll(async () => {
  if (!existsSync(cliPath())) throw new Error(`${cliPath()} is missing: run \`npx tsc -p .\` first`)
  root = mkdtempSync(join(tmpdir(), 'swarmtune-first-'))
  daemon = await spawnDaemon({ dataDir: join(root, 'node'), port: 0, apiPort: 0, env: { SWARMTUNE__engine__defaultModel: 'small', SWARMTUNE__engine__prepareOnStart: 'true' }, timeoutMs: 60_000 })
})

afterAll(async () => {
  await daemon?.stop()
  if (root != null) rmSync(root, { recursive: true, force: true })
})

describe('the first answer of a fresh daemon', () => {
  it('answers the first recommend (or says E_STARTING), then answers once the model is ready, and serves the first OpenAI request', async () => {
    const task = join(root, 'task.json')
    writeFileSync(task, JSON.stringify({ model: 'small', workload: { features: { requests: 4, promptTokensMean: 300 } } }))
    const peer = loopbackAddr(daemon!.info)
    const first = await recommend(peer, task)
    if (first.code === 0) {
      expect(JSON.parse(first.stdout).ranking.length).toBeGreaterThan(0)
    } else {
      // the one refusal allowed: clear, with its code, and not a timeout
      expect(first.stderr).toMatch(/still being prepared.*\[E_STARTING\]/)
    }
    expect(first.stderr).not.toMatch(/E_REQ_TIMEOUT/)

    await waitFor('the default model to be prepared', async () => {
      const s = await apiGet<{ serving: { models: Record<string, string> } }>(daemon!.info.api, '/status')
      expect(s.serving.models.small).not.toBe('failed')
      return s.serving.models.small === 'ready'
    }, 120_000, 250)
    const second = await recommend(peer, task)
    expect(second.stderr).toBe('')
    expect(JSON.parse(second.stdout).ranking.length).toBeGreaterThan(0)

    const client = new OpenAI({ baseURL: `${daemon!.info.api}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 120_000 })
    const chat = await client.chat.completions.create({ model: 'small', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2 })
    expect(chat.model).toBe('small')
    expect(chat.choices).toHaveLength(1)
  }, 240_000)
})
