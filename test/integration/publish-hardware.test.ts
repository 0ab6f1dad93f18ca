import { describe, it, expect, afterAll } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { loopbackAddr, spawnDaemon, type DaemonProcess } from '../../src/testbed/processes.js'
import { waitFor } from '../../src/util/wait.js'
import { runCli } from '../helpers/cli.js'
import type { HardwareFingerprint } from '../../src/records/types.js'

/*
 * Issue #16 item 6, as an operator meets it: `swarmtune start --publish-hardware capability`,
 * then `swarmtune bench --api ... --quick`. The records this daemon signs name no CPU model
 * or GPU of this machine, only its capability class, and a second peer (separate process,
 * started through the CLI) accepts them over gossip/sync. Real engine, tiny embedded model,
 * real LevelDB. Needs `npm run build`.
 */
const dir = mkdtempSync(join(tmpdir(), 'swarmtune-publish-hw-'))
const daemons: DaemonProcess[] = []
afterAll(async () => {
  await Promise.all(daemons.map(async d => { await d.stop() }))
  rmSync(dir, { recursive: true, force: true })
})

const run = runCli

interface RecordView { id: string, author: string, body: { hardware: HardwareFingerprint } }
async function records (api: string, author: string): Promise<RecordView[]> {
  const res = await fetch(`${api}/records?author=${author}&limit=1000`)
  return ((await res.json()) as { records: RecordView[] }).records
}

describe('swarmtune start --publish-hardware capability', () => {
  it('own benchmark records carry a capability class, and another peer accepts them', async () => {
    const a = await spawnDaemon({ dataDir: join(dir, 'a'), port: 0, apiPort: 0, timeoutMs: 60_000, args: ['--publish-hardware', 'capability'] })
    daemons.push(a)
    const b = await spawnDaemon({ dataDir: join(dir, 'b'), port: 0, apiPort: 0, timeoutMs: 60_000, bootstrap: [loopbackAddr(a.info)] })
    daemons.push(b)
    const r = await run(['bench', '--api', a.info.api, '--quick', '--methods', 'baseline', '--workloads', 'classify', '--json'])
    expect(r.status).toBe(0)
    const out = JSON.parse(r.stdout) as Array<{ id: string }>
    expect(out.length).toBeGreaterThan(0)

    const cpuModel = cpus()[0]?.model.replace(/\s+/g, ' ').trim() ?? ''
    const mine = await records(a.info.api, a.info.peerId)
    expect(mine.length).toBe(out.length)
    for (const rec of mine) {
      const hw = rec.body.hardware
      expect(hw.cpuModel).toMatch(/^class:/)
      if (cpuModel !== '') expect(JSON.stringify(hw)).not.toContain(cpuModel)
      for (const g of hw.gpus) expect(g.name).toMatch(/^class:/)
      // a power of two (or 0): not this machine's exact RAM
      expect(hw.ramMiB === 0 || Number.isInteger(Math.log2(hw.ramMiB / 1024))).toBe(true)
    }
    // the second peer (default settings) verifies and stores them as they are
    const ids = new Set(out.map(o => o.id))
    await waitFor('the records on the second peer', async () => (await records(b.info.api, a.info.peerId)).filter(x => ids.has(x.id)).length === ids.size, 30_000, 200)
    const there = await records(b.info.api, a.info.peerId)
    expect(there.map(x => x.body.hardware.cpuModel)).toEqual(mine.map(x => x.body.hardware.cpuModel))

    // a bad value is a config error with its path, not a start
    const bad = await run(['start', '--data-dir', join(dir, 'c'), '--publish-hardware', 'none', '--api-port', '0', '--listen', '/ip4/127.0.0.1/tcp/0'])
    expect(bad.status).not.toBe(0)
    expect(bad.stderr).toMatch(/engine\.publishHardware.*E_CONFIG|E_CONFIG.*engine\.publishHardware|invalid config at engine\.publishHardware/)
  }, 240_000)

  it('the background sweep publishes the class too (SWARMTUNE_PUBLISH_HARDWARE)', async () => {
    const c = await spawnDaemon({
      dataDir: join(dir, 'c-bg'),
      port: 0,
      apiPort: 0,
      timeoutMs: 60_000,
      env: {
        SWARMTUNE_PUBLISH_HARDWARE: 'capability',
        SWARMTUNE__bench__background__enabled: 'true',
        SWARMTUNE__bench__background__share: '0.9',
        SWARMTUNE__bench__background__intervalMs: '200',
        SWARMTUNE__bench__repeats: '1',
        SWARMTUNE__engine__defaultModel: 'tiny'
      }
    })
    daemons.push(c)
    const own = await waitFor('a background record', async () => {
      const rs = await records(c.info.api, c.info.peerId)
      return rs.length > 0 ? rs : undefined
    }, 90_000, 250)
    for (const rec of own) {
      expect(rec.body.hardware.cpuModel).toMatch(/^class:/)
      for (const g of rec.body.hardware.gpus) expect(g.name).toMatch(/^class:/)
    }
    // what the dashboard shows as this node is the published class as well
    const status = await (await fetch(`${c.info.api}/status`)).json() as { engine?: { hardware?: { cpuModel: string } } }
    expect(status.engine?.hardware?.cpuModel).toMatch(/^class:/)
  }, 180_000)
})
