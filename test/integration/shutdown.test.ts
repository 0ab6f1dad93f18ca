import { describe, it, expect, afterAll, beforeAll } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { request } from 'node:http'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { apiGet } from '../../src/node/api-client.js'
import { spawnDaemon, type DaemonProcess } from '../../src/testbed/processes.js'
import { synthBodies } from '../../src/records/synthetic.js'

/*
 * Issue #18: SIGTERM stops accepting at once, lets the request in flight finish and exits with 0;
 * what was acknowledged is there after a restart. Daemons through the real CLI. How long the exit
 * takes is a figure of `npm run bench:hardening` (docs/SECURITY.md), not asserted here.
 */
let root: string
const daemons: DaemonProcess[] = []

beforeAll(() => { root = mkdtempSync(join(tmpdir(), 'swarmtune-shutdown-')) })
afterAll(async () => {
  await Promise.all(daemons.map(async d => { await d.stop() }))
  rmSync(root, { recursive: true, force: true })
})

async function start (dataDir: string): Promise<DaemonProcess> {
  const d = await spawnDaemon({ dataDir, port: 0, apiPort: 0 })
  daemons.push(d)
  return d
}

/** true when something accepts a TCP connection on the API's port */
async function portOpen (api: string): Promise<boolean> {
  const { hostname, port } = new URL(api)
  return await new Promise(resolve => {
    const s = connect(Number(port), hostname)
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => { resolve(false) })
  })
}

interface Reply { status: number, json: { imported: number, ids: string[] } }

/** POST /import whose body is sent in two parts: the request is in flight until `finish` is called */
function importInTwoParts (api: string, lines: string[]): { finish: () => void, reply: Promise<Reply> } {
  const half = Math.ceil(lines.length / 2)
  let finish!: () => void
  const reply = new Promise<Reply>((resolve, reject) => {
    const req = request(`${api}/import`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' } }, res => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', c => { text += c })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) }) })
    })
    req.on('error', reject)
    req.write(lines.slice(0, half).join('\n') + '\n')
    finish = () => { req.end(lines.slice(half).join('\n') + '\n') }
  })
  return { finish, reply }
}

describe('SIGTERM (issue #18)', () => {
  it('exits with 0, closes the API port, finishes the import in flight, and keeps what it acknowledged', async () => {
    const dataDir = join(root, 'node')
    const d = await start(dataDir)
    const bodies = synthBodies(40, 5).map(b => JSON.stringify(b))
    // acknowledged before the signal
    const before = importInTwoParts(d.info.api, bodies.slice(0, 20))
    before.finish()
    const ack = await before.reply
    expect(ack.status).toBe(200)
    expect(ack.json.imported).toBe(20)

    // in flight when the signal comes: half of its body sent, and the server has read its
    // headers by the time a later request on another connection is answered
    const inFlight = importInTwoParts(d.info.api, bodies.slice(20))
    await apiGet(d.info.api, '/status')
    d.proc.kill('SIGTERM')
    // stops accepting at once: wait until the port refuses, while the import is still unfinished
    for (let i = 0; i < 200 && await portOpen(d.info.api); i++) await new Promise(resolve => setTimeout(resolve, 25))
    expect(await portOpen(d.info.api)).toBe(false)
    inFlight.finish()
    const late = await inFlight.reply
    expect(late.status).toBe(200)
    expect(late.json.imported).toBe(20)

    expect(await d.exited).toBe(0)
    expect(await portOpen(d.info.api)).toBe(false)

    const again = await start(dataDir)
    const page = await apiGet<{ records: Array<{ id: string }> }>(again.info.api, '/records?limit=1000')
    const stored = new Set(page.records.map(r => r.id))
    for (const id of [...ack.json.ids, ...late.json.ids]) expect(stored.has(id)).toBe(true)
    expect(stored.size).toBe(40)
  }, 90_000)
})
