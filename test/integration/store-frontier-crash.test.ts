import { describe, it, expect, afterAll } from 'vitest'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { Level } from 'level'
import { frontierRoot, leafHash, merkleRoot, toHex, toWire } from '../../src/records/index.js'
import { createRecordStore } from '../../src/store/record-store.js'

/*
 * Crash safety of the lazily stored Merkle frontiers (issue #19): a separate process writes
 * records of several authors into a real LevelDB store (pages, single puts, out of order),
 * reports the frontier root of each author once every put is acknowledged, and is killed with
 * SIGKILL. The store reopened here must give every author the frontier of its stored log
 * 1..head, equal to a from-scratch computation, though the stored ones lagged.
 * Build first: `npx tsc -p .` (the child runs dist/).
 */
const root = mkdtempSync(join(tmpdir(), 'swarmtune-frontier-crash-'))
afterAll(() => { rmSync(root, { recursive: true, force: true }) })

const dist = (p: string): string => pathToFileURL(resolve('dist', p)).href
const child = `
import '${dist('src/util/polyfill.js')}'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createRecord, frontierRoot, synthBodies, toHex } from '${dist('src/records/index.js')}'
import { createRecordStore } from '${dist('src/store/record-store.js')}'
const store = createRecordStore({ path: process.argv[1], maxRecords: 1e9, frontierPersistMs: 3600000 })
await store.start()
const bodies = synthBodies(64, 5)
const authors = await Promise.all([0, 1, 2].map(async () => { const key = await generateKeyPair('Ed25519'); return { key, id: peerIdFromPrivateKey(key).toString() } }))
const recs = async (a, from, n) => await Promise.all(Array.from({ length: n }, async (_, i) => await createRecord(a.key, a.id, from + i, bodies[(from + i) % 64])))
const [a, b, c] = authors
// a: pages of 100 (stored at 300 and 600 of 650), then 23 single puts; b: 40 concurrent single puts; c: a gap at 4
const as = await recs(a, 1, 673)
for (let i = 0; i < 650; i += 100) await store.putMany(as.slice(i, Math.min(i + 100, 650)))
for (const r of as.slice(650)) await store.put(r)
await Promise.all((await recs(b, 1, 40)).map(r => store.put(r)))
const cs = await recs(c, 1, 9)
await store.putMany([...cs.slice(0, 3), ...cs.slice(4)])
const out = {}
for (const x of authors) { const f = await store.frontier(x.id); out[x.id] = { length: f.length, root: toHex(frontierRoot(f)) } }
process.stdout.write(JSON.stringify(out) + '\\n')
setInterval(() => {}, 1000)
`

describe('Merkle frontiers after kill -9', () => {
  it('reopen equal to a from-scratch computation over the stored log', async () => {
    expect(existsSync(resolve('dist/src/store/record-store.js'))).toBe(true)
    const path = join(root, 'store')
    const proc = spawn(process.execPath, ['--input-type=module', '-e', child, path], { stdio: ['ignore', 'pipe', 'inherit'] })
    const reported = await new Promise<Record<string, { length: number, root: string }>>((resolve, reject) => {
      let buf = ''
      proc.stdout.on('data', (d: Buffer) => {
        buf += d.toString()
        if (buf.includes('\n')) resolve(JSON.parse(buf.slice(0, buf.indexOf('\n'))))
      })
      proc.on('exit', code => { reject(new Error(`writer exited with ${code}`)) })
    })
    // every put above was acknowledged: kill the writer before a stop() stores the frontiers (its timer is an hour)
    const exited = new Promise(resolve => proc.on('exit', resolve))
    proc.kill('SIGKILL')
    await exited
    expect(Object.values(reported).map(r => r.length).sort((x, y) => x - y)).toEqual([3, 40, 673])

    // what the writer left: frontiers behind their heads (the case this test is about)
    const db = new Level<string, string>(path)
    const stored = new Map<string, number>()
    for await (const [k, v] of db.sublevel<string, string>('mkl', {}).iterator()) stored.set(k, Number(v.slice(0, v.indexOf(':'))))
    await db.close()
    const lagging = Object.entries(reported).filter(([id, r]) => (stored.get(id) ?? 0) < r.length)
    expect(lagging.length).toBe(3)

    const store = createRecordStore({ path, maxRecords: 1e9 })
    await store.start()
    try {
      const heads = await store.heads()
      for (const [id, r] of Object.entries(reported)) {
        expect(heads.get(id)).toBe(r.length)
        const log = await store.bySeq(id, 0, r.length)
        const scratch = toHex(merkleRoot(log.map(x => leafHash(toWire(x)))))
        const f = (await store.frontier!(id))!
        expect(f.length).toBe(r.length)
        expect(toHex(frontierRoot(f))).toBe(scratch)
        expect(scratch).toBe(r.root)
      }
    } finally {
      await store.stop()
    }
  })
})
