import { describe, it, expect, afterAll } from 'vitest'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { apiGet, apiPost, ApiReplyError } from '../../src/node/api-client.js'
import { synthBodies } from '../../src/records/synthetic.js'
import { spawnDaemon, type DaemonProcess } from '../../src/testbed/processes.js'

/*
 * Issue #18 item 4 with a real write error: the daemon runs under `prlimit --fsize` (soft limit
 * 256 KiB, hard unlimited), so LevelDB's log file hits the limit and the write fails with EFBIG
 * (the daemon handles SIGXFSZ instead of dying). The store reports itself full in /status and
 * /metrics and refuses writes with 507; once the soft limit is raised on the running process,
 * the next write reopens LevelDB and succeeds; after kill -9 and a restart every acknowledged
 * record is there. Build first: `npx tsc -p .`.
 */
interface Status { own: number, store: { healthy: boolean, error: { code: string, message: string } | null, writeErrors: number, recoveries: number } }

const root = mkdtempSync(join(tmpdir(), 'swarmtune-store-full-'))
const daemons: DaemonProcess[] = []
afterAll(async () => {
  for (const d of daemons) await d.stop()
  rmSync(root, { recursive: true, force: true })
})

/** POST one batch; the records the daemon acknowledged (its reply's `imported`, also on an error reply). */
async function importBatch (api: string, bodies: unknown[]): Promise<{ acked: number, code?: string, status?: number }> {
  try {
    const r = await apiPost<{ imported: number }>(api, '/import', bodies.map(b => JSON.stringify(b)).join('\n') + '\n', 'application/x-ndjson')
    return { acked: r.imported }
  } catch (err) {
    if (!(err instanceof ApiReplyError)) throw err
    return { acked: (err.reply as { imported?: number } | null)?.imported ?? 0, code: err.code, status: err.status }
  }
}

describe('a real file-size limit under LevelDB', () => {
  it('is reported (507, /status, /metrics), recovers once lifted, and loses nothing acknowledged', async () => {
    const dataDir = join(root, 'd')
    let d = await spawnDaemon({ dataDir, port: 0, apiPort: 0, prefix: ['prlimit', `--fsize=${256 * 1024}:unlimited`, '--'] })
    daemons.push(d)
    const bodies = synthBodies(4000, 7)
    let acked = 0
    let next = 0
    let failure: { code?: string, status?: number } | undefined
    // batches of 50 until a write fails (bounded: 4,000 bodies are ~2 MB, far over the limit)
    while (next < 3000 && failure == null) {
      const r = await importBatch(d.info.api, bodies.slice(next, next + 50))
      next += 50
      acked += r.acked
      if (r.code != null) failure = r
    }
    expect(failure).toMatchObject({ code: 'E_STORE_FULL', status: 507 })
    const bad = await apiGet<Status>(d.info.api, '/status')
    expect(bad.store.healthy).toBe(false)
    expect(bad.store.error?.code).toBe('E_STORE_FULL')
    expect(bad.store.error?.message).toContain(dataDir)
    expect(bad.store.writeErrors).toBeGreaterThanOrEqual(1)
    const metrics = await (await fetch(`${d.info.api}/metrics`)).text()
    expect(metrics).toMatch(/swarmtune_store_healthy(\{[^}]*\})? 0/)
    // refused at once until the reopen interval (1 s) has passed
    expect((await importBatch(d.info.api, bodies.slice(next, next + 50))).status).toBe(507)
    next += 50
    // raise the soft limit on the running daemon (prlimit exec'd node: same pid)
    execFileSync('prlimit', ['--pid', String(d.proc.pid), '--fsize=unlimited:unlimited'])
    await new Promise(resolve => setTimeout(resolve, 1100))
    // the reopen starts a fresh LevelDB log file, and the write goes through
    const ok = await importBatch(d.info.api, bodies.slice(next, next + 50))
    expect(ok.code).toBeUndefined()
    acked += ok.acked
    const good = await apiGet<Status>(d.info.api, '/status')
    expect(good.store).toMatchObject({ healthy: true, error: null })
    expect(good.store.recoveries).toBeGreaterThanOrEqual(1)
    // kill -9, restart without any limit: every acknowledged record is there
    d.proc.kill('SIGKILL')
    await d.exited
    d = await spawnDaemon({ dataDir, port: 0, apiPort: 0 })
    daemons.push(d)
    expect(acked).toBeGreaterThan(0)
    expect((await apiGet<Status>(d.info.api, '/status')).own).toBeGreaterThanOrEqual(acked)
  }, 180_000)
})
