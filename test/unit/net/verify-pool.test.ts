import { afterEach, describe, expect, it } from 'vitest'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createRecord, leafHash, leafOf, synthBodies, toWire, verifyWire } from '../../../src/records/index.js'
import { createIngest } from '../../../src/net/ingest.js'
import { createReceiveCheck } from '../../../src/net/sync.js'
import type { SignedRecord } from '../../../src/records/types.js'
import { createVerifyPool, resolveVerifyWorkers, verifyWorkerPath, VerifyErrorCode, type VerifyPool } from '../../../src/net/verify-pool.js'
import { Counters } from '../../../src/util/counters.js'
import { log } from '../../../src/util/log.js'
import { createMemoryStore } from '../../helpers/memory-store.js'

/*
 * The verification pool runs the compiled worker (dist/src/net/verify-worker.js): `npm test`
 * builds first; after `vitest run test/unit` alone, run `npm run build` once.
 */
const pools: VerifyPool[] = []
const dirs: string[] = []
afterEach(async () => {
  await Promise.all(pools.splice(0).map(async p => { await p.close() }))
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

function pool (opts: Partial<Parameters<typeof createVerifyPool>[0]> = {}): VerifyPool {
  const p = createVerifyPool({ size: 2, ...opts })
  pools.push(p)
  return p
}

async function wires (n: number, firstSeq = 1): Promise<{ author: string, wires: Uint8Array[] }> {
  const key = await generateKeyPair('Ed25519')
  const author = peerIdFromPrivateKey(key).toString()
  const bodies = synthBodies(n, 5)
  const out: Uint8Array[] = []
  for (let i = 0; i < n; i++) out.push(toWire(await createRecord(key, author, firstSeq + i, bodies[i])))
  return { author, wires: out }
}

/** sync's receive check for one author, recording the seqs it was called with */
function createReceiveCheckFor (author: string, head: number, seen: number[]): (r: SignedRecord) => void {
  const check = createReceiveCheck(new Map([[author, head]]))
  return (r) => { seen.push(r.body.seq); check(r) }
}

/** flip one signature byte: same body, a signature that does not verify */
function forge (wire: Uint8Array): Uint8Array {
  const w = Uint8Array.from(wire)
  w[5] ^= 1
  return w
}

describe('resolveVerifyWorkers (net.verifyWorkers)', () => {
  it("'auto' and unset are one per core, at least one; numbers are taken as they are, 0 = inline", () => {
    expect(resolveVerifyWorkers('auto', 2)).toBe(2)
    expect(resolveVerifyWorkers(undefined, 8)).toBe(8)
    expect(resolveVerifyWorkers('auto', 0)).toBe(1)
    expect(resolveVerifyWorkers(0, 8)).toBe(0)
    expect(resolveVerifyWorkers(3, 8)).toBe(3)
  })
})

describe('verification pool', () => {
  it('needs the compiled worker', () => {
    expect(existsSync(verifyWorkerPath()), 'run npm run build').toBe(true)
  })

  it('verifies a batch on the workers: each caller gets its own verdict; a forged record rejects only itself', async () => {
    const p = pool()
    const { wires: ws } = await wires(40)
    ws[17] = forge(ws[17])
    const settled = await Promise.allSettled(ws.map(async w => await p.verify(w)))
    settled.forEach((s, i) => {
      if (i === 17) {
        expect(s.status).toBe('rejected')
        expect((s as PromiseRejectedResult).reason.code).toBe('E_BAD_SIGNATURE')
      } else {
        expect(s.status, `record ${i}`).toBe('fulfilled')
      }
    })
    // the records are exactly what verifyWire makes of the same bytes, in the caller's order
    for (const i of [0, 16, 18, 39]) {
      const r = (settled[i] as PromiseFulfilledResult<Awaited<ReturnType<typeof verifyWire>>>).value
      const direct = await verifyWire(ws[i])
      expect(r.id).toBe(direct.id)
      expect(r.body).toEqual(direct.body)
      expect(Buffer.from(r.signature).equals(Buffer.from(direct.signature))).toBe(true)
      expect(r.body.seq).toBe(i + 1)
    }
    // garbage is refused with its validation code, like verifyWire
    await expect(p.verify(Uint8Array.of(1, 2, 3))).rejects.toMatchObject({ code: 'E_MALFORMED' })
    const st = p.stats()
    expect(st.verified).toBe(41)
    expect(st.batches).toBeGreaterThanOrEqual(2)
    expect(st.crashes).toBe(0)
  })

  it('answers each record with the leaf of the bytes it checked; the record owns a copy of them, toWire gives them back', async () => {
    const p = pool()
    const { wires: ws } = await wires(12)
    const original = ws.map(w => Uint8Array.from(w))
    const records = await Promise.all(ws.map(async (w, i) => await (i % 2 === 0 ? p.verify(w) : p.check(w))))
    // the caller's buffers change after the verdict (a reused network buffer): the records do not
    for (const w of ws) w.fill(0)
    records.forEach((r, i) => {
      expect(Buffer.from(toWire(r)).equals(Buffer.from(original[i])), `wire ${i}`).toBe(true)
      expect(Buffer.from(leafOf(r)).equals(Buffer.from(leafHash(original[i]))), `leaf ${i}`).toBe(true)
      expect(Buffer.from(r.bytes).equals(Buffer.from(original[i].subarray(65)))).toBe(true)
      expect(r.body.seq).toBe(i + 1)
    })
    // records made elsewhere (no worker behind them) still get the leaf of their wire
    const direct = await verifyWire(original[3])
    expect(Buffer.from(leafOf(direct)).equals(Buffer.from(leafHash(original[3])))).toBe(true)
  })

  it('sends the records that arrive within one turn of the event loop as one batch per worker, not one message per record', async () => {
    const p = pool()
    const { wires: ws } = await wires(100)
    const pending: Array<Promise<SignedRecord>> = []
    // as a sync page is read: one record per microtask, all in the same turn
    for (const w of ws) { pending.push(p.check(w)); await Promise.resolve() }
    const records = await Promise.all(pending)
    expect(records.map(r => r.body.seq)).toEqual(ws.map((_, i) => i + 1))
    // both workers idle: the 100 records split in two batches of 50
    expect(p.stats().batches).toBe(2)
  })

  it('sheds load over maxQueued with E_VERIFY_BUSY instead of queueing without bound', async () => {
    const p = pool({ size: 1, maxQueued: 4 })
    const { wires: ws } = await wires(12)
    const settled = await Promise.allSettled(ws.map(async w => await p.verify(w)))
    const busy = settled.filter(s => s.status === 'rejected' && (s.reason as { code: string }).code === VerifyErrorCode.BUSY).length
    expect(busy).toBeGreaterThan(0)
    expect(settled.filter(s => s.status === 'fulfilled').length).toBe(12 - busy)
  })

  it('survives a worker crash: the in-flight batch fails as retry (never accepted), the worker is replaced, the next batch verifies', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'swarmtune-verify-crash-'))
    dirs.push(dir)
    // a worker that dies on the first batch it ever gets (once: a marker file), otherwise the real one
    const marker = join(dir, 'crashed')
    const script = join(dir, 'crashing-worker.mjs')
    writeFileSync(script, [
      "import { parentPort } from 'node:worker_threads'",
      "import { existsSync, writeFileSync } from 'node:fs'",
      `const marker = ${JSON.stringify(marker)}`,
      // the real worker first (its listener must see every message), then the crash: the real
      // one answers on a later tick, so the exit comes before its reply
      `await import(${JSON.stringify(pathToFileURL(verifyWorkerPath()).href)})`,
      "parentPort.once('message', () => { if (!existsSync(marker)) { writeFileSync(marker, ''); process.exit(7) } })"
    ].join('\n'))
    const crashes: unknown[] = []
    const p = pool({ size: 1, workerPath: script, onCrash: err => { crashes.push(err) } })
    const { wires: ws } = await wires(10)
    const first = await Promise.allSettled(ws.slice(0, 5).map(async w => await p.verify(w)))
    for (const s of first) {
      expect(s.status).toBe('rejected')
      expect((s as PromiseRejectedResult).reason.code).toBe(VerifyErrorCode.RETRY)
    }
    expect(crashes.length).toBe(1)
    // the replacement verifies; the retried records pass now
    const again = await Promise.all(ws.map(async w => await p.verify(w)))
    expect(again.map(r => r.body.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    const st = p.stats()
    expect(st.crashes).toBe(1)
    expect(st.restarts).toBe(1)
    expect(st.retried).toBe(5)
    expect(st.workers).toBe(1)
  })

  it('close() fails what waits as retry', async () => {
    const p = pool({ size: 1 })
    const { wires: ws } = await wires(30)
    const pending = Promise.allSettled(ws.map(async w => await p.verify(w)))
    await p.close()
    const settled = await pending
    expect(settled.every(s => s.status === 'rejected' && (s.reason as { code: string }).code === VerifyErrorCode.RETRY)).toBe(true)
    await expect(p.verify(ws[0])).rejects.toMatchObject({ code: VerifyErrorCode.RETRY })
  })
})

describe('ingest on the pool', () => {
  it('verifyMany: checks run in send order, a forged record is rejected and counted, a crash is ignored (not charged), the rest stored', async () => {
    const p = pool()
    const store = createMemoryStore()
    const rejections = new Counters()
    const stats = new Counters()
    const ingest = createIngest({ store, rejections, stats, log: log('test'), verifier: p })
    const { author, wires: ws } = await wires(30)
    ws[9] = forge(ws[9])
    const checked: number[] = []
    const check = createReceiveCheckFor(author, 0, checked)
    const verdicts = await ingest.verifyMany(ws, 'sync', { check })
    expect(verdicts.map(v => v.kind)).toEqual(ws.map((_, i) => i === 9 ? 'rejected' : 'verified'))
    expect((verdicts[9] as { code: string }).code).toBe('E_BAD_SIGNATURE')
    // the order rule saw every verified record, in the order sent, although two workers answered
    expect(checked).toEqual(ws.map((_, i) => i + 1).filter(s => s !== 10))
    expect(rejections.get('E_BAD_SIGNATURE')).toBe(1)
    expect(stats.get('syncReceived')).toBe(30)
    expect(stats.get('syncRejected')).toBe(1)
    const out = await ingest.commit(verdicts.flatMap(v => v.kind === 'verified' ? [v.record] : []), 'sync')
    expect(out.every(o => o.kind === 'inserted')).toBe(true)
    expect((await store.counts()).records).toBe(29)

    // one record through the gossip entry point
    const { wires: more } = await wires(1)
    expect((await ingest(more[0], 'gossip')).kind).toBe('inserted')
    await p.close()
    // a record the pool could not verify (closed, crashed) is ignored: not stored, not blamed
    const { wires: late } = await wires(1)
    const o = await ingest(late[0], 'gossip')
    expect(o).toEqual({ kind: 'ignored', code: VerifyErrorCode.RETRY })
    expect(stats.get('gossipIgnored')).toBe(1)
  })
})

describe('verification pool: body checks only (sync 2.0.0 run records)', () => {
  it('check() runs every check but the signature on a worker; verify() in the same batches still checks signatures', async () => {
    const p = pool()
    const { wires: ws } = await wires(6)
    const badSig = Uint8Array.from(ws[1]); badSig[5] ^= 1
    const garbage = Uint8Array.from(ws[2]); garbage[garbage.length - 1] = 0x20
    const [a, b, c, d] = await Promise.allSettled([p.check(ws[0]), p.check(badSig), p.check(garbage), p.verify(badSig)])
    expect(a.status === 'fulfilled' && a.value.body.seq).toBe(1)
    // the signature is not looked at: a log head vouches for these bytes
    expect(b.status === 'fulfilled' && b.value.body.seq).toBe(2)
    expect(c.status === 'rejected' && (c.reason as { code: string }).code).toBe('E_MALFORMED')
    expect(d.status === 'rejected' && (d.reason as { code: string }).code).toBe('E_BAD_SIGNATURE')
  })
})
