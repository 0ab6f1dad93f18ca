import '../src/util/polyfill.js'
import { mkdtempSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createRecord, synthBodies, toWire, verifyWire, type SignedRecord } from '../src/records/index.js'
import { createRecordStore } from '../src/store/record-store.js'
import { createIngest } from '../src/net/ingest.js'
import { UncheckedChecker } from '../src/net/sync-v2.js'
import { Counters } from '../src/util/counters.js'
import { log } from '../src/util/log.js'

/*
 * What sync 2.0.0's unchecked marks cost (docs/records.md, "Records taken in through a head are
 * checked on their own"), in one process on a real LevelDB store, so load drift hits both sides:
 * pages of records stored as a 2.0.0 client stores a page of attested records (a batch of marks,
 * then the records) alternate with pages stored as before (the records only); then the background
 * check of every marked record, against a raw signature check of the same records.
 *
 *   node dist/scripts/bench-sync-marks.js [--pages 40] [--page-size 256] [--authors 100] [--json]
 */
function arg (name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? Number(process.argv[i + 1]) : dflt
}

async function main (): Promise<void> {
  const pages = arg('pages', 40)
  const pageSize = arg('page-size', 256)
  const authors = arg('authors', 100)
  const json = process.argv.includes('--json')
  const keys = await Promise.all(Array.from({ length: authors }, async () => await generateKeyPair('Ed25519')))
  const ids = keys.map(k => peerIdFromPrivateKey(k).toString())
  const bodies = synthBodies(5000, 42)
  const recs: SignedRecord[] = []
  for (let i = 0; i < pages * pageSize; i++) recs.push(await createRecord(keys[i % authors], ids[i % authors], Math.floor(i / authors) + 1, bodies[i % bodies.length]))
  const dir = mkdtempSync(join(tmpdir(), 'swarmtune-bench-marks-'))
  const store = createRecordStore({ path: join(dir, 'store'), maxRecords: 10_000_000 })
  await store.start()
  const load = [loadavg()[0]]
  try {
    const ms = { plain: 0, marked: 0 }
    for (let p = 0; p < pages; p++) {
      const page = recs.slice(p * pageSize, (p + 1) * pageSize)
      const mode = p % 2 === 0 ? 'plain' : 'marked'
      const t = performance.now()
      if (mode === 'marked') await store.markUnchecked!(page)
      await store.putMany(page)
      ms[mode] += performance.now() - t
    }
    const marked = Math.floor(pages / 2) * pageSize
    const raw = async (): Promise<number> => {
      const sample = recs.slice(0, 2000).map(toWire)
      const t = performance.now()
      for (const w of sample) await verifyWire(w)
      return sample.length / ((performance.now() - t) / 1000)
    }
    const rawBefore = await raw()
    const stats = new Counters()
    const rejections = new Counters()
    const c = { store, stats, rejections, log: log('bench'), guard: {}, ingest: createIngest({ store, rejections, stats, log: log('bench') }) }
    const t = performance.now()
    await new UncheckedChecker(c).kick()
    const checkMs = performance.now() - t
    const rawAfter = await raw()
    load.push(loadavg()[0])
    const out = {
      pages,
      pageSize,
      msPerPagePlain: ms.plain / Math.ceil(pages / 2),
      msPerPageMarked: ms.marked / Math.floor(pages / 2),
      markedOverPlain: (ms.marked / Math.floor(pages / 2)) / (ms.plain / Math.ceil(pages / 2)),
      checked: stats.get('syncUncheckedVerified'),
      checkPerSecond: marked / (checkMs / 1000),
      rawVerifyPerSecond: (rawBefore + rawAfter) / 2,
      loadavg1: load
    }
    if (json) process.stdout.write(JSON.stringify(out) + '\n')
    else {
      process.stdout.write(`store a page of ${pageSize}: ${out.msPerPagePlain.toFixed(1)} ms plain, ${out.msPerPageMarked.toFixed(1)} ms with marks (${out.markedOverPlain.toFixed(2)}x)\n`)
      process.stdout.write(`background check: ${out.checked} records at ${out.checkPerSecond.toFixed(0)}/s, raw verify ${out.rawVerifyPerSecond.toFixed(0)}/s (load ${load.map(l => l.toFixed(1)).join(' → ')})\n`)
    }
  } finally {
    await store.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

main().catch((err: unknown) => { process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`); process.exit(1) })
