import { describe, it, expect, afterAll } from 'vitest'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { cliPath } from '../../src/util/paths.js'
import { loopbackAddr, spawnDaemon, type DaemonProcess } from '../../src/testbed/processes.js'
import { waitFor } from '../../src/util/wait.js'
import { runCli } from '../helpers/cli.js'
import { parsePrometheus } from '../helpers/prometheus.js'

/*
 * The bench service as a user meets it: daemons started through the real CLI (`swarmtune start`,
 * separate processes), `swarmtune bench --api` against one of them, the records signed by that
 * daemon and gossiped to a second one; and the background sweep producing own records on an
 * idle daemon. Real llama.cpp engine, embedded tiny model, real LevelDB. Needs `npm run build`.
 */
const dir = mkdtempSync(join(tmpdir(), 'swarmtune-bench-daemon-'))
const daemons: DaemonProcess[] = []
afterAll(async () => {
  await Promise.all(daemons.map(async d => { await d.stop() }))
  rmSync(dir, { recursive: true, force: true })
})

async function start (name: string, opts: { bootstrap?: string[], env?: Record<string, string> } = {}): Promise<DaemonProcess> {
  const d = await spawnDaemon({ dataDir: join(dir, name), port: 0, apiPort: 0, timeoutMs: 60_000, ...opts })
  daemons.push(d)
  return d
}

const run = runCli

interface RecordView { id: string, author: string, source: string, body: { method: { id: string } } }
async function records (api: string, author: string): Promise<RecordView[]> {
  const res = await fetch(`${api}/records?author=${author}&limit=1000`)
  return ((await res.json()) as { records: RecordView[] }).records
}

describe('swarmtune start + swarmtune bench --api', () => {
  it('the daemon runs the benchmark, signs the records, stores and gossips them', async () => {
    const a = await start('a')
    const b = await start('b', { bootstrap: [loopbackAddr(a.info)] })
    const r = await run(['bench', '--api', a.info.api, '--model', 'tiny', '--scale', 'tiny', '--methods', 'baseline,chunked-prefill', '--workloads', 'classify', '--repeats', '1', '--json'])
    expect(r.stderr).not.toMatch(/swarmtune: /)
    expect(r.status).toBe(0)
    const out = JSON.parse(r.stdout) as Array<{ id: string, method: string, ok: boolean }>
    expect(out.map(o => [o.method, o.ok])).toEqual([['baseline', true], ['chunked-prefill', true]])
    expect(r.stderr).toMatch(/bench \d+\/\d+ /) // progress lines (not a TTY), streamed from the daemon

    const stored = await records(a.info.api, a.info.peerId)
    for (const o of out) {
      const rec = stored.find(x => x.id === o.id)
      expect(rec?.author).toBe(a.info.peerId)
      expect(rec?.source).toBe('benchmark')
    }
    // gossiped (or synced) to the other peer, author unchanged
    const ids = new Set(out.map(o => o.id))
    await waitFor('records on the second peer', async () => (await records(b.info.api, a.info.peerId)).filter(x => ids.has(x.id)).length === ids.size, 30_000, 200)
    const status = await (await fetch(`${a.info.api}/status`)).json() as { bench?: { running: boolean, background: { enabled: boolean } } }
    // spawnDaemon turns the (default-on) background sweep off: tests must not be disturbed by it
    expect(status.bench).toEqual({ running: false, background: { enabled: false, running: false, cell: null, phase: 'off', spentShare: 0, cellsDone: 0, lastError: null } })

    // /metrics of a daemon started through the CLI: libp2p's, gossipsub's and the services' families
    const families = parsePrometheus(await (await fetch(`${a.info.api}/metrics`)).text())
    const type = (name: string): string | undefined => families.get(name)?.type
    expect(type('libp2p_data_transfer_bytes_total')).toBe('counter')
    expect([...families.keys()].some(n => n.startsWith('gossipsub_'))).toBe(true)
    expect(type('process_cpu_seconds_total')).toBe('counter')
    expect(type('swarmtune_serving_batches_total')).toBe('counter')
    expect(type('swarmtune_serving_time_to_first_token_seconds')).toBe('histogram')
    expect(type('swarmtune_serving_method_chosen_total')).toBe('counter')
    expect(type('swarmtune_serving_queue_depth')).toBe('gauge')
    expect(type('swarmtune_meta_training_seconds')).toBe('histogram')
    expect(families.get('swarmtune_bench_runs_total')?.samples).toEqual([{ name: 'swarmtune_bench_runs_total', labels: { outcome: 'ok' }, value: 1 }])
    expect(families.get('swarmtune_net_events_total')?.samples.find(x => x.labels.event === 'gossip_published')?.value).toBeGreaterThanOrEqual(1)

    // the data dir belongs to the running daemon: a standalone bench there is refused with a hint
    const locked = await run(['bench', '--data-dir', a.info.dataDir, '--model', 'tiny', '--scale', 'tiny', '--methods', 'baseline', '--workloads', 'classify'])
    expect(locked.status).toBe(1)
    expect(locked.stderr).toContain('E_DATA_DIR_LOCKED')
    expect(locked.stderr).toContain('--api')
  })

  it('Ctrl-C during bench --api stops the daemon\'s run and prints what it stored (issue #20)', async () => {
    const d = await start('interrupt')
    const child = spawn(process.execPath, [cliPath(), 'bench', '--api', d.info.api, '--quick', '--json'], { env: { ...process.env } })
    let stdout = ''
    let total = 0
    child.stdout.on('data', b => { stdout += String(b) })
    child.stderr.on('data', b => { const m = /bench \d+\/(\d+)/.exec(String(b)); if (m != null) total = Number(m[1]) })
    const exited = new Promise(resolve => { child.once('exit', (c, sig) => { resolve(c ?? sig) }) })
    // the first stored cell: the daemon's engine is loaded and measuring
    await waitFor('a first stored benchmark record', async () => (await records(d.info.api, d.info.peerId)).some(r => r.source === 'benchmark'), 60_000, 100)
    child.kill('SIGINT')
    const code = await exited
    expect(code).toBe(0)
    const out = JSON.parse(stdout) as Array<{ id: string, method: string }>
    expect(out.length).toBeGreaterThan(0)
    expect(out.length).toBeLessThan(total)
    // every printed result is a record the daemon stored, and the daemon's run has stopped
    const stored = new Set((await records(d.info.api, d.info.peerId)).map(r => r.id))
    for (const o of out) expect(stored.has(o.id)).toBe(true)
    await waitFor('the daemon\'s run to stop', async () => ((await (await fetch(`${d.info.api}/status`)).json()) as { bench: { running: boolean } }).bench.running === false, 30_000, 200)
    // nothing after the interruption: the stored benchmark records are the ones printed
    const after = (await records(d.info.api, d.info.peerId)).filter(r => r.source === 'benchmark')
    expect(after.length).toBe(out.length)
  })

  it('bench.background.enabled: an idle daemon measures itself and stores own benchmark records', async () => {
    const c = await start('c', {
      env: {
        SWARMTUNE__bench__background__enabled: 'true',
        SWARMTUNE__bench__background__share: '0.9',
        SWARMTUNE__bench__background__intervalMs: '200',
        SWARMTUNE__bench__repeats: '1',
        SWARMTUNE__engine__defaultModel: 'tiny'
      }
    })
    const own = await waitFor('a background record', async () => {
      const rs = (await records(c.info.api, c.info.peerId)).filter(x => x.source === 'benchmark')
      return rs.length > 0 ? rs : undefined
    }, 90_000, 250)
    expect(own[0].author).toBe(c.info.peerId)
    // the quick first pass comes first: the baseline on a tiny-scale workload
    expect(own[0].body.method.id).toBe('baseline')
    const status = await (await fetch(`${c.info.api}/status`)).json() as { bench: { background: { enabled: boolean, cells: number, cellsDone: number, spentShare: number, phase: string } } }
    expect(status.bench.background.enabled).toBe(true)
    expect(status.bench.background.cells).toBeGreaterThan(0)
    expect(status.bench.background.cellsDone).toBeGreaterThan(0)
    expect(status.bench.background.spentShare).toBeGreaterThan(0)
    expect(['first-pass', 'explore']).toContain(status.bench.background.phase)
    // the human status shows what the sweep is doing and what it has cost
    const human = await run(['status', '--api', c.info.api])
    expect(human.status).toBe(0)
    expect(human.stdout).toMatch(/^background \S.* \d+ cells, .* % of wall time/m)
  })
})
