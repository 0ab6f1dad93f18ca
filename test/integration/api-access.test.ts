import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { spawnDaemon, type DaemonProcess } from '../../src/testbed/processes.js'
import { synthBodies } from '../../src/records/synthetic.js'
import { cliPath } from '../../src/util/paths.js'

/*
 * Issue #18, as a web page or a stranger would try it: daemons started through the CLI on
 * 127.0.0.1 (run `npx tsc -p .` first), raw HTTP requests with the headers a browser sends.
 */
const run = promisify(execFile)
let root: string
let d: DaemonProcess
let locked: DaemonProcess

interface Reply { status: number, body: any }
/** node:http, because fetch does not let a caller set Host */
async function raw (api: string, method: string, path: string, headers: Record<string, string>, body?: string): Promise<Reply> {
  return await new Promise((resolve, reject) => {
    const req = request(`${api}${path}`, { method, headers: body != null ? { ...headers, 'content-length': String(Buffer.byteLength(body)) } : headers, timeout: 10_000 }, res => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', c => { text += c })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: text.startsWith('{') ? JSON.parse(text) : text }) })
    })
    req.on('timeout', () => { req.destroy(new Error('timeout')) })
    req.on('error', reject)
    req.end(body)
  })
}
const host = (api: string): string => new URL(api).host

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'swarmtune-access-'))
  d = await spawnDaemon({ dataDir: join(root, 'a'), port: 0, apiPort: 0 })
  locked = await spawnDaemon({ dataDir: join(root, 'b'), port: 0, apiPort: 0, env: { SWARMTUNE__api__requireToken: 'true' } })
}, 60_000)

afterAll(async () => {
  await Promise.all([d?.stop(), locked?.stop()])
  rmSync(root, { recursive: true, force: true })
})

describe('control API access (issue #18)', () => {
  it('refuses a cross-origin text/plain import and imports nothing', async () => {
    const body = synthBodies(2, 1).map(b => JSON.stringify(b)).join('\n')
    const simple = await raw(d.info.api, 'POST', '/import', { host: host(d.info.api), 'content-type': 'text/plain', origin: 'http://evil.example' }, body)
    expect(simple.status).toBe(403)
    expect(simple.body.error.code).toBe('E_FORBIDDEN_ORIGIN')
    // without an Origin (a non-browser client), a form type is still refused
    const form = await raw(d.info.api, 'POST', '/import', { host: host(d.info.api), 'content-type': 'application/x-www-form-urlencoded' }, body)
    expect(form.status).toBe(415)
    expect(form.body.error.code).toBe('E_CONTENT_TYPE')
    const chat = await raw(d.info.api, 'POST', '/v1/chat/completions', { host: host(d.info.api), 'content-type': 'text/plain', origin: 'http://evil.example' }, '{"messages":[{"role":"user","content":"hi"}]}')
    expect(chat.status).toBe(403)
    const status = await raw(d.info.api, 'GET', '/status', { host: host(d.info.api) })
    expect(status.body).toMatchObject({ records: 0, own: 0 })
  })

  it('refuses a DNS-rebinding Host and answers loopback names', async () => {
    const evil = await raw(d.info.api, 'GET', '/status', { host: `evil.example:${new URL(d.info.api).port}` })
    expect(evil.status).toBe(403)
    expect(evil.body.error.code).toBe('E_BAD_HOST')
    expect((await raw(d.info.api, 'GET', '/status', { host: `localhost:${new URL(d.info.api).port}` })).status).toBe(200)
  })

  it('with a token required: 401 without it, and the CLI finds it in the data dir', async () => {
    const file = join(root, 'b', 'api-token')
    expect(statSync(file).mode & 0o777).toBe(0o600)
    expect(locked.stderr()).toContain('requires Authorization: Bearer')
    const none = await raw(locked.info.api, 'GET', '/status', { host: host(locked.info.api) })
    expect(none.status).toBe(401)
    expect(none.body.error.code).toBe('E_UNAUTHORIZED')
    const token = readFileSync(file, 'utf8').trim()
    expect((await raw(locked.info.api, 'GET', '/status', { host: host(locked.info.api), authorization: `Bearer ${token}` })).status).toBe(200)
    const cli = await run(process.execPath, [cliPath(), 'status', '--json', '--api', locked.info.api], { env: { ...process.env, SWARMTUNE_DATA_DIR: join(root, 'b') }, timeout: 30_000 })
    expect(JSON.parse(cli.stdout).peerId).toBe(locked.info.peerId)
    const flag = await run(process.execPath, [cliPath(), 'status', '--json', '--token', token, '--api', locked.info.api], { env: { ...process.env, SWARMTUNE_DATA_DIR: join(root, 'nowhere') }, timeout: 30_000 })
    expect(JSON.parse(flag.stdout).peerId).toBe(locked.info.peerId)
    const wrong = await run(process.execPath, [cliPath(), 'status', '--api', locked.info.api], { env: { ...process.env, SWARMTUNE_DATA_DIR: join(root, 'nowhere') }, timeout: 30_000 }).catch((err: { stderr: string }) => err)
    expect((wrong as { stderr: string }).stderr).toContain('E_UNAUTHORIZED')
  })
})
