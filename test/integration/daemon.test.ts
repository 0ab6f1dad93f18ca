import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { apiGet, apiPost } from '../../src/node/api-client.js'
import { loopbackAddr, spawnDaemon, type DaemonProcess } from '../../src/testbed/processes.js'
import { waitFor } from '../../src/util/wait.js'
import { synthBodies } from '../../src/records/synthetic.js'
import { cliPath } from '../../src/util/paths.js'

/*
 * Real daemons as separate processes on 127.0.0.1 with real LevelDB data dirs, driven through
 * the compiled CLI (run `npx tsc -p .` first; `npm test` does). Ports are picked by the OS.
 * A line A – B – C: C knows only B, B knows only A, so anything A has must travel through B.
 */
const run = promisify(execFile)
// catch-up sync every 2 s instead of 30 s, so a restarted peer's neighbours notice quickly
const env = { SWARMTUNE__net__sync__intervalMs: '2000' }

interface Status { peerId: string, peers: number, records: number, own: number }
interface Page { records: Array<{ id: string, author: string, seq: number, source: string }>, cursor?: string }

let root: string
const children: DaemonProcess[] = []
let a: DaemonProcess
let b: DaemonProcess
let c: DaemonProcess

async function start (name: string, bootstrap: DaemonProcess | undefined, ports = { port: 0, apiPort: 0 }): Promise<DaemonProcess> {
  const d = await spawnDaemon({ dataDir: join(root, name), ...ports, bootstrap: bootstrap != null ? [loopbackAddr(bootstrap.info)] : [], env })
  children.push(d)
  return d
}

/** every id the node holds from `author`, following cursors */
async function idsFrom (d: DaemonProcess, author: string): Promise<Set<string>> {
  const ids = new Set<string>()
  let cursor: string | undefined
  do {
    const page = await apiGet<Page>(d.info.api, `/records?author=${author}&limit=1000${cursor != null ? `&cursor=${cursor}` : ''}`)
    for (const r of page.records) ids.add(r.id)
    cursor = page.cursor
  } while (cursor != null)
  return ids
}

async function importOn (d: DaemonProcess, bodies: unknown[]): Promise<string[]> {
  const reply = await apiPost<{ imported: number, ids: string[], errors: unknown[] }>(d.info.api, '/import', JSON.stringify(bodies))
  expect(reply.errors).toEqual([])
  return reply.ids
}

async function holdsAll (d: DaemonProcess, author: string, ids: string[]): Promise<boolean> {
  const have = await idsFrom(d, author)
  return ids.every(id => have.has(id))
}

beforeAll(async () => {
  if (!existsSync(cliPath())) throw new Error(`${cliPath()} is missing: run \`npx tsc -p .\` first`)
  root = mkdtempSync(join(tmpdir(), 'swarmtune-daemon-'))
  a = await start('a', undefined)
  b = await start('b', a)
  c = await start('c', b)
  await waitFor('the line A-B-C to connect', async () => {
    const [sa, sb, sc] = await Promise.all([a, b, c].map(async d => await apiGet<Status>(d.info.api, '/status')))
    return sa.peers >= 1 && sb.peers >= 2 && sc.peers >= 1
  }, 60_000, 100)
}, 120_000)

afterAll(async () => {
  await Promise.all(children.map(async d => { await d.stop(5000) }))
  if (root != null) rmSync(root, { recursive: true, force: true })
})

describe('daemons in a line A - B - C', () => {
  it('stores on C the records imported on A', async () => {
    const ids = await importOn(a, synthBodies(20, 11))
    expect(ids).toHaveLength(20)
    await waitFor('A\'s records on C', async () => await holdsAll(c, a.info.peerId, ids), 60_000, 100)
    const page = await apiGet<Page>(c.info.api, `/records?author=${a.info.peerId}&limit=100`)
    expect(page.records.map(r => r.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1))
    expect(page.records.every(r => r.source === 'import')).toBe(true)
    const sc = await apiGet<Status>(c.info.api, '/status')
    expect(sc.own).toBe(0)
  })

  it('the import command reports bad lines by number and keeps the good ones', async () => {
    const file = join(root, 'mixed.jsonl')
    const [good1, good2] = synthBodies(2, 99)
    const bad = { ...good2, result: { ...good2.result, wallMs: -1 } }
    writeFileSync(file, [JSON.stringify(good1), '{not json', JSON.stringify(bad), '', JSON.stringify(good2)].join('\n'))
    const out = await run(process.execPath, [cliPath(), 'import', '--api', a.info.api, '--json', file]).catch(e => e as { stdout: string, code: number })
    const reply = JSON.parse(out.stdout) as { imported: number, errors: Array<{ line: number, code: string }> }
    expect(reply.imported).toBe(2)
    expect(reply.errors.map(e => [e.line, e.code])).toEqual([[2, 'E_MALFORMED'], [3, 'E_BAD_METRIC']])
    const status = JSON.parse((await run(process.execPath, [cliPath(), 'status', '--api', a.info.api, '--json'])).stdout) as Status & { addresses: string[], rejected: object }
    expect(status.peerId).toBe(a.info.peerId)
    expect(status.records).toBe(22)
    expect(status.addresses).toContain(loopbackAddr(a.info))
    expect(status.rejected).toEqual({})
  })

  it('a peer killed with SIGKILL restarts with its identity and data and catches up', async () => {
    const acked: string[] = [...await idsFrom(a, a.info.peerId)]
    await waitFor('B to hold A\'s records', async () => await holdsAll(b, a.info.peerId, acked), 60_000, 100)
    const bId = b.info.peerId
    const bPort = Number(/\/tcp\/(\d+)\//.exec(loopbackAddr(b.info))![1])
    const bApiPort = Number(new URL(b.info.api).port)

    // A keeps importing while B dies without a chance to flush anything
    let stop = false
    const importing = (async () => {
      let seed = 1000
      while (!stop) {
        acked.push(...await importOn(a, synthBodies(3, seed++)))
        await new Promise(resolve => setTimeout(resolve, 30))
      }
    })()
    await new Promise(resolve => setTimeout(resolve, 300))
    b.proc.kill('SIGKILL')
    expect(await b.exited).toBe('SIGKILL')
    await new Promise(resolve => setTimeout(resolve, 1000))
    stop = true
    await importing

    b = await start('b', a, { port: bPort, apiPort: bApiPort })
    expect(b.info.peerId).toBe(bId)
    await waitFor('B to catch up with A', async () => await holdsAll(b, a.info.peerId, acked), 90_000, 200)
    await waitFor('C to catch up through B', async () => await holdsAll(c, a.info.peerId, acked), 90_000, 200)
    const sb = await apiGet<Status>(b.info.api, '/status')
    expect(sb.records).toBe(acked.length)
  })

  it('refuses a second daemon on a data dir in use, with a clear message and no stack trace', async () => {
    const out = await run(process.execPath, [cliPath(), 'start', '--data-dir', join(root, 'a'), '--listen', '/ip4/127.0.0.1/tcp/0', '--api-port', '0'])
      .then(() => ({ code: 0, stderr: '' }), e => e as { code: number, stderr: string })
    expect(out.code).toBe(1)
    expect(out.stderr).toContain(`data dir ${join(root, 'a')} is in use by another swarmtune daemon`)
    expect(out.stderr).toContain('E_DATA_DIR_LOCKED')
    expect(out.stderr).not.toMatch(/\n\s+at /)
    // the running daemon is unharmed
    expect((await apiGet<Status>(a.info.api, '/status')).peerId).toBe(a.info.peerId)
  })
})
