import '../src/util/polyfill.js'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createRecord, toWire, verifyWire, synthBodies, RECORD_DOMAIN, withDomain, publicKeyOf, type SignedRecord } from '../src/records/index.js'
import { createRecordStore } from '../src/store/record-store.js'
import { availableParallelism, loadavg } from 'node:os'
import { Worker } from 'node:worker_threads'
import { createIngest } from '../src/net/ingest.js'
import { createVerifyPool, resolveVerifyWorkers } from '../src/net/verify-pool.js'
import { Counters } from '../src/util/counters.js'
import { log } from '../src/util/log.js'
import { mainThreadCpuUs } from './cpu-time.js'

/*
 * Ingest benchmark: records/s that one node validates (verifyWire: envelope, schema, canonical
 * form, ed25519 signature) and stores, on one core (one JS thread), against the raw ed25519
 * verify rate of the same signatures (the ceiling), and with the verification pool of
 * net.verifyWorkers (issue #19: every core verifies, the main thread coordinates and stores), and
 * the store alone (putOnlyPerSec one record per put, putManyOnlyPerSec pages of 256). The pooled
 * paths also report CPU µs per record (pooledCpuUsPerRecord, pooledPagesCpuUsPerRecord: main
 * thread and workers; …MainCpuUsPerRecord: main thread alone), steadier than rates under load,
 * and the ceiling of any pool: the raw verification on every core at once (parallelRawVerifyPerSec;
 * the pooled rates as shares of it: …ShareOfParallelRaw).
 *   npm run bench:ingest -- [--count 20000] [--authors 10] [--workers auto|N] [--json]
 */
const { values: f } = parseArgs({ options: { count: { type: 'string' }, authors: { type: 'string' }, workers: { type: 'string' }, json: { type: 'boolean' } } })
const workers = resolveVerifyWorkers(f.workers == null || f.workers === 'auto' ? 'auto' : Number(f.workers))
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


/**
 * CPU per record of what `fn` does with `n` records: the whole process (main thread and the
 * verify pool's workers) and the main thread alone. Steadier than records/s on a loaded machine.
 */
async function cpuPerRecord (n: number, fn: () => Promise<void>): Promise<{ all: number, main?: number }> {
  const c0 = process.cpuUsage()
  const m0 = mainThreadCpuUs()
  await fn()
  const c = process.cpuUsage(c0)
  const m1 = mainThreadCpuUs()
  const per = (us: number): number => Math.round(10 * us / n) / 10
  return { all: per(c.user + c.system), ...(m0 != null && m1 != null ? { main: per(m1 - m0) } : {}) }
}

/** Raw verification of `wires` split over one worker per core, started together: records/s of all of them. */
async function parallelRawVerify (wires: Uint8Array[], authors: string[]): Promise<number> {
  const n = availableParallelism()
  const url = new URL('./raw-verify-worker.js', import.meta.url)
  const share = Math.ceil(wires.length / n)
  const ws = Array.from({ length: n }, (_, k) => new Worker(url, { workerData: { wires: wires.slice(k * share, (k + 1) * share), authors: authors.slice(k * share, (k + 1) * share) } }))
  try {
    const next = (w: Worker): Promise<unknown> => new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject) })
    await Promise.all(ws.map(next))
    const t = performance.now()
    const done = ws.map(next)
    for (const w of ws) w.postMessage('go')
    await Promise.all(done)
    return rate(wires.length, performance.now() - t)
  } finally {
    await Promise.all(ws.map(async w => await w.terminate()))
  }
}

async function main (): Promise<void> {
  process.stderr.write(`signing ${count} records from ${nAuthors} authors...\n`)
  const wires = await makeWires()
  const results: Record<string, number> = {}

  // 1. the ceiling: raw ed25519 verification of the same signatures
  const parsed = await Promise.all(wires.map(async w => await verifyWire(w)))
  let t = performance.now()
  const cpuRaw = await cpuPerRecord(count, async () => {
    for (const r of parsed) {
      if (!await publicKeyOf(r.body.author).verify(withDomain(RECORD_DOMAIN, r.bytes), r.signature)) throw new Error('bad signature')
    }
  })
  results.rawVerifyPerSec = rate(count, performance.now() - t)
  results.rawVerifyCpuUsPerRecord = cpuRaw.all

  // 1b. the ceiling of any pool: the same raw verification on one thread per core at once (the
  // two cores of a VM do not give twice one core's rate; the goal is a multiple of one core's)
  results.parallelRawVerifyPerSec = await parallelRawVerify(wires, parsed.map(r => r.body.author))

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

    // 7. the pool, gossip path: ingest() per message with the pool as verifier, up to 1024
    // validators in flight (gossipsub runs them concurrently); the store coalesces their puts
    const pool = createVerifyPool({ size: Math.max(1, workers) })
    try {
      // worker start-up is a one-off cost of the daemon, not of ingest
      await Promise.all(wires.slice(0, 4 * pool.size).map(async w => await pool.verify(w)))
      const pooledStore = createRecordStore({ path: join(dir, 'pooled'), maxRecords: 10_000_000 })
      await pooledStore.start()
      const ingest = createIngest({ store: pooledStore, rejections: new Counters(), stats: new Counters(), log: log('bench'), verifier: pool })
      t = performance.now()
      let inserted = 0
      const cpuG = await cpuPerRecord(count, async () => {
        const pending = new Set<Promise<unknown>>()
        for (const w of wires) {
          const p = ingest(w, 'gossip').then(o => { if (o.kind === 'inserted') inserted++ }).finally(() => pending.delete(p))
          pending.add(p)
          if (pending.size >= 1024) await Promise.race(pending)
        }
        await Promise.all(pending)
      })
      results.pooledVerifyAndPutPerSec = rate(count, performance.now() - t)
      results.pooledCpuUsPerRecord = cpuG.all
      if (cpuG.main != null) results.pooledMainCpuUsPerRecord = cpuG.main
      if (inserted !== count) throw new Error(`pooled ingest stored ${inserted} of ${count}`)
      await pooledStore.stop()

      // 8. the pool, sync path: verifyMany() pages of 256, then putMany (store writes stay batched)
      const pageStore = createRecordStore({ path: join(dir, 'pooled-pages'), maxRecords: 10_000_000 })
      await pageStore.start()
      const ingest2 = createIngest({ store: pageStore, rejections: new Counters(), stats: new Counters(), log: log('bench'), verifier: pool })
      t = performance.now()
      const cpuP = await cpuPerRecord(count, async () => {
        let prev: Promise<unknown> = Promise.resolve()
        for (let i = 0; i < wires.length; i += 256) {
          const verdicts = await ingest2.verifyMany(wires.slice(i, i + 256), 'sync')
          await prev
          prev = ingest2.commit(verdicts.flatMap(v => v.kind === 'verified' ? [v.record] : []), 'sync')
        }
        await prev
      })
      results.pooledVerifyManyAndPutManyPerSec = rate(count, performance.now() - t)
      results.pooledPagesCpuUsPerRecord = cpuP.all
      if (cpuP.main != null) results.pooledPagesMainCpuUsPerRecord = cpuP.main
      await pageStore.stop()
    } finally {
      await pool.close()
    }

    // 6. storage alone (records already verified), one by one
    const s3 = createRecordStore({ path: join(dir, 'put'), maxRecords: 10_000_000 })
    await s3.start()
    t = performance.now()
    for (const r of parsed) await s3.put(r)
    results.putOnlyPerSec = rate(count, performance.now() - t)
    await s3.stop()

    // 6b. storage alone in pages of 256 (the bulk path a sync page takes, records already verified)
    const s4 = createRecordStore({ path: join(dir, 'put-many'), maxRecords: 10_000_000 })
    await s4.start()
    t = performance.now()
    for (let i = 0; i < parsed.length; i += 256) await s4.putMany(parsed.slice(i, i + 256))
    results.putManyOnlyPerSec = rate(count, performance.now() - t)
    await s4.stop()
    await store.stop()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  const share = (k: string): number => Math.round(100 * results[k] / results.rawVerifyPerSec) / 100
  results.sequentialShareOfRawVerify = share('verifyAndPutPerSec')
  results.concurrentShareOfRawVerify = share('verifyAndConcurrentPutPerSec')
  results.pooledShareOfRawVerify = share('pooledVerifyAndPutPerSec')
  results.pooledPagesShareOfRawVerify = share('pooledVerifyManyAndPutManyPerSec')
  results.parallelRawShareOfRawVerify = share('parallelRawVerifyPerSec')
  // the pooled paths against what every core can verify at best (the same run)
  const ofParallel = (k: string): number => Math.round(100 * results[k] / results.parallelRawVerifyPerSec) / 100
  results.pooledShareOfParallelRaw = ofParallel('pooledVerifyAndPutPerSec')
  results.pooledPagesShareOfParallelRaw = ofParallel('pooledVerifyManyAndPutManyPerSec')
  // what the pooled paths would reach with every core to themselves: cores × (raw verify CPU ÷
  // pooled CPU per record), from CPU time, which the other jobs of a loaded machine disturb little
  const cpuShare = (k: string): number => Math.round(100 * availableParallelism() * results.rawVerifyCpuUsPerRecord / results[k]) / 100
  results.pooledCpuShareOfRawVerify = cpuShare('pooledCpuUsPerRecord')
  results.pooledPagesCpuShareOfRawVerify = cpuShare('pooledPagesCpuUsPerRecord')
  const machine = { cores: availableParallelism(), workers: Math.max(1, workers), loadavg1: Math.round(loadavg()[0] * 100) / 100 }
  if (f.json === true) {
    process.stdout.write(JSON.stringify({ count, authors: nAuthors, ...machine, ...results }) + '\n')
  } else {
    for (const [k, v] of Object.entries(results)) process.stdout.write(`${k.padEnd(30)} ${v}\n`)
  }
}

await main()
