import { describe, it, expect } from 'vitest'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { promisify } from 'node:util'
import { cliPath } from '../../src/util/paths.js'

const run = promisify(execFile)

describe('swarmtune testbed', () => {
  it('starts N daemons, connects them, reports propagation and cleans up with --exit', async () => {
    const { stdout } = await run(process.execPath, [cliPath(), 'testbed', '--peers', '3', '--json', '--exit'], { timeout: 150_000 })
    const report = JSON.parse(stdout.trim().split('\n').pop()!) as {
      peers: Array<{ peerId: string, api: string, dataDir: string }>, recordId: string, propagationMs: number, arrivalsMs: number[]
    }
    expect(report.peers).toHaveLength(3)
    expect(new Set(report.peers.map(p => p.peerId)).size).toBe(3)
    expect(new Set(report.peers.map(p => p.dataDir)).size).toBe(3)
    expect(report.recordId).toMatch(/^[0-9a-f]{64}$/)
    expect(report.arrivalsMs).toHaveLength(2)
    expect(report.propagationMs).toBe(Math.max(...report.arrivalsMs))
    // the daemons are gone and their temporary data dirs removed
    for (const p of report.peers) expect(existsSync(p.dataDir)).toBe(false)
    await expect(fetch(`${report.peers[0].api}/status`)).rejects.toThrow()
  }, 180_000)
})
