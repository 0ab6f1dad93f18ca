import '../src/util/polyfill.js'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createRecord, toWire, verifyWire, synthBodies, RECORD_DOMAIN, withDomain, publicKeyOf, type SignedRecord } from '../src/records/index.js'
import { createRecordStore } from '../src/store/record-store.js'

/*
 * Ingest benchmark: records/s that one node validates (verifyWire: envelope, schema, canonical
 * form, ed25519 signature) and stores, on one core (one JS thread), against the raw ed25519
 * verify rate of the same signatures (the ceiling).
 *   npm run bench:ingest -- [--count 20000] [--authors 10] [--json]
 */
const { values: f } = parseArgs({ options: { count: { type: 'string' }, authors: { type: 'string' }, json: { type: 'boolean' } } })
const count = Number(f.count ?? 20_000)
const nAuthors = Number(f.authors ?? 10)

async function makeWires (): Promise<Uint8Array[]> {
  const authors = await Promise.all(Array.from({ length: nAuthors }, async () => {
    const key = await generateKeyPair('Ed25519')
    return { key, id: peerIdFromPrivateKey(key).toString() }
  }))
  const bodies = synthBodies(count, 7)
  const out: Uint8Array[] = []
  for (let i = 0; i < count; i++) {
    const a = authors[i % nAuthors]
    out.push(toWire(await createRecord(a.key, a.id, Math.floor(i / nAuthors) + 1, bodies[i])))
  }
  return out
}

function rate (n: number, ms: number): number { return Math.round(n / (ms / 1000)) }

async function main (): Promise<void> {
  process.stderr.write(`signing ${count} records from ${nAuthors} authors...\n`)
  const wires = await makeWires()
  const results: Record<string, number> = {}

  // 1. the ceiling: raw ed25519 verification of the same signatures
  const parsed = await Promise.all(wires.map(async w => await verifyWire(w)))
  let t = performance.now()
  for (const r of parsed) {
    if (!await publicKeyOf(r.body.author).verify(withDomain(RECORD_DOMAIN, r.bytes), r.signature)) throw new Error('bad signature')
  }
  results.rawVerifyPerSec = rate(count, performance.now() - t)

  // 2. verifyWire alone (all checks, no storage)
  t = performance.now()
  for (const w of wires) await verifyWire(w)
  results.verifyWirePerSec = rate(count, performance.now() - t)

  const dir = mkdtempSync(join(tmpdir(), 'swarmtune-bench-ingest-'))
  try {
    // 3. verifyWire + store.put one by one (gossip: one message at a time)
    let store = createRecordStore({ path: join(dir, 'one'), maxRecords: 10_000_000 })
    await store.start()
    t = performance.now()
    for (const w of wires) await store.put(await verifyWire(w))
    results.verifyAndPutPerSec = rate(count, performance.now() - t)
    results.recordsStored = (await store.counts()).records
    await store.stop()

    // 4. verifyWire, then store.put without waiting (up to 256 in flight): gossip validators
    // run concurrently, and the store coalesces concurrent puts into one batch
    store = createRecordStore({ path: join(dir, 'concurrent'), maxRecords: 10_000_000 })
    await store.start()
    t = performance.now()
    const inFlight = new Set<Promise<unknown>>()
    for (const w of wires) {
      const p = store.put(await verifyWire(w)).finally(() => inFlight.delete(p))
      inFlight.add(p)
      if (inFlight.size >= 256) await Promise.race(inFlight)
    }
    await Promise.all(inFlight)
    results.verifyAndConcurrentPutPerSec = rate(count, performance.now() - t)
    await store.stop()

    // 5. verifyWire + store.putMany in pages of 256 (sync catch-up)
    store = createRecordStore({ path: join(dir, 'many'), maxRecords: 10_000_000 })
    await store.start()
    t = performance.now()
    for (let i = 0; i < wires.length; i += 256) {
      const page: SignedRecord[] = []
      for (const w of wires.slice(i, i + 256)) page.push(await verifyWire(w))
      await store.putMany(page)
    }
    results.verifyAndPutManyPerSec = rate(count, performance.now() - t)

    // 6. storage alone (records already verified), one by one
    const s3 = createRecordStore({ path: join(dir, 'put'), maxRecords: 10_000_000 })
    await s3.start()
    t = performance.now()
    for (const r of parsed) await s3.put(r)
    results.putOnlyPerSec = rate(count, performance.now() - t)
    await s3.stop()
    await store.stop()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  const share = (k: string): number => Math.round(100 * results[k] / results.rawVerifyPerSec) / 100
  results.sequentialShareOfRawVerify = share('verifyAndPutPerSec')
  results.concurrentShareOfRawVerify = share('verifyAndConcurrentPutPerSec')
  if (f.json === true) {
    process.stdout.write(JSON.stringify({ count, authors: nAuthors, ...results }) + '\n')
  } else {
    for (const [k, v] of Object.entries(results)) process.stdout.write(`${k.padEnd(30)} ${v}\n`)
  }
}

await main()
