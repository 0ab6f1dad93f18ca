import { describe, it, expect, afterAll, beforeAll } from 'vitest'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { apiGet } from '../../src/node/api-client.js'
import { spawnDaemon, type DaemonProcess } from '../../src/testbed/processes.js'
import { synthBodies } from '../../src/records/synthetic.js'
import { cliPath } from '../../src/util/paths.js'
import { waitFor } from '../../src/util/wait.js'

/* Issue #18, /import as an attacker and as an unlucky user would drive it, daemons through the CLI. */
let root: string
const daemons: DaemonProcess[] = []

beforeAll(() => { root = mkdtempSync(join(tmpdir(), 'swarmtune-import-')) })
afterAll(async () => {
  await Promise.all(daemons.map(async d => { await d.stop() }))
  rmSync(root, { recursive: true, force: true })
})

async function start (name: string): Promise<DaemonProcess> {
  const d = await spawnDaemon({ dataDir: join(root, name), port: 0, apiPort: 0 })
  daemons.push(d)
  return d
}

function cli (args: string[]): { exited: Promise<{ code: number | null, stdout: string, stderr: string }> } {
  const p = spawn(process.execPath, [cliPath(), ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  p.stdout.on('data', c => { stdout += String(c) })
  p.stderr.on('data', c => { stderr += String(c) })
  const timer = setTimeout(() => { p.kill('SIGKILL') }, 120_000)
  return { exited: new Promise(resolve => { p.on('close', code => { clearTimeout(timer); resolve({ code, stdout, stderr }) }) }) }
}

describe('/import hardening (issue #18)', () => {
  it('15 MiB of junk lines: a bounded reply, and /status answers while it is processed', async () => {
    const d = await start('junk')
    const junk = Buffer.from('1\n'.repeat(Math.floor(15 * 1024 * 1024 / 2)))
    let importDone = false
    let sent!: () => void
    const uploaded = new Promise<void>(resolve => { sent = resolve })
    const reply = new Promise<{ status: number, text: string }>((resolve, reject) => {
      const req = request(`${d.info.api}/import`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson', 'content-length': String(junk.length) }, timeout: 120_000 }, res => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', c => { text += c })
        res.on('end', () => { importDone = true; resolve({ status: res.statusCode ?? 0, text }) })
      })
      req.on('error', reject)
      req.on('finish', () => { sent() })
      req.end(junk)
    })
    // a status answered after the whole body went out, while the import is still running
    await uploaded
    const during = await waitFor('a /status answer during the import', async () => {
      const s = await apiGet<{ records: number }>(d.info.api, '/status')
      return { s, importDone }
    }, 60_000, 20)
    const r = await reply
    expect(during.importDone).toBe(false)
    expect(r.status).toBe(200)
    expect(r.text.length).toBeLessThan(64 * 1024)
    const body = JSON.parse(r.text)
    expect(body).toMatchObject({ imported: 0, errorCount: junk.length / 2, errorsByCode: { E_MALFORMED: junk.length / 2 } })
    expect(body.errors).toHaveLength(100)
    expect((await apiGet<{ records: number }>(d.info.api, '/status')).records).toBe(0)
  })

  it('an import interrupted by the daemon dying reports partial progress, and the re-run adds no duplicates', async () => {
    const dataDir = join(root, 'victim')
    let d = await start('victim')
    const bodies = synthBodies(12_000, 11)
    const distinct = new Set(bodies.map(b => JSON.stringify(b))).size
    const file = join(root, 'bodies.jsonl')
    writeFileSync(file, bodies.map(b => JSON.stringify(b)).join('\n') + '\n')
    const first = cli(['import', '--api', d.info.api, file])
    await waitFor('some records acknowledged', async () => (await apiGet<{ own: number }>(d.info.api, '/status')).own > 0 ? true : undefined, 60_000, 20)
    d.proc.kill('SIGKILL')
    await d.exited
    const r1 = await first.exited
    expect(r1.code).toBe(1)
    expect(r1.stderr).toContain('import interrupted')
    expect(r1.stderr).toContain('run the same command again')
    d = await spawnDaemon({ dataDir, port: 0, apiPort: 0 })
    daemons.push(d)
    const stored = (await apiGet<{ own: number }>(d.info.api, '/status')).own
    expect(stored).toBeGreaterThan(0)
    const second = await cli(['import', '--json', '--api', d.info.api, file]).exited
    expect(second.code).toBe(0)
    const rep = JSON.parse(second.stdout)
    expect(rep.duplicates).toBe(stored + (bodies.length - distinct))
    expect(rep.imported).toBe(distinct - stored)
    expect((await apiGet<{ own: number }>(d.info.api, '/status')).own).toBe(distinct)
  })
})
