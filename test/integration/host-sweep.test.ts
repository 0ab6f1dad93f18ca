import { afterAll, describe, expect, it } from 'vitest'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { hostDirOf, spawnDaemon, type DaemonProcess } from '../../src/testbed/processes.js'
import { waitFor } from '../../src/util/wait.js'

/**
 * Issue #17 item 6: two daemons on one host (separate processes, one coordination directory)
 * never measure at the same time. Each daemon's status lists its last cells with when they ran;
 * no cell of one may overlap a cell of the other.
 */
interface CellView { method: string, workload: string, startedAt: number, endedAt: number, outcome: string }
interface StatusView { bench: { background: { enabled: boolean, recent?: CellView[], hostYields?: number } } }

const dir = mkdtempSync(join(tmpdir(), 'swarmtune-host-sweep-'))
const daemons: DaemonProcess[] = []
afterAll(async () => {
  await Promise.all(daemons.map(async d => { await d.stop() }))
  rmSync(dir, { recursive: true, force: true })
})

const env = {
  SWARMTUNE__bench__background__enabled: 'true',
  SWARMTUNE__bench__background__share: '0.9',
  SWARMTUNE__bench__background__firstPassShare: '0.9',
  SWARMTUNE__bench__background__intervalMs: '200',
  SWARMTUNE__bench__repeats: '1',
  SWARMTUNE__engine__defaultModel: 'tiny'
}

async function cellsOf (d: DaemonProcess): Promise<{ cells: CellView[], yields: number }> {
  const s = await (await fetch(`${d.info.api}/status`)).json() as StatusView
  return { cells: s.bench.background.recent ?? [], yields: s.bench.background.hostYields ?? 0 }
}

describe('two daemons of one host', () => {
  it('take turns: their sweeps\' cells never overlap', async () => {
    for (const name of ['a', 'b']) daemons.push(await spawnDaemon({ dataDir: join(dir, name), port: 0, apiPort: 0, timeoutMs: 60_000, env }))
    const [a, b] = daemons
    const both = await waitFor('three cells run by each daemon', async () => {
      const [ca, cb] = await Promise.all([cellsOf(a), cellsOf(b)])
      return ca.cells.length >= 3 && cb.cells.length >= 3 ? [ca, cb] : undefined
    }, 150_000, 250)
    expect(existsSync(hostDirOf(join(dir, 'a')))).toBe(true)
    const [ca, cb] = both
    for (const x of ca.cells) {
      expect(x.endedAt).toBeGreaterThanOrEqual(x.startedAt)
      for (const y of cb.cells) {
        // a cell of a ends before one of b starts, or starts after it ended
        const apart = x.endedAt <= y.startedAt || y.endedAt <= x.startedAt
        expect(apart, `a ${x.method}/${x.workload} [${x.startedAt}, ${x.endedAt}] overlaps b ${y.method}/${y.workload} [${y.startedAt}, ${y.endedAt}]`).toBe(true)
      }
    }
    // both wanted to measure all along: at least one of them found the other measuring
    expect(ca.yields + cb.yields).toBeGreaterThan(0)
  }, 200_000)
})
