import '../src/util/polyfill.js'
import { parseArgs } from 'node:util'
import { loadavg } from 'node:os'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { RECORD_DOMAIN, createRecord, decodeEnvelope, leafHash, parseBody, proveWire, publicKeyOf, recordId, synthBodies, toWire, verifyDomainSignature, withDomain } from '../src/records/index.js'

/*
 * What one record's checks cost, part by part, on one thread (µs per record): the whole of what a
 * verification worker does (proveWire), the signature as the workers check it (a cached key) and
 * as bench:ingest's one-core ceiling does (`raw`), the body checks (JSON, schema, canonical form),
 * and the two hashes. With bench:store's CPU per record of a page write, these give the least CPU
 * any ingest or catch-up needs per record (docs/BENCHMARKS.md, "What two cores can give").
 *   node dist/scripts/bench-verify-parts.js [--count 10000] [--json]
 */
const { values: f } = parseArgs({ options: { count: { type: 'string' }, json: { type: 'boolean' } } })
const count = Number(f.count ?? 10_000)

const key = await generateKeyPair('Ed25519')
const author = peerIdFromPrivateKey(key).toString()
const bodies = synthBodies(count, 7)
const wires: Uint8Array[] = []
for (let i = 0; i < count; i++) wires.push(toWire(await createRecord(key, author, i + 1, bodies[i])))

const parts: Record<string, (w: Uint8Array) => unknown> = {
  proveWire: async w => await proveWire(w),
  signature: async w => { const e = decodeEnvelope(w); await verifyDomainSignature(author, RECORD_DOMAIN, e.bytes, e.signature) },
  rawSignature: async w => { const e = decodeEnvelope(w); return await publicKeyOf(author).verify(withDomain(RECORD_DOMAIN, e.bytes), e.signature) },
  bodyChecks: w => parseBody(decodeEnvelope(w).bytes),
  jsonParseOnly: w => JSON.parse(Buffer.from(decodeEnvelope(w).bytes).toString('utf8')),
  recordId: w => recordId(decodeEnvelope(w).bytes),
  leafHash: w => leafHash(w)
}
const results: Record<string, number> = {}
for (const [name, fn] of Object.entries(parts)) {
  // warm up: compiled code, cached keys
  for (let i = 0; i < Math.min(2000, count); i++) await fn(wires[i])
  const t = performance.now()
  for (const w of wires) await fn(w)
  results[`${name}Us`] = Math.round(10_000 * (performance.now() - t) / count) / 10
}
const meanWireBytes = Math.round(wires.reduce((a, w) => a + w.length, 0) / count)
if (f.json === true) process.stdout.write(JSON.stringify({ count, meanWireBytes, loadavg1: Math.round(loadavg()[0] * 100) / 100, ...results }) + '\n')
else for (const [k, v] of Object.entries({ meanWireBytes, ...results })) process.stdout.write(`${k.padEnd(20)} ${v}\n`)
