import { describe, it, expect, afterAll } from 'vitest'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CAPABILITY_FILE, loadOrMeasureCapability, probeFingerprint } from '../../src/engine/capability-probe.js'
import { systemProbe } from '../../src/engine/hardware.js'
import { spawnDaemon } from '../../src/testbed/processes.js'
import { waitFor } from '../../src/util/wait.js'

/* Issue #16: the capability probe really measures this machine, caches in the data dir, and measures again on other hardware. */
const root = mkdtempSync(join(tmpdir(), 'swarmtune-capability-'))
afterAll(() => { rmSync(root, { recursive: true, force: true }) })

describe('capability probe', () => {
  it('measures, caches, reuses the cache, and re-measures when the fingerprint changes or the file is junk', async () => {
    const dir = join(root, 'data')
    const probe = systemProbe()
    let clock = 1000
    const now = (): number => clock++
    const first = await loadOrMeasureCapability(dir, probe, { budgetMs: 200, now, loadPerCore: 0.5 })
    expect(first.memBwGBs).toBeGreaterThan(0)
    expect(first.computeTflops).toBeGreaterThan(0)
    expect(first.fingerprint).toBe(probeFingerprint(probe))
    const file = join(dir, CAPABILITY_FILE)
    expect(existsSync(file)).toBe(true)
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(first)

    const again = await loadOrMeasureCapability(dir, probe, { budgetMs: 200, now, loadPerCore: 0.5 })
    expect(again.measuredAt).toBe(first.measuredAt)

    const moved = await loadOrMeasureCapability(dir, { ...probe, ramMiB: probe.ramMiB * 2 }, { budgetMs: 200, now, loadPerCore: 0.5 })
    expect(moved.measuredAt).not.toBe(first.measuredAt)
    expect(moved.fingerprint).not.toBe(first.fingerprint)

    writeFileSync(file, '{not json')
    const repaired = await loadOrMeasureCapability(dir, probe, { budgetMs: 200, now, loadPerCore: 0.5 })
    expect(repaired.fingerprint).toBe(first.fingerprint)
    expect(JSON.parse(readFileSync(file, 'utf8')).measuredAt).toBe(repaired.measuredAt)

    // taken on a busy machine (load 3 per core): measured again at a quieter start, the better figure kept
    writeFileSync(file, JSON.stringify({ ...repaired, memBwGBs: 1e6, loadPerCore: 3 }))
    const quieter = await loadOrMeasureCapability(dir, probe, { budgetMs: 200, now, loadPerCore: 0.5 })
    expect(quieter.measuredAt).not.toBe(repaired.measuredAt)
    expect(quieter.memBwGBs).toBe(1e6)
    expect(quieter.computeTflops).toBeGreaterThanOrEqual(repaired.computeTflops)
    expect(quieter.loadPerCore).toBe(0.5)
    const settled = await loadOrMeasureCapability(dir, probe, { budgetMs: 200, now, loadPerCore: 0.1 })
    expect(settled.measuredAt).toBe(quieter.measuredAt)
  }, 60_000)

  it('a daemon started through the CLI probes once, shows it in status and keeps it in its data dir', async () => {
    const dataDir = join(root, 'daemon')
    // the testbed turns start-up preparation off; this test turns the probe back on
    const d = await spawnDaemon({ dataDir, port: 0, apiPort: 0, env: { SWARMTUNE__engine__capabilityProbe: 'true' } })
    try {
      const cap = await waitFor('the capability in status', async () => {
        const s = await (await fetch(`${d.info.api}/status`)).json() as { capability?: { memBwGBs: number, computeTflops: number, measuredAt: number } }
        return s.capability
      }, 30_000, 200)
      expect(cap.memBwGBs).toBeGreaterThan(0)
      expect(JSON.parse(readFileSync(join(dataDir, CAPABILITY_FILE), 'utf8')).measuredAt).toBe(cap.measuredAt)
    } finally {
      await d.stop()
    }
  }, 90_000)
})
