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

  it('runs the learn scenario: a table measured first, then served choices of fresh daemons scored per window', async () => {
    const { stdout } = await run(process.execPath, [cliPath(), 'testbed', '--scenario', 'learn', '--peers', '2', '--minutes', '0.75', '--families', 'classify',
      '--table-repeats', '1', '--window-seconds', '15', '--pace-seconds', '0.5', '--sample-seconds', '5', '--json'], { timeout: 280_000 })
    const report = JSON.parse(stdout.trim().split('\n').pop()!) as {
      windows: Array<{ t: number, regret: number, baselineRegret: number, singleBestRegret: number, served: number }>
      peers: number
      table: { perf: Record<string, Record<string, number>>, baseline: string, singleBest: string }
      served: Array<{ t: number, peer: number, family: string, method: string }>
      unscored: number
      heldOut: { samples: Array<{ peer: number }>, curves: unknown[][] }
      decisions: Array<{ i: number, source: string, top: Array<{ method: string }> }>
      swarm: Array<{ workload: string, family: string, method: string, records: number }>
      sweeps: Array<{ cells: number, aborted: number } | null>
    }
    expect(report.peers).toBe(2)
    // why each served task was chosen: the serving daemon's recommend answer for the same prompts
    expect(report.decisions.map(d => d.i)).toEqual(report.served.map((_, i) => i))
    for (const d of report.decisions) { expect(['meta', 'safe-default', 'committee', 'cold-start']).toContain(d.source); expect(d.top.length).toBeGreaterThan(0) }
    // the swarm's history at the end holds its served tasks, and each daemon's sweep reports its cells
    expect(report.swarm.filter(c => c.family === 'serving').reduce((n, c) => n + c.records, 0)).toBeGreaterThan(0)
    expect(report.sweeps).toHaveLength(2)
    for (const s of report.sweeps) expect(s?.cells).toBeGreaterThanOrEqual(0)
    // the table: every method of the catalogue measured on the one task type, baseline among them
    expect(Object.keys(report.table.perf)).toEqual(['classify'])
    expect(Object.keys(report.table.perf.classify).length).toBeGreaterThanOrEqual(10)
    expect(report.table.perf.classify[report.table.baseline]).toBeGreaterThan(0)
    expect(report.table.perf.classify[report.table.singleBest]).toBe(Math.max(...Object.values(report.table.perf.classify)))
    // served choices came back with the method that served them and were scored
    expect(report.served.length).toBeGreaterThan(0)
    for (const s of report.served) expect(report.table.perf.classify).toHaveProperty([s.method])
    expect(report.windows.length).toBeGreaterThan(0)
    expect(report.windows.reduce((n, w) => n + w.served, 0) + report.unscored).toBe(report.served.length)
    for (const w of report.windows) {
      expect(Object.keys(w).sort()).toEqual(['baselineRegret', 'regret', 'served', 'singleBestRegret', 't'])
      expect(w.served).toBeGreaterThan(0)
      for (const r of [w.regret, w.baselineRegret, w.singleBestRegret]) { expect(r).toBeGreaterThanOrEqual(0); expect(r).toBeLessThanOrEqual(1) }
      // one task type: single-best in hindsight is the best of the table, regret 0
      expect(w.singleBestRegret).toBe(0)
    }
    expect([...report.windows.map(w => w.t)].sort((a, b) => a - b)).toEqual(report.windows.map(w => w.t))
    expect(report.heldOut.curves).toHaveLength(2)
    expect(new Set(report.heldOut.samples.map(s => s.peer))).toEqual(new Set([0, 1]))
  }, 300_000)

  it('refuses an unknown scenario with E_USAGE', async () => {
    await expect(run(process.execPath, [cliPath(), 'testbed', '--scenario', 'nope'], { timeout: 30_000 })).rejects.toMatchObject({ stderr: expect.stringContaining('E_USAGE') })
  })
})
