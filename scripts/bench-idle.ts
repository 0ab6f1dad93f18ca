import '../src/util/polyfill.js'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { spawnDaemon, type DaemonProcess } from '../src/testbed/processes.js'
import { waitFor } from '../src/util/wait.js'

/*
 * Idle daemon memory: start `swarmtune start` as its own process (plus one peer connected to it,
 * so gossip and sync are live), wait, and read its resident set size from /proc.
 *   npm run bench:idle -- [--seconds 30] [--json]
 */
const { values: f } = parseArgs({ options: { seconds: { type: 'string' }, json: { type: 'boolean' } } })
const seconds = Number(f.seconds ?? 30)

function rssMiB (pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (m == null) throw new Error('no VmRSS in /proc (Linux only)')
  return Math.round(Number(m[1]) / 1024 * 10) / 10
}

const dir = mkdtempSync(join(tmpdir(), 'swarmtune-bench-idle-'))
const daemons: DaemonProcess[] = []
try {
  const node = await spawnDaemon({ dataDir: join(dir, 'node'), port: 0, apiPort: 0 })
  daemons.push(node)
  const peer = await spawnDaemon({ dataDir: join(dir, 'peer'), port: 0, apiPort: 0, bootstrap: [node.info.addresses[0]] })
  daemons.push(peer)
  await waitFor('the peer to connect', async () => ((await (await fetch(`${node.info.api}/status`)).json()) as { peers: number }).peers >= 1)
  const atStart = rssMiB(node.proc.pid!)
  process.stderr.write(`daemon started (RSS ${atStart} MiB); idling ${seconds} s...\n`)
  await new Promise(resolve => setTimeout(resolve, seconds * 1000))
  const result = { seconds, rssAtStartMiB: atStart, rssIdleMiB: rssMiB(node.proc.pid!), peers: 1 }
  process.stdout.write(f.json === true ? JSON.stringify(result) + '\n' : `idle daemon RSS after ${seconds} s: ${result.rssIdleMiB} MiB (at start ${atStart} MiB)\n`)
} finally {
  await Promise.all(daemons.map(async d => { await d.stop() }))
  rmSync(dir, { recursive: true, force: true })
}
