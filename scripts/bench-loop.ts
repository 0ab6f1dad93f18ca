import '../src/util/polyfill.js'
import { mkdtempSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { apiGet } from '../src/node/api-client.js'
import { loopbackAddr, spawnDaemon, type DaemonProcess } from '../src/testbed/processes.js'

/**
 * Issue #17's first goal, measured: N fresh daemons started through the real CLI (`swarmtune
 * start`, separate processes) with only a data dir, ports and (all but the first) the first one's
 * address as bootstrap, and the background sweep at its DEFAULTS (on; the testbed turns it off
 * for every other test and benchmark). Reports, per daemon, the seconds from the start of all
 * daemons until (a) its first own benchmark record, (b) its store holds benchmark records of
 * every author, (c) it has a trained meta-model snapshot. Bounded by --minutes.
 *
 *   node dist/scripts/bench-loop.js [--peers 3] [--minutes 6] [--model small|tiny] [--json]
 */
const { values: f } = parseArgs({ options: { peers: { type: 'string' }, minutes: { type: 'string' }, model: { type: 'string' }, json: { type: 'boolean' } } })
const peers = Math.max(2, Number(f.peers ?? 3))
const deadline = Date.now() + Number(f.minutes ?? 6) * 60_000

interface Status { peerId: string, snapshot: { rows: number } | null, bench?: { background?: { cellsDone: number, spentShare: number, phase: string } } }
interface Page { records: Array<{ author: string }> }

const root = mkdtempSync(join(tmpdir(), 'swarmtune-bench-loop-'))
const daemons: DaemonProcess[] = []
const load0 = loadavg()[0]
// the sweep at its defaults: only the model may be chosen (the default is `small`)
const env: Record<string, string> = { SWARMTUNE__bench__background__enabled: 'true', ...(f.model != null ? { SWARMTUNE__engine__defaultModel: f.model } : {}) }
const t0 = Date.now()
try {
  const first = await spawnDaemon({ dataDir: join(root, 'p0'), port: 0, apiPort: 0, env, timeoutMs: 120_000 })
  daemons.push(first)
  for (let i = 1; i < peers; i++) daemons.push(await spawnDaemon({ dataDir: join(root, `p${i}`), port: 0, apiPort: 0, env, bootstrap: [loopbackAddr(first.info)], timeoutMs: 120_000 }))
  const authors = daemons.map(d => d.info.peerId)
  const firstOwn = new Map<string, number>()
  const allAuthors = new Map<string, number>()
  const snapshot = new Map<string, number>()
  const secs = (): number => Math.round((Date.now() - t0) / 100) / 10
  while (Date.now() < deadline && (allAuthors.size < peers || snapshot.size < peers)) {
    for (const d of daemons) {
      const id = d.info.peerId
      const holds = await Promise.all(authors.map(async a => (await apiGet<Page>(d.info.api, `/records?author=${a}&source=benchmark&limit=1`)).records.length > 0))
      if (holds[authors.indexOf(id)] && !firstOwn.has(id)) firstOwn.set(id, secs())
      if (holds.every(Boolean) && !allAuthors.has(id)) allAuthors.set(id, secs())
      const s = await apiGet<Status>(d.info.api, '/status')
      if (s.snapshot != null && !snapshot.has(id)) snapshot.set(id, secs())
    }
    await new Promise(resolve => setTimeout(resolve, 2000))
  }
  const rows = await Promise.all(daemons.map(async (d, i) => {
    const s = await apiGet<Status>(d.info.api, '/status')
    const id = d.info.peerId
    return { peer: i, firstOwnRecordS: firstOwn.get(id) ?? null, allAuthorsS: allAuthors.get(id) ?? null, snapshotS: snapshot.get(id) ?? null, snapshotRows: s.snapshot?.rows ?? null, background: s.bench?.background ?? null }
  }))
  const out = { peers, model: f.model ?? 'small (default)', loadavg1Start: load0, loadavg1End: loadavg()[0], rows }
  if (f.json === true) process.stdout.write(JSON.stringify(out) + '\n')
  else {
    process.stdout.write(`peers ${peers}, model ${out.model}, load ${load0.toFixed(1)} → ${out.loadavg1End.toFixed(1)}\n`)
    for (const r of rows) process.stdout.write(`peer ${r.peer}: first own record ${r.firstOwnRecordS ?? '-'} s, records of all authors ${r.allAuthorsS ?? '-'} s, snapshot ${r.snapshotS ?? '-'} s (${r.snapshotRows ?? '-'} rows), sweep ${JSON.stringify(r.background)}\n`)
  }
} finally {
  await Promise.all(daemons.map(async d => { await d.stop() }))
  rmSync(root, { recursive: true, force: true })
}
