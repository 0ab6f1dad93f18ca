import '../src/util/polyfill.js'
import { parentPort, workerData } from 'node:worker_threads'
import { RECORD_DOMAIN, decodeEnvelope, publicKeyOf, withDomain } from '../src/records/index.js'

/*
 * bench-ingest's ceiling on every core: the raw ed25519 verification of its one-core phase (the
 * same call on the same signatures), on one thread per core at once. No parsing, schema or store:
 * what any verification pool on this machine could reach at best.
 */
const { wires, authors } = workerData as { wires: Uint8Array[], authors: string[] }
parentPort?.on('message', (m: string) => {
  if (m !== 'go') return
  void (async () => {
    const t = performance.now()
    for (let i = 0; i < wires.length; i++) {
      const env = decodeEnvelope(wires[i])
      if (!await publicKeyOf(authors[i]).verify(withDomain(RECORD_DOMAIN, env.bytes), env.signature)) throw new Error('bad signature')
    }
    parentPort?.postMessage(performance.now() - t)
  })()
})
parentPort?.postMessage('ready')
