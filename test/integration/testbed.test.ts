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

  it('runs the learn scenario: fresh daemons with the sweep on, sampled per peer over time, then stopped', async () => {
    const { stdout } = await run(process.execPath, [cliPath(), 'testbed', '--scenario', 'learn', '--peers', '2', '--minutes', '0.4', '--sample-seconds', '5', '--json'], { timeout: 240_000 })
    const report = JSON.parse(stdout.trim().split('\n').pop()!) as {
      peers: number, model: string, samples: Array<{ t: number, peer: number, records: number, authors: number, defaultRegret: number | null }>, curves: unknown[][]
    }
    expect(report.peers).toBe(2)
    expect(report.model).toBe('tiny')
    expect(report.curves).toHaveLength(2)
    expect(new Set(report.samples.map(s => s.peer))).toEqual(new Set([0, 1]))
    for (const p of [0, 1]) {
      const ts = report.samples.filter(s => s.peer === p).map(s => s.t)
      expect(ts.length).toBeGreaterThanOrEqual(2)
      expect([...ts].sort((a, b) => a - b)).toEqual(ts)
    }
    for (const s of report.samples) expect(s.authors).toBeLessThanOrEqual(2)
  }, 300_000)

  it('refuses an unknown scenario with E_USAGE', async () => {
    await expect(run(process.execPath, [cliPath(), 'testbed', '--scenario', 'nope'], { timeout: 30_000 })).rejects.toMatchObject({ stderr: expect.stringContaining('E_USAGE') })
  })
})
