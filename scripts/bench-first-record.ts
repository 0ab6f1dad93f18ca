import '../src/util/polyfill.js'
import { mkdtempSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { apiGet } from '../src/node/api-client.js'
import { spawnDaemon } from '../src/testbed/processes.js'

/**
 * Issue #17: seconds from `swarmtune start` (a fresh data dir, the real CLI, the background sweep
 * and engine.prepareOnStart at their defaults) to the node's first own benchmark record, with the
 * quick first pass on `tiny` off (bench.background.firstPassModel = null: the sweep before this
 * change) and on (the default), alternating off/on in one run so both see the same load.
 *
 *   node dist/scripts/bench-first-record.js [--pairs 2] [--minutes 5] [--json]
 */
const { values: f } = parseArgs({ options: { pairs: { type: 'string' }, minutes: { type: 'string' }, json: { type: 'boolean' } } })
const pairs = Math.max(1, Number(f.pairs ?? 2))
const limitMs = Number(f.minutes ?? 5) * 60_000

interface Page { records: Array<{ author: string, body: { model: { name: string }, method: { id: string } } }> }

async function once (quick: boolean): Promise<{ quick: boolean, firstRecordS: number | null, model: string | null, method: string | null, load: number }> {
  const root = mkdtempSync(join(tmpdir(), 'swarmtune-first-record-'))
  const env: Record<string, string> = {
    SWARMTUNE__bench__background__enabled: 'true',
    SWARMTUNE__engine__prepareOnStart: 'true',
    ...(quick ? {} : { SWARMTUNE__bench__background__firstPassModel: 'null' })
  }
  const t0 = Date.now()
  const d = await spawnDaemon({ dataDir: join(root, 'p'), port: 0, apiPort: 0, env, timeoutMs: 180_000 })
  try {
    while (Date.now() - t0 < limitMs) {
      const page = await apiGet<Page>(d.info.api, `/records?author=${d.info.peerId}&source=benchmark&limit=1`)
      const r = page.records[0]
      if (r != null) return { quick, firstRecordS: Math.round((Date.now() - t0) / 100) / 10, model: r.body.model.name, method: r.body.method.id, load: loadavg()[0] }
      await new Promise(resolve => setTimeout(resolve, 500))
    }
    return { quick, firstRecordS: null, model: null, method: null, load: loadavg()[0] }
  } finally {
    await d.stop()
    rmSync(root, { recursive: true, force: true })
  }
}

const load0 = loadavg()[0]
const runs = []
for (let i = 0; i < pairs; i++) {
  runs.push(await once(false))
  runs.push(await once(true))
}
const out = { pairs, loadavg1Start: load0, loadavg1End: loadavg()[0], runs }
if (f.json === true) process.stdout.write(JSON.stringify(out) + '\n')
else {
  process.stdout.write(`time to the first own benchmark record, fresh data dir, defaults; load ${load0.toFixed(1)} → ${out.loadavg1End.toFixed(1)}\n`)
  for (const r of runs) process.stdout.write(`  quick first pass ${r.quick ? 'on (tiny)' : 'off'}: ${r.firstRecordS ?? `none within ${f.minutes ?? 5} min`} s (${r.model ?? '-'} / ${r.method ?? '-'}, load ${r.load.toFixed(1)})\n`)
}
