import { mkdtempSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createHash, randomBytes } from 'node:crypto'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { synthBodies } from '../src/records/index.js'
import type { SignedRecord } from '../src/records/index.js'
import type { RecordStore } from '../src/store/types.js'
import type { RecordStoreInit } from '../src/store/record-store.js'

/*
 * The store's write path alone (issue #19, bulk write path): records/s and process CPU µs per
 * record (main thread plus LevelDB's threads; less sensitive to a loaded machine than wall time)
 * for single puts and pages of 256. Records carry a random 64-byte "signature": the store does
 * not verify. `--store` loads createRecordStore from another build (a checkout of an older
 * commit, built), so the same records are written by both in one run:
 *   node dist/scripts/bench-store.js [--count 10000] [--store /tmp/base/dist/src/store/record-store.js] [--json]
 */
const { values: f } = parseArgs({ options: { count: { type: 'string' }, store: { type: 'string' }, json: { type: 'boolean' } } })
const count = Number(f.count ?? 10_000)
type Create = (init: RecordStoreInit) => RecordStore
const { createRecordStore } = await import(f.store != null ? pathToFileURL(resolve(f.store)).href : '../src/store/record-store.js') as { createRecordStore: Create }

const bodies = synthBodies(500, 3)
const authors = Array.from({ length: 10 }, (_, i) => '12D3KooW' + createHash('sha256').update(String(i)).digest('base64url').slice(0, 44))
const records: SignedRecord[] = []
for (let i = 0; i < count; i++) {
  const body = { v: 1, ...bodies[i % bodies.length], author: authors[i % 10], seq: Math.floor(i / 10) + 1, timestamp: Date.now() }
  const bytes = new TextEncoder().encode(JSON.stringify(body))
  records.push({ id: createHash('sha256').update(bytes).digest('hex'), body, bytes, signature: randomBytes(64) })
}
const dir = mkdtempSync(join(tmpdir(), 'swarmtune-bench-store-'))
const out: Record<string, number | string> = { count, store: f.store ?? 'this build', loadavg1: Math.round(loadavg()[0] * 100) / 100 }
try {
  for (const mode of ['put', 'putMany'] as const) {
    const s = createRecordStore({ path: join(dir, mode), maxRecords: 1e9 })
    await s.start()
    const t = performance.now()
    const cpu = process.cpuUsage()
    if (mode === 'put') for (const r of records) await s.put(r)
    else for (let i = 0; i < count; i += 256) await s.putMany(records.slice(i, i + 256))
    const used = process.cpuUsage(cpu)
    out[`${mode}PerSec`] = Math.round(count / ((performance.now() - t) / 1000))
    out[`${mode}CpuUsPerRecord`] = Math.round((used.user + used.system) / count)
    await s.stop()
  }
} finally {
  rmSync(dir, { recursive: true, force: true })
}
process.stdout.write(f.json === true ? JSON.stringify(out) + '\n' : Object.entries(out).map(([k, v]) => `${k.padEnd(24)} ${v}`).join('\n') + '\n')
